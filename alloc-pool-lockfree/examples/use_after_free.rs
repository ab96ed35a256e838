//! A read after free inside the pool, deliberately: what the `asan` and `valgrind` features are
//! for. Without them nothing notices (the freed block is the pool's memory, mapped and readable);
//! with them the sanitizer names the bad read:
//!
//! ```text
//! RUSTFLAGS=-Zsanitizer=address cargo +nightly run --target x86_64-unknown-linux-gnu \
//!     -p alloc-pool-lockfree --features asan --example use_after_free
//! cargo build -p alloc-pool-lockfree --features valgrind --example use_after_free && \
//!     valgrind target/debug/examples/use_after_free
//! ```

use alloc_pool_lockfree::Pool;

#[global_allocator]
static ALLOC: Pool = Pool::new();

fn main() {
    let block = Box::new([7u8; 48]);
    let p: *const u8 = block.as_ptr();
    drop(block);
    // SAFETY: none: this is the bug the example exists to show (the block was freed above).
    let stale = unsafe { p.add(8).read_volatile() };
    println!("read {stale:#04x} from a freed block and nothing noticed (build with a sanitizer feature)");
}
