//! What alloc-arena promises beyond the common contract: `Drop` in reverse order (panics
//! included), quarantine that faults and gives memory back, a bounded quarantine, double free
//! detected, threads over one pool.

use alloc_arena::{Arena, ChunkPool, PoolConfig, SharedArena};
use alloc_core::{Count, ErrorKind, MmapSource, PageSource};
use conformance::misuse::{announce, expect_abort, expect_fault};
use conformance::resident_pages;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const CHUNK: usize = 1 << 20;

fn own_pool(config: PoolConfig) -> ChunkPool {
    ChunkPool::with_config(MmapSource::new(), config)
}

/// The numbers of the values dropped so far, in order. Shared through an `Arc`: a value the
/// arena drops must be `Send + 'static`, so it cannot borrow a local log.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<usize>>>);

impl Log {
    fn taken(&self) -> Vec<usize> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Records its number in a log when dropped; panics instead when asked to.
struct Noisy {
    n: usize,
    log: Log,
    panic: bool,
}

impl Drop for Noisy {
    fn drop(&mut self) {
        self.log.0.lock().unwrap().push(self.n);
        if self.panic {
            panic!("drop of {} panics", self.n);
        }
    }
}

#[test]
fn values_are_dropped_newest_first_on_reset_scope_and_free() {
    let log = Log::default();
    let mut arena = Arena::new();
    for n in 0..3 {
        arena.alloc(Noisy { n, log: log.clone(), panic: false });
    }
    arena.reset();
    assert_eq!(log.taken(), [2, 1, 0]);

    arena.alloc(Noisy { n: 10, log: log.clone(), panic: false });
    arena.scope(|a| {
        a.alloc(Noisy { n: 11, log: log.clone(), panic: false });
        a.alloc_slice_fill_with(2, |i| Noisy { n: 12 + i, log: log.clone(), panic: false });
    });
    assert_eq!(log.taken(), [12, 13, 11], "the scope drops its own values only (a slice front to back)");
    arena.free();
    assert_eq!(log.taken(), [10]);
}

#[test]
fn values_without_drop_carry_no_header() {
    let arena = Arena::new();
    for i in 0..1000u64 {
        arena.alloc(i);
    }
    assert_eq!(arena.stats().allocated, 8000, "u64s are packed: no drop header");
    let with_drop = Arena::new();
    with_drop.alloc(String::from("x"));
    assert_eq!(with_drop.stats().allocated, 24 + 24, "a String behind a 24-byte header");
}

#[test]
fn a_panicking_drop_neither_leaks_the_rest_nor_drops_twice() {
    let log = Log::default();
    let mut arena = Arena::new();
    for n in 0..6 {
        arena.alloc(Noisy { n, log: log.clone(), panic: n == 3 });
    }
    let r = catch_unwind(AssertUnwindSafe(|| arena.reset()));
    assert!(r.is_err(), "the panic reaches the caller");
    assert_eq!(log.taken(), [5, 4, 3, 2, 1, 0], "every value dropped once, in order");
    // The arena still works, and nothing is dropped again.
    arena.alloc(Noisy { n: 7, log: log.clone(), panic: false });
    drop(arena);
    assert_eq!(log.taken(), [7]);
}

#[test]
fn a_slice_whose_maker_panics_drops_the_values_made_so_far() {
    let log = Log::default();
    let arena = Arena::new();
    let r = catch_unwind(AssertUnwindSafe(|| {
        arena.alloc_slice_fill_with(10, |i| {
            assert!(i < 4, "maker fails at 4");
            Noisy { n: i, log: log.clone(), panic: false }
        });
    }));
    assert!(r.is_err());
    assert!(log.taken().is_empty());
    drop(arena);
    assert_eq!(log.taken(), [0, 1, 2, 3]);
}

#[test]
fn collections_live_in_the_arena_and_drop_with_it() {
    let arena = Arena::new();
    let mut v = allocator_api2::vec::Vec::new_in(&arena);
    for i in 0..10_000u32 {
        v.push(i);
    }
    let mut m = hashbrown::HashMap::new_in(&arena);
    for i in 0..1000u32 {
        m.insert(i, v[i as usize] * 2);
    }
    assert_eq!(m[&999], 1998);
    assert!(arena.owns(core::ptr::NonNull::from(&v[0]).cast()));
    assert_eq!(arena.validate(), Ok(()));
}

/// Allocates more than two chunks' worth and returns a raw pointer into the first chunk.
fn fill(arena: &Arena<&ChunkPool>) -> *mut u64 {
    let first = arena.alloc(0x5eed_u64) as *mut u64;
    for i in 0..(3 * CHUNK / 4096) {
        arena.alloc_slice_fill_with(512, |j| (i * j) as u64);
    }
    assert!(arena.stats().chunks >= 3);
    first
}

#[test]
fn a_read_through_a_pointer_into_a_freed_arena_faults() {
    expect_fault("a_read_through_a_pointer_into_a_freed_arena_faults", || {
        let pool = own_pool(PoolConfig::DEFAULT);
        let arena = Arena::in_pool(&pool);
        let p = fill(&arena);
        // SAFETY: the arena is live.
        assert_eq!(unsafe { p.read_volatile() }, 0x5eed);
        arena.free();
        // SAFETY: none: a use after free, which must fault.
        let v = unsafe { p.read_volatile() };
        println!("read {v:#x} after free");
    });
}

#[test]
fn a_write_into_the_newest_chunk_faults_when_it_is_quarantined_too() {
    expect_fault("a_write_into_the_newest_chunk_faults_when_it_is_quarantined_too", || {
        let pool = own_pool(PoolConfig { quarantine_newest: true, ..PoolConfig::DEFAULT });
        let arena = Arena::in_pool(&pool);
        let p = arena.alloc(1u64) as *mut u64;
        arena.free();
        // SAFETY: none: a use after free, which must fault.
        unsafe { p.write_volatile(2) };
    });
}

#[test]
fn the_newest_chunk_goes_warm_to_the_next_arena_by_default() {
    let pool = own_pool(PoolConfig::DEFAULT);
    let a = Arena::in_pool(&pool);
    let p = a.alloc(7u64) as *mut u64 as usize;
    a.free();
    assert_eq!(pool.stats().reusable, CHUNK);
    let b = Arena::in_pool(&pool);
    let q = b.alloc(8u64) as *mut u64 as usize;
    assert_eq!(p, q, "the warm chunk is reused: no system call, no page fault");
    assert_eq!(pool.stats().quarantined, 0);
}

#[test]
fn freed_chunks_give_their_memory_back_to_the_os() {
    let pool = own_pool(PoolConfig::DEFAULT);
    let arena = Arena::in_pool(&pool);
    let big = arena.alloc_slice_fill_with(2 * CHUNK, |i| i as u8);
    let small = fill(&arena);
    let (big_ptr, big_len) = (core::ptr::NonNull::from(&big[0]), big.len());
    let small_ptr = core::ptr::NonNull::new(small.cast::<u8>()).unwrap();
    let before = resident_pages(big_ptr, big_len) + resident_pages(small_ptr, CHUNK - 4096);
    assert!(before >= (2 * CHUNK + CHUNK / 2) / 4096, "{before} pages resident while in use");
    arena.free();
    let after = resident_pages(big_ptr, big_len) + resident_pages(small_ptr, CHUNK - 4096);
    println!("resident pages: {before} in use, {after} after free");
    assert_eq!(after, 0, "quarantined runs hold no memory");
    let s = pool.stats();
    assert!(s.quarantined >= 4 * CHUNK && s.released >= s.quarantined, "{s:?}");
}

#[test]
fn past_the_budget_the_oldest_quarantined_chunks_are_recycled() {
    let pool = own_pool(PoolConfig { quarantine: 4 * CHUNK, ..PoolConfig::DEFAULT });
    let mut mapped_after = Vec::new();
    for _ in 0..20 {
        let arena = Arena::in_pool(&pool);
        fill(&arena);
        arena.free();
        let s = pool.stats();
        assert!(s.quarantined <= 4 * CHUNK, "{s:?}");
        mapped_after.push(s.mapped);
    }
    let s = pool.stats();
    assert!(s.recycled > 0);
    // Recycled chunks are used again: the pool stops mapping once the quarantine is full.
    assert_eq!(mapped_after[10], mapped_after[19], "{mapped_after:?}");
    assert!(s.mapped <= 10 * CHUNK, "{s:?}");
}

#[test]
fn giving_a_chunk_back_twice_is_a_double_free() {
    let pool = ChunkPool::with_policy(MmapSource::new(), PoolConfig::DEFAULT, Count::default());
    let p = pool.map(CHUNK, 4096).unwrap();
    // SAFETY: a run of the pool, given back once, then (the misuse) again.
    unsafe {
        pool.unmap(p, CHUNK);
        pool.unmap(p, CHUNK);
    }
    let e = pool.errors().last().expect("detected");
    assert_eq!((e.kind, e.addr), (ErrorKind::DoubleFree, p.as_ptr() as usize));
    assert_eq!(pool.errors().detected(), 1);
}

/// The ready list (chunks recycled from quarantine) and the reuse list (warm chunks) are
/// checked too, not only the quarantine.
#[test]
fn giving_back_a_chunk_that_waits_on_the_ready_or_reuse_list_is_a_double_free() {
    let no_quarantine = PoolConfig { quarantine: 0, ..PoolConfig::DEFAULT };
    let pool = ChunkPool::with_policy(MmapSource::new(), no_quarantine, Count::default());
    let p = pool.map(CHUNK, 4096).unwrap();
    // SAFETY: a run of the pool, given back once (straight through quarantine onto the ready
    // list), then (the misuse) again.
    unsafe {
        pool.unmap(p, CHUNK);
        assert_eq!(pool.stats().ready, CHUNK, "recycled at once with no quarantine budget");
        pool.unmap(p, CHUNK);
    }
    assert_eq!(pool.errors().last().map(|e| (e.kind, e.addr)), Some((ErrorKind::DoubleFree, p.as_ptr() as usize)));

    let pool = ChunkPool::with_policy(MmapSource::new(), PoolConfig::DEFAULT, Count::default());
    let source = alloc_arena::PoolSource::new(&pool);
    let w = source.map(CHUNK, 4096).unwrap();
    source.keep_warm(Some(w));
    // SAFETY: a run of the pool, given back warm once, then (the misuse) again.
    unsafe {
        source.unmap(w, CHUNK);
        assert_eq!(pool.stats().reusable, CHUNK, "on the reuse list");
        pool.unmap(w, CHUNK);
    }
    assert_eq!(pool.errors().last().map(|e| (e.kind, e.addr)), Some((ErrorKind::DoubleFree, w.as_ptr() as usize)));
    assert_eq!(pool.errors().detected(), 1);
}

/// A new arena's first `allocate_zeroed` may get the warm chunk the last arena wrote all over:
/// it must still read as zero.
#[test]
fn zeroed_memory_from_a_warm_chunk_is_zero() {
    let pool = own_pool(PoolConfig::DEFAULT);
    {
        let arena = Arena::in_pool(&pool);
        arena.alloc_slice_fill_with(64 << 10, |_| 0xffu8);
    }
    assert_eq!(pool.stats().reusable, CHUNK, "the first arena's chunk waits warm");
    let arena = Arena::in_pool(&pool);
    let l = alloc_core::Layout::from_size_align(256 << 10, 8).unwrap();
    let b = alloc_core::Allocator::allocate_zeroed(&&arena, l).unwrap();
    // SAFETY: a live block of `b.len()` bytes.
    let bytes = unsafe { core::slice::from_raw_parts(b.cast::<u8>().as_ptr(), b.len()) };
    assert!(bytes.iter().all(|&x| x == 0), "a dirty byte in zeroed memory from a warm chunk");
    assert_eq!(pool.stats().reusable, 0, "the warm chunk was the one reused");
}

/// A page source whose `decommit` keeps the data (as a buffer with no OS behind it may): a chunk
/// recycled from quarantine onto the ready list still holds what the last arena wrote.
struct KeepsData(MmapSource);

// SAFETY: every call forwards to the mmap source.
unsafe impl PageSource for KeepsData {
    fn page_size(&self) -> usize {
        self.0.page_size()
    }
    fn map(&self, size: usize, align: usize) -> Option<core::ptr::NonNull<u8>> {
        self.0.map(size, align)
    }
    unsafe fn unmap(&self, ptr: core::ptr::NonNull<u8>, size: usize) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.unmap(ptr, size) }
    }
}

