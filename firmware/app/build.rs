//! Gzip-codes the status page (src/services/http/page.html) at build time: the device
//! sends the smaller copy to every client that accepts gzip.

use std::io::Write;

fn main() {
    let page = "src/services/http/page.html";
    println!("cargo:rerun-if-changed={page}");
    let html = std::fs::read(page).expect("read src/services/http/page.html");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&html).expect("gzip the page");
    let gz = encoder.finish().expect("gzip the page");
    std::fs::write(out.join("page.html.gz"), gz).expect("write page.html.gz");
}
