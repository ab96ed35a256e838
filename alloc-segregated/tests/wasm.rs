//! alloc-segregated as the `#[global_allocator]` of a real wasm32 module (`wasm-demo/`), built
//! for `wasm32-unknown-unknown` and run in the wasmi interpreter. The host checks every result in
//! the module's linear memory. Installs the wasm32 target with rustup on first use when it is
//! missing (`conformance::wasm_target`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use wasmi::{Engine, Instance, Linker, Memory, Module, Store, TypedFunc};

/// Builds the module with `features`; `small` leaves out alloc-segregated's default features
/// (the size-first build).
fn build(features: &[&str], small: bool, dir: &str) -> PathBuf {
    if let Err(e) = conformance::wasm_target::ensure() {
        panic!("{e}");
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = here.join("../target").join(dir);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", "wasm32-unknown-unknown", "--manifest-path"])
        .arg(here.join("wasm-demo/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if small {
        cmd.arg("--no-default-features");
    }
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let out = cmd.output().expect("run cargo");
    assert!(out.status.success(), "building the wasm32 module failed:\n{}", String::from_utf8_lossy(&out.stderr));
    target_dir.join("wasm32-unknown-unknown/release/wasm_demo.wasm")
}

/// The module with alloc-segregated's default features, or (`small`) without them.
fn module_bytes(small: bool) -> &'static [u8] {
    static FULL: OnceLock<Vec<u8>> = OnceLock::new();
    static SMALL: OnceLock<Vec<u8>> = OnceLock::new();
    let (cell, dir) = if small { (&SMALL, "wasm-demo-small") } else { (&FULL, "wasm-demo") };
    cell.get_or_init(|| std::fs::read(build(&[], small, dir)).expect("read the module"))
}

/// Both builds: every behaviour below holds with and without the default features.
const BUILDS: [bool; 2] = [false, true];

struct Module32 {
    store: Store<()>,
    memory: Memory,
    alloc: TypedFunc<(i32, i32), i32>,
    free: TypedFunc<(i32, i32, i32), ()>,
    realloc: TypedFunc<(i32, i32, i32, i32), i32>,
    exercise: TypedFunc<i32, i32>,
}

impl Module32 {
    fn load(small: bool) -> Self {
        let engine = Engine::default();
        let module = Module::new(&engine, module_bytes(small)).expect("a valid wasm module");
        let mut store = Store::new(&engine, ());
        let linker = Linker::<()>::new(&engine);
        let instance: Instance =
            linker.instantiate(&mut store, &module).expect("instantiate").start(&mut store).expect("start");
        let memory = instance.get_memory(&store, "memory").expect("exported memory");
        Module32 {
            alloc: instance.get_typed_func(&store, "seg_alloc").expect("seg_alloc"),
            free: instance.get_typed_func(&store, "seg_free").expect("seg_free"),
            realloc: instance.get_typed_func(&store, "seg_realloc").expect("seg_realloc"),
            exercise: instance.get_typed_func(&store, "exercise").expect("exercise"),
            store,
            memory,
        }
    }

    fn alloc(&mut self, size: usize, align: usize) -> usize {
        self.alloc.call(&mut self.store, (size as i32, align as i32)).expect("seg_alloc runs") as u32 as usize
    }

    fn free(&mut self, p: usize, size: usize, align: usize) {
        self.free.call(&mut self.store, (p as i32, size as i32, align as i32)).expect("seg_free runs")
    }

    fn realloc(&mut self, p: usize, size: usize, align: usize, new: usize) -> usize {
        self.realloc.call(&mut self.store, (p as i32, size as i32, align as i32, new as i32)).expect("runs") as u32
            as usize
    }

    fn fill(&mut self, p: usize, len: usize, seed: u8) {
        for (i, b) in self.memory.data_mut(&mut self.store)[p..p + len].iter_mut().enumerate() {
            *b = seed ^ (i as u8).wrapping_mul(31);
        }
    }

    fn holds(&self, p: usize, len: usize, seed: u8) -> bool {
        self.memory.data(&self.store)[p..p + len]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == seed ^ (i as u8).wrapping_mul(31))
    }

    fn pages(&self) -> u64 {
        u64::from(self.memory.size(&self.store))
    }
}