// SAFETY: nothing is given back, and `decommit_zeroes` says so.
unsafe impl alloc_core::source::Decommit for KeepsData {
    unsafe fn decommit(&self, _: core::ptr::NonNull<u8>, _: usize) {}
    fn decommit_zeroes(&self) -> bool {
        false
    }
}

// SAFETY: forwarded to the mmap source.
unsafe impl alloc_core::source::Protect for KeepsData {
    unsafe fn protect(&self, ptr: core::ptr::NonNull<u8>, size: usize, access: alloc_core::source::Access) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.protect(ptr, size, access) }
    }
}

/// The same from the ready list over a source whose decommit keeps data: the pool zeroes it.
#[test]
fn zeroed_memory_from_a_recycled_chunk_is_zero_when_decommit_keeps_data() {
    let config = PoolConfig { chunk: CHUNK, quarantine: 0, quarantine_newest: true };
    let pool = ChunkPool::with_config(KeepsData(MmapSource::new()), config);
    {
        let arena = Arena::in_pool(&pool);
        arena.alloc_slice_fill_with(64 << 10, |_| 0xffu8);
    }
    assert_eq!((pool.stats().ready, pool.stats().quarantined), (CHUNK, 0), "recycled at once");
    let arena = Arena::in_pool(&pool);
    let l = alloc_core::Layout::from_size_align(256 << 10, 8).unwrap();
    let b = alloc_core::Allocator::allocate_zeroed(&&arena, l).unwrap();
    // SAFETY: a live block of `b.len()` bytes.
    let bytes = unsafe { core::slice::from_raw_parts(b.cast::<u8>().as_ptr(), b.len()) };
    assert!(bytes.iter().all(|&x| x == 0), "a dirty byte in zeroed memory from a recycled chunk");
    assert_eq!(pool.stats().ready, 0, "the recycled chunk was the one reused");
    assert_eq!(arena.validate(), Ok(()));
}

