//! What travels on the wire, written once for the device and the host: the
//! lab protocol's words and formats, the service ports, the `INFO` key
//! names, and the JSON reader iperf3's parameters go through.

pub(crate) mod json;
pub mod protocol;
