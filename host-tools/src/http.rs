//! A small HTTP/1.1 client for the device's JSON API (and the tests' WebDriver
//! server): requests over one kept-alive `std` `TcpStream`, bodies framed by
//! `Content-Length` or chunked.
//!
//! Why not a crate such as `ureq`: the stream must be opened inside the
//! device's network namespace ([`HostNet::connect`]), which a client crate
//! that dials for itself cannot do without a connector of our own; and the
//! device's server speaks a small, known subset (no TLS, no redirects, no
//! compression unless asked). What remains is a request line, a head and two
//! ways to frame a body, with every read bounded in time and in size.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::netns::HostNet;

/// Longest response head accepted, bytes.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest response body accepted, bytes (the device's `/api/sockets` with
/// the largest pool is well under this).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The connection could not be made, or broke.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The server closed the connection before answering.
    #[error("the server closed the connection before answering")]
    Closed,
    /// The answer is not HTTP, or breaks its framing.
    #[error("not an HTTP answer: {0}")]
    Malformed(String),
    /// The head or the body is larger than this client takes.
    #[error("the answer's {0} is larger than {1} bytes")]
    TooLarge(&'static str, usize),
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Header lines as (name, value), in order.
    pub headers: Vec<(String, String)>,
    /// The body, chunked framing removed.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One connection to an HTTP server, kept open between requests.
#[derive(Debug)]
pub struct Connection {
    reader: BufReader<TcpStream>,
    host: String,
    /// False once the server said it closes, or a framing ended by close.
    reusable: bool,
}

impl Connection {
    /// Connects to `addr` from `net`; every later read and write waits at
    /// most `timeout`.
    pub fn open(net: &HostNet, addr: SocketAddr, timeout: Duration) -> io::Result<Connection> {
        let stream = net.connect(addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            reader: BufReader::new(stream),
            host: addr.to_string(),
            reusable: true,
        })
    }

    /// True while another request may be sent on this connection.
    pub fn reusable(&self) -> bool {
        self.reusable
    }

    /// Sends `GET path` and reads the whole answer.
    pub fn get(&mut self, path: &str) -> Result<Response, HttpError> {
        self.request("GET", path, None)
    }

    /// Sends `method path`, with `json` as an `application/json` body if
    /// given, and reads the whole answer (a WebDriver server's `POST` and
    /// `DELETE` as well as the device's `GET`).
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        json: Option<&[u8]>,
    ) -> Result<Response, HttpError> {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n\
             User-Agent: socklab/{}\r\n",
            self.host,
            env!("CARGO_PKG_VERSION")
        );
        if let Some(body) = json {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(json.unwrap_or_default());
        self.reader.get_mut().write_all(&bytes)?;
        let result = self.read_response();
        if result.is_err() {
            self.reusable = false;
        }
        result
    }

    fn read_response(&mut self) -> Result<Response, HttpError> {
        let mut head_bytes = 0;
        let status_line = match self.line(&mut head_bytes)? {
            Some(line) => line,
            None => return Err(HttpError::Closed),
        };
        let (status, reason) = parse_status_line(&status_line)?;
        let mut headers = Vec::new();
        loop {
            let line = self
                .line(&mut head_bytes)?
                .ok_or_else(|| HttpError::Malformed("the head ends early".into()))?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| HttpError::Malformed(format!("header line {line:?}")))?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let mut response = Response {
            status,
            reason,
            headers,
            body: Vec::new(),
        };
        if response
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            self.reusable = false;
        }
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let length = response.header("content-length").map(str::to_owned);
        response.body = if chunked {
            self.chunked_body()?
        } else if let Some(length) = length {
            let length: usize = length
                .parse()
                .map_err(|_| HttpError::Malformed(format!("Content-Length {length:?}")))?;
            if length > MAX_BODY {
                return Err(HttpError::TooLarge("body", MAX_BODY));
            }
            let mut body = vec![0; length];
            self.reader.read_exact(&mut body)?;
            body
        } else if status == 204 || status == 304 || (100..200).contains(&status) {
            Vec::new()
        } else {
            // Ended by the close.
            self.reusable = false;
            let mut body = Vec::new();
            (&mut self.reader)
                .take(MAX_BODY as u64 + 1)
                .read_to_end(&mut body)?;
            if body.len() > MAX_BODY {
                return Err(HttpError::TooLarge("body", MAX_BODY));
            }
            body
        };
        Ok(response)
    }

    /// One CRLF- (or LF-) terminated line without its end; `None` at a
    /// clean end of stream. Counts the bytes against [`MAX_HEAD`].
    fn line(&mut self, used: &mut usize) -> Result<Option<String>, HttpError> {
        let mut line = Vec::new();
        let limit = (MAX_HEAD - *used) as u64 + 1;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut line)?;
        *used += n;
        if n == 0 {
            return Ok(None);
        }
        if *used > MAX_HEAD {
            return Err(HttpError::TooLarge("head", MAX_HEAD));
        }
        if line.last() != Some(&b'\n') {
            return Err(HttpError::Malformed(
                "the connection closed mid-line".into(),
            ));
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        String::from_utf8(line)
            .map(Some)
            .map_err(|_| HttpError::Malformed("a head line is not UTF-8".into()))
    }

    fn chunked_body(&mut self) -> Result<Vec<u8>, HttpError> {
        let mut body = Vec::new();
        let mut used = 0;
        loop {
            let size_line = self
                .line(&mut used)?
                .ok_or_else(|| HttpError::Malformed("the chunked body ends early".into()))?;
            let size = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| HttpError::Malformed(format!("chunk size {size_line:?}")))?;
            if size == 0 {
                break;
            }
            if body.len() + size > MAX_BODY {
                return Err(HttpError::TooLarge("body", MAX_BODY));
            }
            let start = body.len();
            body.resize(start + size, 0);
            self.reader.read_exact(&mut body[start..])?;
            if self.line(&mut used)?.as_deref() != Some("") {
                return Err(HttpError::Malformed(
                    "a chunk is longer than its size".into(),
                ));
            }
            // The size lines and chunk ends of a long body are not head
            // bytes: only a runaway line is bounded.
            used = 0;
        }
        // Trailers, up to the empty line.
        while let Some(line) = self.line(&mut used)? {
            if line.is_empty() {
                return Ok(body);
            }
        }
        Err(HttpError::Malformed("the chunked body ends early".into()))
    }
}

