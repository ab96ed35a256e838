//! Lays the shared library's own code out first in its text (see `text.ld`): on Linux, for the
//! `cdylib` only, unless the `text-layout` feature is off (a linker without linker-script
//! `INSERT` support would refuse it; GNU ld and LLD, Rust's default on x86_64 Linux, take it).

fn main() {
    println!("cargo:rerun-if-changed=text.ld");
    println!("cargo:rerun-if-changed=build.rs");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if linux && std::env::var_os("CARGO_FEATURE_TEXT_LAYOUT").is_some() {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-T,{dir}/text.ld");
    }
}
