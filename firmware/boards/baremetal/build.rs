//! The build script of every bare-metal board (its Cargo.toml names this file): puts the
//! board's `memory.x` where the runtime crate's `link.x` looks for it (the linker search
//! path).

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy the board's memory.x into OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
}
