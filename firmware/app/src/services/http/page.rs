//! The status page, embedded in the image: the HTML file as written, and
//! the same file gzip-coded at build time (build.rs) for clients that take
//! it.

/// The page as written.
static PAGE: &[u8] = include_bytes!("page.html");
/// The page, gzip-coded by build.rs.
static PAGE_GZIP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/page.html.gz"));

/// The page's bytes for a client, and whether they are gzip-coded.
pub(crate) fn body(accepts_gzip: bool) -> (&'static [u8], bool) {
    if accepts_gzip {
        (PAGE_GZIP, true)
    } else {
        (PAGE, false)
    }
}
