// C++ sized and aligned deallocation under the socket. argv[1] "ok": every form of new and
// delete, sized and aligned, on small and large objects, must run clean; "mismatch": deleting a
// derived object through a base pointer without a virtual destructor passes the base's size to
// the sized operator delete (the classic bug), which the hardened preset reports; "oom": aligned
// new of an impossible size throws std::bad_alloc.
#include <cstdio>
#include <cstring>
#include <new>
#include <vector>

struct Small { char b[40]; };
struct Big { char b[100000]; };
struct alignas(64) Aligned { char b[100]; };
struct alignas(4096) PageAligned { char b[5000]; };
struct Base { int x; };
struct Derived : Base { char pad[100]; };

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (!std::strcmp(argv[1], "ok")) {
        for (int round = 0; round < 100; round++) {
            Small *s = new Small;
            Big *b = new Big;
            Aligned *a = new Aligned;
            PageAligned *pa = new PageAligned;
            Small *sa = new Small[7];
            Aligned *aa = new Aligned[3];
            std::vector<int> v(round * 100, round);
            if ((reinterpret_cast<unsigned long>(a) & 63) || (reinterpret_cast<unsigned long>(pa) & 4095)) return 1;
            delete s;
            delete b;
            delete a;
            delete pa;
            delete[] sa;
            delete[] aa;
            Aligned *n = new (std::nothrow) Aligned;
            delete n;
        }
        std::puts("OK");
        return 0;
    }
    if (!std::strcmp(argv[1], "oom")) {
        // Aligned operator new of an impossible size throws std::bad_alloc (a C++ program's
        // out of memory), under every preset.
        try {
            void *p = ::operator new(static_cast<std::size_t>(-1) / 2, std::align_val_t(64));
            std::printf("got %p\n", p);
            return 1;
        } catch (const std::bad_alloc &) {
        }
        // The nothrow form (libstdc++'s, over ours) returns null instead.
        void *q = ::operator new(static_cast<std::size_t>(-1) / 2, std::align_val_t(64), std::nothrow);
        if (q) return 1;
        std::puts("OK");
        return 0;
    }
    Base *b = new Derived;
    std::printf("MISUSE-ADDRESS %p\n", static_cast<void *>(b));
    std::fflush(stdout);
    delete b;
    std::puts("MISUSE-NOT-DETECTED");
    return 0;
}