#[test]
fn blocks_in_linear_memory_are_aligned_disjoint_and_keep_contents() {
    for small in BUILDS {
        let mut m = Module32::load(small);
        let mut live = Vec::new();
        for (i, &(size, align)) in
            [(1, 1), (16, 8), (17, 4), (100, 16), (128, 8), (129, 1), (1000, 64), (5000, 4096), (70_000, 8)]
                .iter()
                .cycle()
                .take(90)
                .enumerate()
        {
            let p = m.alloc(size, align);
            assert_ne!(p, 0, "allocation of {size} bytes failed");
            assert_eq!(p % align, 0, "{p:#x} not aligned to {align}");
            for &(q, qs, _, _) in &live {
                assert!(p + size <= q || q + qs <= p, "{p:#x}+{size} overlaps {q:#x}+{qs}");
            }
            m.fill(p, size, i as u8);
            live.push((p, size, align, i as u8));
        }
        for &(p, size, align, seed) in live.iter().rev() {
            assert!(m.holds(p, size, seed), "block {p:#x} lost its contents");
            m.free(p, size, align);
        }
    }
}

#[test]
fn realloc_keeps_the_prefix_and_grows_in_place_at_the_top() {
    for small in BUILDS {
        let mut m = Module32::load(small);
        let mut p = m.alloc(10, 1);
        m.fill(p, 10, 7);
        let mut size = 10;
        for new in [20, 100, 1000, 10_000, 100_000, 50] {
            let q = m.realloc(p, size, 1, new);
            assert_ne!(q, 0);
            assert!(m.holds(q, size.min(new), 7), "realloc {size} -> {new} lost bytes");
            if new > size {
                m.fill(q, new, 7);
            }
            p = q;
            size = new;
        }
        m.free(p, size, 1);
        // Within its class a block stays where it is.
        let a = m.alloc(33, 8);
        assert_eq!(m.realloc(a, 33, 8, 64), a);
    }
}

#[test]
fn a_large_buffer_is_reused_so_linear_memory_stops_growing() {
    for small in BUILDS {
        let mut m = Module32::load(small);
        let mut last = 0;
        for _ in 0..1000 {
            let p = m.alloc(1 << 20, 16);
            assert_ne!(p, 0);
            assert!(last == 0 || p == last, "the freed 1 MiB block was not reused");
            last = p;
            m.free(p, 1 << 20, 16);
        }
        // 1 MiB is 16 wasm pages; the module starts with a few for its stack and data.
        assert!(m.pages() < 64, "linear memory grew to {} pages", m.pages());
    }
}

#[test]
fn collections_run_on_it() {
    for small in BUILDS {
        let mut m = Module32::load(small);
        let n = 20_000u32;
        let mut v: Vec<u32> = (0..n).map(|i| i.wrapping_mul(2_654_435_761)).collect();
        v.sort_unstable();
        let mut want = v.iter().enumerate().fold(0u32, |s, (i, x)| s.wrapping_add(x ^ i as u32));
        let mut map = std::collections::BTreeMap::new();
        for i in 0..n {
            map.insert(i % 97, i);
        }
        for (k, val) in &map {
            want = want.wrapping_add(k.wrapping_mul(*val));
        }
        want = want.wrapping_add(4 * n.div_ceil(10));
        assert_eq!(m.exercise.call(&mut m.store, n as i32).expect("exercise runs") as u32, want);
    }
}

/// Bytes of the code section of a wasm module.
fn code_section_size(wasm: &[u8]) -> usize {
    let mut i = 8; // magic + version
    while i < wasm.len() {
        let id = wasm[i];
        i += 1;
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let b = wasm[i];
            i += 1;
            len |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        if id == 10 {
            return len;
        }
        i += len;
    }
    panic!("no code section")
}

#[test]
fn allocator_code_size_is_small() {
    let without = code_section_size(&std::fs::read(build(&["null-allocator"], false, "wasm-demo-null")).unwrap());
    let full = code_section_size(module_bytes(false)) - without;
    let small = code_section_size(module_bytes(true)) - without;
    // Printed for the README; bounded so a regression that bloats the allocator is seen. The
    // size-first build (no default features) must stay under 1 KiB.
    eprintln!("allocator code: {full} bytes, {small} without default features (null allocator module: {without})");
    assert!(full > 0 && full < 2048, "allocator code is {full} bytes");
    assert!(small > 0 && small < 1024, "size-first allocator code is {small} bytes");
}