/// `HTTP/1.1 200 OK` → (200, "OK").
fn parse_status_line(line: &str) -> Result<(u16, String), HttpError> {
    let bad = || HttpError::Malformed(format!("status line {line:?}"));
    let rest = line.strip_prefix("HTTP/1.").ok_or_else(bad)?;
    let mut parts = rest.splitn(3, ' ');
    let _minor = parts.next().ok_or_else(bad)?;
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or_else(bad)?;
    Ok((status, parts.next().unwrap_or("").to_owned()))
}

#[cfg(test)]
mod test {
    use super::*;
    use std::net::TcpListener;

    /// A server on 127.0.0.1 that answers each request with the next of
    /// `answers`, raw, then closes.
    fn serve(answers: Vec<&'static [u8]>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            for answer in answers {
                // Read one request head.
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                }
                reader.get_mut().write_all(answer).unwrap();
            }
        });
        addr
    }

    fn connect(addr: SocketAddr) -> Connection {
        Connection::open(&HostNet::Current, addr, Duration::from_secs(5)).unwrap()
    }

    #[test]
    fn chunked_and_length_bodies_on_one_connection() {
        let addr = serve(vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!",
        ]);
        let mut c = connect(addr);
        let r = c.get("/a").unwrap();
        assert_eq!((r.status, r.reason.as_str()), (200, "OK"));
        assert_eq!(r.body, b"hello, world");
        assert!(c.reusable());
        let r = c.get("/b").unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.body, b"no!");
        assert_eq!(r.header("CONTENT-length"), Some("3"));
    }

    #[test]
    fn request_sends_method_and_json_body() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            while !head.ends_with("\r\n\r\n") {
                assert!(reader.read_line(&mut head).unwrap() > 0, "{head:?}");
            }
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                .unwrap();
            (head, body)
        });
        let r = connect(addr)
            .request("POST", "/session", Some(br#"{"a":1}"#))
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        let (head, body) = server.join().unwrap();
        assert!(head.starts_with("POST /session HTTP/1.1\r\n"), "{head}");
        assert!(
            head.contains("Content-Type: application/json\r\n"),
            "{head}"
        );
        assert_eq!(body, br#"{"a":1}"#);
    }

    #[test]
    fn body_ended_by_close_and_connection_close() {
        let addr = serve(vec![b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n{}"]);
        let mut c = connect(addr);
        let r = c.get("/").unwrap();
        assert_eq!(r.body, b"{}");
        assert!(!c.reusable());
    }

    #[test]
    fn garbage_and_early_close_are_errors() {
        let addr = serve(vec![b"SSH-2.0-OpenSSH\r\n"]);
        let e = connect(addr).get("/").unwrap_err();
        assert!(matches!(e, HttpError::Malformed(_)), "{e}");
        let addr = serve(vec![b""]);
        let e = connect(addr).get("/").unwrap_err();
        assert!(matches!(e, HttpError::Closed), "{e}");
        let addr = serve(vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ]);
        let e = connect(addr).get("/").unwrap_err();
        assert!(e.to_string().contains("chunk size"), "{e}");
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status_line("HTTP/1.1 505 HTTP Version Not Supported").unwrap(),
            (505, "HTTP Version Not Supported".into())
        );
        assert_eq!(parse_status_line("HTTP/1.0 200").unwrap(), (200, "".into()));
        assert!(parse_status_line("HTTP/2 200 OK").is_err());
        assert!(parse_status_line("HTTP/1.1 99 x").is_err());
        assert!(parse_status_line("HTTP/1.1 abc x").is_err());
    }
}
