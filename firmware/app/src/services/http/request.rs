//! The HTTP/1.1 request parser: a head reader that says where a request head
//! ends or why it is refused (too long a request line, too large a head), and
//! a parser of a complete head into a [`Request`] (RFC 9112).
//!
//! No allocation: the [`Request`] borrows from the head it was parsed from.
//! Nothing the network sends can make these panic.

use heapless::Vec;

/// Longest request line accepted, bytes without its line end; a longer one
/// gets 414 URI Too Long.
pub const MAX_REQUEST_LINE: usize = 512;
/// Largest HTTP request head accepted, bytes (431 beyond).
pub const MAX_REQUEST_HEAD: usize = 1024;

/// Where a head being read stands after one more byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The head goes on.
    More,
    /// The head ended with this byte (an empty line).
    Complete,
    /// The request line is over [`MAX_REQUEST_LINE`] bytes: 414.
    LineTooLong,
    /// The head is over [`MAX_REQUEST_HEAD`] bytes: 431.
    HeadTooLarge,
}

/// Collects one request head, byte by byte, so that the bytes after it (a
/// body, a pipelined request) stay in the socket.
#[derive(Debug, Clone, Default)]
pub struct HeadReader {
    head: Vec<u8, MAX_REQUEST_HEAD>,
    /// The request line has ended.
    line_done: bool,
}

impl HeadReader {
    /// An empty reader.
    pub const fn new() -> Self {
        HeadReader {
            head: Vec::new(),
            line_done: false,
        }
    }

    /// Takes one byte of the head.
    pub fn push(&mut self, byte: u8) -> Progress {
        if self.head.is_empty() && !self.line_done && (byte == b'\r' || byte == b'\n') {
            // Empty lines before a request line are ignored (RFC 9112, 2.2).
            return Progress::More;
        }
        if self.head.push(byte).is_err() {
            return if self.line_done {
                Progress::HeadTooLarge
            } else {
                Progress::LineTooLong
            };
        }
        if byte == b'\n' {
            self.line_done = true;
            if self.head.ends_with(b"\n\n") || self.head.ends_with(b"\n\r\n") {
                return Progress::Complete;
            }
        } else if !self.line_done && self.head.len() > MAX_REQUEST_LINE + 1 {
            return Progress::LineTooLong;
        }
        Progress::More
    }

    /// The head so far.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// True when no byte of a request has arrived yet.
    pub fn is_empty(&self) -> bool {
        self.head.is_empty()
    }

    /// Forgets the head, ready for the next request.
    pub fn clear(&mut self) {
        self.head.clear();
        self.line_done = false;
    }
}

/// The request methods this server tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`: the answer to `GET` without its body.
    Head,
    /// Any other well-formed method: 405 Method Not Allowed.
    Other,
}

/// Why a head is refused before any route is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed: 400 Bad Request, with what is wrong.
    BadRequest(&'static str),
    /// An HTTP major version other than 1: 505.
    VersionNotSupported,
    /// A request body with a transfer coding (chunked, ...): 501.
    NotImplemented,
}

/// A parsed request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The path of the target, from `/`.
    pub path: &'a str,
    /// The query, without its `?`.
    pub query: Option<&'a str>,
    /// The minor version of HTTP/1.x (0 or 1).
    pub minor: u8,
    /// The connection stays open after the answer (HTTP/1.1 without
    /// `Connection: close`).
    pub keep_alive: bool,
    /// The client takes a gzip-coded answer (`Accept-Encoding`).
    pub accepts_gzip: bool,
    /// Bytes of body that follow the head (`Content-Length`).
    pub content_length: u64,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Splits the head into lines, without their CRLF or LF.
fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

/// Trims spaces and tabs at both ends.
fn trim(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |e| e + 1);
    &value[start..end.max(start)]
}

/// Parses `HTTP/<major>.<minor>`.
fn version(word: &[u8]) -> Result<u8, Refusal> {
    match word {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            if *major != b'1' {
                Err(Refusal::VersionNotSupported)
            } else {
                // HTTP/1.2 and later minors are answered as 1.1.
                Ok((minor - b'0').min(1))
            }
        }
        _ => Err(Refusal::BadRequest(
            "the request line does not end in HTTP/1.x",
        )),
    }
}

/// Does a comma-separated list (Connection, Accept-Encoding) name `token`
/// with a non-zero weight?
fn list_has(value: &[u8], token: &str) -> bool {
    value.split(|&b| b == b',').any(|item| {
        let mut params = item.split(|&b| b == b';');
        let name = trim(params.next().unwrap_or(b""));
        if !name.eq_ignore_ascii_case(token.as_bytes()) {
            return false;
        }
        // `;q=0` (or 0.0, 0.00, 0.000) refuses it.
        !params.any(|p| {
            let p = trim(p);
            (p.starts_with(b"q=") || p.starts_with(b"Q="))
                && p[2..].iter().all(|b| *b == b'0' || *b == b'.')
        })
    })
}

