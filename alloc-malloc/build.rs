//! Two things for the shared library (the `cdylib` only), on Linux: its own code laid out first
//! in its text (`text.ld`, the `text-layout` feature: a linker without linker-script `INSERT`
//! support would refuse it; GNU ld and LLD, Rust's default on x86_64 Linux, take it), and the
//! unwinder's entry points as hidden stubs (`no_unwind.c`, the `no-unwinder` feature), so that it
//! does not need libgcc_s.

fn main() {
    println!("cargo:rerun-if-changed=text.ld");
    println!("cargo:rerun-if-changed=no_unwind.c");
    println!("cargo:rerun-if-changed=build.rs");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if !linux {
        return;
    }
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    if std::env::var_os("CARGO_FEATURE_TEXT_LAYOUT").is_some() {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-T,{dir}/text.ld");
    }
    if std::env::var_os("CARGO_FEATURE_NO_UNWINDER").is_some() {
        // Compiled to an object of its own and handed to the cdylib's link alone: a static
        // library would reach the rlib's users and the tests, which unwind.
        let objects = cc::Build::new().file("no_unwind.c").opt_level(2).cargo_metadata(false).compile_intermediates();
        for o in objects {
            println!("cargo:rustc-cdylib-link-arg={}", o.display());
        }
    }
}