#[test]
fn a_double_free_aborts_with_the_address() {
    expect_abort("a_double_free_aborts_with_the_address", "double free", || {
        let pool = own_pool(PoolConfig::DEFAULT);
        let p = pool.map(CHUNK, 4096).unwrap();
        announce(p.as_ptr() as usize);
        // SAFETY: a run of the pool, given back once, then (the misuse) again.
        unsafe {
            pool.unmap(p, CHUNK);
            pool.unmap(p, CHUNK);
        }
    });
}

#[test]
fn arenas_on_many_threads_share_one_pool() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    struct Counted(#[allow(dead_code)] u64);
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::Relaxed);
        }
    }
    let pool = Arc::new(own_pool(PoolConfig::DEFAULT));
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let pool = Arc::clone(&pool);
            s.spawn(move || {
                for round in 0..5 {
                    let arena = Arena::in_pool(Arc::clone(&pool));
                    let xs = arena.alloc_slice_fill_with(10_000, |i| Counted(t * i as u64 + round));
                    assert_eq!(xs.len(), 10_000);
                }
            });
        }
    });
    assert_eq!(DROPS.load(Ordering::Relaxed), 8 * 5 * 10_000);
    assert!(pool.stats().mapped > 0);
    assert_eq!(pool.validate(), Ok(()), "the pool's books after forty arenas were freed");
    pool.trim();
    assert_eq!(pool.validate(), Ok(()), "and after a trim");
}