fn number(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Parses a complete request head (as [`HeadReader`] collected it).
pub fn parse(head: &[u8]) -> Result<Request<'_>, Refusal> {
    let mut lines = lines(head);
    let line = lines.next().unwrap_or(b"");
    let mut words = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version_word), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(Refusal::BadRequest(
            "the request line is not `METHOD target HTTP/1.1`",
        ));
    };
    if method.is_empty() || !method.iter().all(|b| is_tchar(*b)) {
        return Err(Refusal::BadRequest("the method is not a token"));
    }
    let minor = version(version_word)?;
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        _ => Method::Other,
    };
    if target.is_empty() || !target.iter().all(|b| b.is_ascii_graphic()) {
        return Err(Refusal::BadRequest(
            "the target has a byte that is not visible ASCII",
        ));
    }
    // Absolute form (`http://host/path`): only the path counts.
    let target = match target.strip_prefix(b"http://") {
        Some(rest) => match rest.iter().position(|b| *b == b'/') {
            Some(slash) => &rest[slash..],
            None => b"/".as_slice(),
        },
        None => target,
    };
    if target.first() != Some(&b'/') {
        return Err(Refusal::BadRequest("the target does not start with /"));
    }
    // Visible ASCII only, checked above: always UTF-8.
    let target = core::str::from_utf8(target).map_err(|_| Refusal::BadRequest("target"))?;
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };

    let mut request = Request {
        method,
        path,
        query,
        minor,
        keep_alive: minor >= 1,
        accepts_gzip: false,
        content_length: 0,
    };
    let mut hosts = 0;
    let mut length: Option<u64> = None;
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(Refusal::BadRequest(
                "obsolete line folding in a header field",
            ));
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            return Err(Refusal::BadRequest("a header field without a colon"));
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.is_empty() || !name.iter().all(|b| is_tchar(*b)) {
            return Err(Refusal::BadRequest("a header field name is not a token"));
        }
        if value.iter().any(|b| *b < 0x20 && *b != b'\t' || *b == 0x7f) {
            return Err(Refusal::BadRequest(
                "a control byte in a header field value",
            ));
        }
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        if is("host") {
            hosts += 1;
        } else if is("connection") {
            if list_has(value, "close") {
                request.keep_alive = false;
            } else if list_has(value, "keep-alive") && minor == 0 {
                // HTTP/1.0 keep-alive is not offered: this server closes.
            }
        } else if is("accept-encoding") {
            request.accepts_gzip |= list_has(value, "gzip");
        } else if is("content-length") {
            let n = number(value).ok_or(Refusal::BadRequest("Content-Length is not a number"))?;
            if length.is_some_and(|l| l != n) {
                return Err(Refusal::BadRequest("two different Content-Length fields"));
            }
            length = Some(n);
        } else if is("transfer-encoding") {
            return Err(Refusal::NotImplemented);
        }
    }
    if minor >= 1 && hosts != 1 {
        return Err(Refusal::BadRequest(
            "an HTTP/1.1 request needs one Host field",
        ));
    }
    request.content_length = length.unwrap_or(0);
    Ok(request)
}

/// The value of `key` in a query string (`since=5&x=y`), if present.
pub fn query_value<'q>(query: Option<&'q str>, key: &str) -> Option<&'q str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

#[cfg(test)]
mod test {
    use super::*;

    fn read(bytes: &[u8]) -> (Progress, HeadReader) {
        let mut reader = HeadReader::new();
        let mut last = Progress::More;
        for &b in bytes {
            last = reader.push(b);
            if last != Progress::More {
                break;
            }
        }
        (last, reader)
    }

    #[test]
    fn a_browser_request_parses() {
        let head = b"GET /api/events?since=7 HTTP/1.1\r\nHost: 192.168.69.1\r\n\
                     Accept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n\r\n";
        let (progress, reader) = read(head);
        assert_eq!(progress, Progress::Complete);
        let request = parse(reader.head()).unwrap();
        assert_eq!(request.method, Method::Get);
        assert_eq!(request.path, "/api/events");
        assert_eq!(query_value(request.query, "since"), Some("7"));
        assert!(request.keep_alive && request.accepts_gzip);
    }

    #[test]
    fn refusals() {
        let bad = |h: &[u8]| parse(h).unwrap_err();
        assert_eq!(bad(b"GET / HTTP/2.0\r\n\r\n"), Refusal::VersionNotSupported);
        assert!(matches!(
            bad(b"GET / HTTP/1.1\r\n\r\n"),
            Refusal::BadRequest(_)
        ));
        assert!(matches!(
            bad(b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),
            Refusal::BadRequest(_)
        ));
        assert!(matches!(
            bad(b"GET / FTP/1.1\r\nHost: a\r\n\r\n"),
            Refusal::BadRequest(_)
        ));
        assert!(matches!(
            bad(b"GET / HTTP/1.1\r\nHost a\r\n\r\n"),
            Refusal::BadRequest(_)
        ));
        assert_eq!(
            bad(b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Refusal::NotImplemented
        );
        let post = parse(b"POST / HTTP/1.0\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(
            (post.method, post.content_length, post.keep_alive),
            (Method::Other, 5, false)
        );
        let gz = parse(b"GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip;q=0\r\n\r\n").unwrap();
        assert!(!gz.accepts_gzip);
    }

    #[test]
    fn limits() {
        let mut long = [b'a'; MAX_REQUEST_LINE + 10];
        long[..5].copy_from_slice(b"GET /");
        assert_eq!(read(&long).0, Progress::LineTooLong);
        let mut big = [b'x'; MAX_REQUEST_HEAD + 10];
        big[..16].copy_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(read(&big).0, Progress::HeadTooLarge);
        assert_eq!(read(b"\r\n\r\nGET / HTTP/1.1\n\n").0, Progress::Complete);
    }
}
