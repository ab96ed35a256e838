/* The unwinder entry points the Rust standard library refers to, for alloc-malloc's shared
 * library only (build.rs links this object into the cdylib, not into the rlib or the tests):
 * with them defined here, hidden, the library no longer needs libgcc_s, which a C program does
 * not load otherwise (84 KB resident in cfrac). Nothing in the library may unwind: its C entry
 * points are `extern "C"` (a panic reaching them aborts) and its error policy aborts. So a panic
 * inside it prints its message (the panic hook runs first), then fails to start unwinding
 * (`_Unwind_RaiseException` answers end of stack) and the standard library aborts; a backtrace
 * has no frames. The other functions are only called during an unwind, which never starts here:
 * they abort. Turned off with the `no-unwinder` feature (on by default). */
#include <stdint.h>
#include <stdlib.h>

#define HIDDEN __attribute__((visibility("hidden")))

struct _Unwind_Context;
struct _Unwind_Exception;
typedef int _Unwind_Reason_Code;
enum { URC_END_OF_STACK = 5 };

HIDDEN _Unwind_Reason_Code _Unwind_RaiseException(struct _Unwind_Exception *e) {
    (void)e;
    return URC_END_OF_STACK;
}
HIDDEN void _Unwind_Resume(struct _Unwind_Exception *e) {
    (void)e;
    abort();
}
HIDDEN _Unwind_Reason_Code _Unwind_Backtrace(void *trace, void *arg) {
    (void)trace;
    (void)arg;
    return URC_END_OF_STACK;
}
HIDDEN uintptr_t _Unwind_GetIP(struct _Unwind_Context *c) {
    (void)c;
    abort();
}
HIDDEN uintptr_t _Unwind_GetIPInfo(struct _Unwind_Context *c, int *before) {
    (void)c;
    (void)before;
    abort();
}
HIDDEN uintptr_t _Unwind_GetDataRelBase(struct _Unwind_Context *c) {
    (void)c;
    abort();
}
HIDDEN uintptr_t _Unwind_GetTextRelBase(struct _Unwind_Context *c) {
    (void)c;
    abort();
}
HIDDEN uintptr_t _Unwind_GetRegionStart(struct _Unwind_Context *c) {
    (void)c;
    abort();
}
HIDDEN void *_Unwind_GetLanguageSpecificData(struct _Unwind_Context *c) {
    (void)c;
    abort();
}
HIDDEN void _Unwind_SetGR(struct _Unwind_Context *c, int reg, uintptr_t value) {
    (void)c;
    (void)reg;
    (void)value;
    abort();
}
HIDDEN void _Unwind_SetIP(struct _Unwind_Context *c, uintptr_t value) {
    (void)c;
    (void)value;
    abort();
}
