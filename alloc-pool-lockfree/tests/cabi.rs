//! `cabi_realloc` driven the way the WebAssembly component model's canonical ABI drives it when
//! the host lowers values into a guest, with the pool as the program's global allocator.
#![cfg(not(loom))]

use alloc_pool_lockfree::{cabi_realloc, Pool};

#[global_allocator]
static ALLOC: Pool = Pool::new();

/// Lowers a `string` as the host does: one allocation of the UTF-8 length, the bytes copied in.
fn lower_string(s: &str) -> (*mut u8, usize) {
    // SAFETY: (null, 0) asks for a fresh block.
    let p = unsafe { cabi_realloc(core::ptr::null_mut(), 0, 1, s.len()) };
    assert!(!p.is_null());
    // SAFETY: a fresh block of s.len() bytes.
    unsafe { core::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len()) };
    (p, s.len())
}

#[test]
fn a_list_of_strings_is_lowered_and_lifted() {
    let words: Vec<String> = (0..500).map(|i| format!("word-{i}-{}", "x".repeat(i % 97))).collect();
    // The list's (pointer, length) pairs: the host does not know the count up front here, so the
    // list buffer grows as it goes, through cabi_realloc with the old size.
    let (mut list, mut cap) = (core::ptr::null_mut::<u8>(), 0usize);
    for (i, w) in words.iter().enumerate() {
        if i == cap {
            let new_cap = (cap * 2).max(4);
            // SAFETY: the list buffer, allocated (or null with 0) with cap * 16 bytes, align 8.
            list = unsafe { cabi_realloc(list, cap * 16, 8, new_cap * 16) };
            assert!(!list.is_null() && (list as usize).is_multiple_of(8));
            cap = new_cap;
        }
        let (p, n) = lower_string(w);
        // SAFETY: slot i of the list buffer.
        unsafe { list.cast::<(usize, usize)>().add(i).write((p as usize, n)) };
    }
    // Lift: read every string back, then free (as a guest's post-return would).
    for (i, w) in words.iter().enumerate() {
        // SAFETY: slot i was written above.
        let (p, n) = unsafe { list.cast::<(usize, usize)>().add(i).read() };
        // SAFETY: the string's block, live.
        let got = unsafe { core::slice::from_raw_parts(p as *const u8, n) };
        assert_eq!(got, w.as_bytes());
        // SAFETY: free the string block: new size 0.
        unsafe { cabi_realloc(p as *mut u8, n, 1, 0) };
    }
    // SAFETY: free the list.
    unsafe { cabi_realloc(list, cap * 16, 8, 0) };
}

#[test]
fn a_buffer_grows_a_byte_at_a_time_and_keeps_its_bytes() {
    // SAFETY: a fresh block, then resizes of it with its current size.
    unsafe {
        let mut p = cabi_realloc(core::ptr::null_mut(), 0, 4, 1);
        *p = 0;
        for n in 1..5000usize {
            p = cabi_realloc(p, n, 4, n + 1);
            assert!(!p.is_null() && (p as usize).is_multiple_of(4));
            *p.add(n) = n as u8;
        }
        assert!((0..5000usize).all(|i| *p.add(i) == i as u8));
        cabi_realloc(p, 5000, 4, 0);
    }
}

#[test]
fn the_method_on_a_pool_of_its_own_behaves_the_same() {
    let pool = Pool::new();
    // SAFETY: fresh block, resized with its size, freed.
    unsafe {
        let p = pool.cabi_realloc(core::ptr::null_mut(), 0, 16, 100);
        assert!(!p.is_null() && (p as usize).is_multiple_of(16));
        p.write_bytes(3, 100);
        let q = pool.cabi_realloc(p, 100, 16, 200_000);
        assert!((0..100).all(|i| *q.add(i) == 3));
        let z = pool.cabi_realloc(q, 200_000, 16, 0);
        assert_eq!(z as usize, 16, "a zero size frees and gives the aligned dangling pointer");
        assert!(pool.cabi_realloc(core::ptr::null_mut(), 0, 3, 10).is_null(), "a bad alignment is refused");
    }
    assert_eq!(pool.live_bytes(), 0);
}