#[test]
fn a_shared_arena_takes_values_from_many_threads() {
    let arena = SharedArena::new();
    let total: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|t| {
                let a = &arena;
                s.spawn(move || (0..1000).map(|i| a.alloc(vec![t; i % 7]).len()).sum::<usize>())
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(total, 4 * (0..1000).map(|i| i % 7).sum::<usize>());
    assert_eq!(arena.validate(), Ok(()));
}

#[test]
fn a_shared_arena_drops_values_from_every_thread_newest_first_on_reset_and_drop() {
    let log = Log::default();
    let mut arena = SharedArena::new();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (a, log) = (&arena, log.clone());
            s.spawn(move || {
                for i in 0..100 {
                    a.alloc(Noisy { n: t * 100 + i, log: log.clone(), panic: false });
                }
            });
        }
    });
    arena.reset();
    let mut dropped = log.taken();
    assert_eq!(dropped.len(), 400, "every value registered from any thread is dropped once");
    dropped.sort_unstable();
    assert_eq!(dropped, (0..400).collect::<Vec<_>>());
    for n in 0..3 {
        arena.alloc(Noisy { n, log: log.clone(), panic: false });
    }
    arena.alloc_slice_fill_with(2, |i| Noisy { n: 10 + i, log: log.clone(), panic: false });
    drop(arena);
    assert_eq!(log.taken(), [10, 11, 2, 1, 0], "dropping the shared arena drops what is left, newest first");
}

#[test]
fn an_arena_moved_to_another_thread_drops_its_values_there() {
    let log = Log::default();
    let arena = Arena::new();
    for n in 0..1000 {
        arena.alloc(Noisy { n, log: log.clone(), panic: false });
    }
    let dropper = std::thread::spawn(move || drop(arena)).join();
    assert!(dropper.is_ok());
    assert_eq!(log.taken(), (0..1000).rev().collect::<Vec<_>>());
}

#[test]
fn values_stored_without_drop_may_borrow_and_are_never_dropped() {
    let log = Log::default();
    let outside = String::from("borrowed from outside");
    let mut arena = Arena::new();
    {
        let a = arena.alloc_no_drop((outside.as_str(), Noisy { n: 1, log: log.clone(), panic: false }));
        let b = arena.alloc_no_drop((a.0, Noisy { n: 2, log: log.clone(), panic: false }));
        assert_eq!(b.0, "borrowed from outside");
    }
    arena.reset();
    drop(arena);
    assert!(log.taken().is_empty(), "alloc_no_drop never runs Drop");
}

#[test]
fn a_large_block_freed_on_its_own_goes_straight_back_for_reuse() {
    let pool = own_pool(PoolConfig::DEFAULT);
    let arena = Arena::in_pool(&pool);
    let mut addrs = Vec::new();
    for _ in 0..10 {
        let mut v = allocator_api2::vec::Vec::<u8, _>::with_capacity_in(4 << 20, &arena);
        v.resize(4 << 20, 1);
        addrs.push(v.as_ptr() as usize);
    }
    let s = pool.stats();
    assert_eq!(s.quarantined, 0, "{s:?}");
    assert!(addrs.iter().all(|&a| a == addrs[0]), "the span heap hands the same run out again: {addrs:x?}");
}

/// An arena's view of its pool is the pool's own: the statistics it reports are the pool's, and
/// a trim through it gives back what the pool's lists hold.
#[test]
fn an_arena_reports_and_trims_its_pool() {
    let pool = own_pool(PoolConfig::DEFAULT);
    let mut arena = Arena::in_pool(&pool);
    arena.alloc([7u64; 1000]);
    {
        let other = Arena::in_pool(&pool);
        other.alloc([1u64; 1000]);
    }
    let seen = arena.pool_stats();
    assert_eq!(seen, pool.stats());
    assert!(seen.mapped >= 2 * CHUNK, "{seen:?}");
    assert!(seen.reusable + seen.ready >= CHUNK, "the dropped arena's chunk waits on a list: {seen:?}");
    let trimmed = arena.trim_pool();
    assert!(trimmed >= CHUNK, "trimmed {trimmed} bytes");
    let after = arena.pool_stats();
    assert_eq!(after.reusable + after.ready, 0, "{after:?}");
    assert_eq!(after, pool.stats());
    assert_eq!(arena.validate(), Ok(()));
}

/// A shared arena owns what it handed out and nothing else, and its `Debug` shows its
/// statistics.
#[test]
fn a_shared_arena_owns_its_blocks_only_and_shows_its_stats() {
    let pool = own_pool(PoolConfig::DEFAULT);
    let arena = SharedArena::in_pool(&pool);
    let x = arena.alloc(5u64);
    assert!(arena.owns(std::ptr::NonNull::from(&*x).cast()));
    let local = 0u64;
    assert!(!arena.owns(std::ptr::NonNull::from(&local).cast()));
    assert!(arena.stats().allocated >= 8 && arena.stats().chunks == 1, "{:?}", arena.stats());
    let shown = format!("{arena:?}");
    assert!(shown.starts_with("SharedArena") && shown.contains("allocated"), "{shown}");
}

/// `alloc_core::Trim` on an arena trims its pool, as `trim_pool` does.
#[test]
fn trim_through_the_capability_trims_the_pool() {
    let pool = own_pool(PoolConfig::DEFAULT);
    let mut arena = Arena::in_pool(&pool);
    arena.alloc(1u8);
    {
        let other = Arena::in_pool(&pool);
        other.alloc([1u64; 1000]);
    }
    assert!(pool.stats().reusable + pool.stats().ready >= CHUNK, "{:?}", pool.stats());
    alloc_core::Trim::trim(&mut arena);
    assert_eq!(pool.stats().reusable + pool.stats().ready, 0, "{:?}", pool.stats());
}

/// A block over a quarter of a chunk that does not fit the chunk being filled gets a run of
/// its own: the arena does not start a fresh chunk for it (Go's arenas do the same).
#[test]
fn a_block_over_a_quarter_chunk_gets_a_dedicated_run() {
    let pool = own_pool(PoolConfig::DEFAULT);
    let arena = Arena::in_pool(&pool);
    let first = arena.alloc_slice_fill_with(800 << 10, |i| i as u8);
    assert_eq!((first.len(), arena.stats().chunks), (800 << 10, 1));
    let big = arena.alloc_slice_fill_with(300 << 10, |i| i as u8);
    assert_eq!(big.len(), 300 << 10);
    let s = arena.stats();
    assert_eq!(s.chunks, 2, "{s:?}");
    assert!(s.capacity < 2 * CHUNK, "a run of the block's size, not a second chunk: {s:?}");
}
