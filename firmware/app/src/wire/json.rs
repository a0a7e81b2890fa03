//! A small JSON reader without allocation: the members of one object, for
//! iperf3's parameters. Nested objects and arrays are checked and skipped.

/// A member's value, as far as the device needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    /// A number, rounded toward zero and saturated to `i64`.
    Number(i64),
    /// `true` or `false`.
    Bool(bool),
    /// A string's raw bytes between the quotes (escapes left as written).
    Str(&'a [u8]),
    /// `null`, an object or an array.
    Other,
}

/// The text is not one JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// Deepest nesting accepted inside the object.
const MAX_DEPTH: usize = 16;

/// Calls `f` with each member (key without quotes, value) of the object that
/// `text` holds; whitespace and NULs may follow it, nothing else.
pub(crate) fn for_each_member<'a>(
    text: &'a [u8],
    mut f: impl FnMut(&'a [u8], Value<'a>),
) -> Result<(), Malformed> {
    let mut r = Reader { text, pos: 0 };
    r.expect(b'{')?;
    if r.peek() == Some(b'}') {
        r.pos += 1;
    } else {
        loop {
            r.ws();
            let key = r.string()?;
            r.expect(b':')?;
            let value = r.value(0)?;
            f(key, value);
            r.ws();
            match r.next() {
                Some(b',') => continue,
                Some(b'}') => break,
                _ => return Err(Malformed),
            }
        }
    }
    while let Some(&b) = text.get(r.pos) {
        if !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0) {
            return Err(Malformed);
        }
        r.pos += 1;
    }
    Ok(())
}

struct Reader<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn ws(&mut self) {
        while matches!(self.text.get(self.pos), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.text.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.text.get(self.pos).copied();
        self.pos += 1;
        b
    }

    fn expect(&mut self, want: u8) -> Result<(), Malformed> {
        self.ws();
        if self.next() == Some(want) {
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    /// A string, at the opening quote; returns its raw contents.
    fn string(&mut self) -> Result<&'a [u8], Malformed> {
        if self.next() != Some(b'"') {
            return Err(Malformed);
        }
        let start = self.pos;
        loop {
            match self.next() {
                None => return Err(Malformed),
                Some(b'"') => return Ok(&self.text[start..self.pos - 1]),
                Some(b'\\') => {
                    if self.next().is_none() {
                        return Err(Malformed);
                    }
                }
                Some(b) if b < 0x20 => return Err(Malformed),
                Some(_) => {}
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Malformed> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, Malformed> {
        match self.peek().ok_or(Malformed)? {
            b'"' => self.string().map(Value::Str),
            b't' => self.literal(b"true").map(|_| Value::Bool(true)),
            b'f' => self.literal(b"false").map(|_| Value::Bool(false)),
            b'n' => self.literal(b"null").map(|_| Value::Other),
            b'{' | b'[' => self.nested(depth + 1).map(|_| Value::Other),
            b'-' | b'0'..=b'9' => self.number().map(Value::Number),
            _ => Err(Malformed),
        }
    }

    /// An object or array inside the top-level object, checked and skipped.
    fn nested(&mut self, depth: usize) -> Result<(), Malformed> {
        if depth > MAX_DEPTH {
            return Err(Malformed);
        }
        let close = if self.next() == Some(b'{') {
            b'}'
        } else {
            b']'
        };
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            if close == b'}' {
                self.ws();
                self.string()?;
                self.expect(b':')?;
            }
            self.value(depth)?;
            self.ws();
            match self.next() {
                Some(b',') => continue,
                Some(b) if b == close => return Ok(()),
                _ => return Err(Malformed),
            }
        }
    }

    /// A number: sign, digits, fraction and exponent; its value rounded toward
    /// zero, saturated.
    fn number(&mut self) -> Result<i64, Malformed> {
        let negative = self.text.get(self.pos) == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        let mut mantissa: i64 = 0;
        let mut scale: i32 = 0;
        let mut digits = 0;
        while let Some(d @ b'0'..=b'9') = self.text.get(self.pos).copied() {
            mantissa = mantissa
                .saturating_mul(10)
                .saturating_add(i64::from(d - b'0'));
            digits += 1;
            self.pos += 1;
        }
        if self.text.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            let mut fraction = 0;
            while let Some(d @ b'0'..=b'9') = self.text.get(self.pos).copied() {
                if mantissa < i64::MAX / 10 {
                    mantissa = mantissa * 10 + i64::from(d - b'0');
                    scale -= 1;
                }
                fraction += 1;
                self.pos += 1;
            }
            if fraction == 0 {
                return Err(Malformed);
            }
        }
        if digits == 0 {
            return Err(Malformed);
        }
        if matches!(self.text.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            let minus = match self.text.get(self.pos) {
                Some(b'-') => {
                    self.pos += 1;
                    true
                }
                Some(b'+') => {
                    self.pos += 1;
                    false
                }
                _ => false,
            };
            let mut exponent: i32 = 0;
            let mut exp_digits = 0;
            while let Some(d @ b'0'..=b'9') = self.text.get(self.pos).copied() {
                exponent = exponent
                    .saturating_mul(10)
                    .saturating_add(i32::from(d - b'0'));
                exp_digits += 1;
                self.pos += 1;
            }
            if exp_digits == 0 {
                return Err(Malformed);
            }
            scale = scale.saturating_add(if minus { -exponent } else { exponent });
        }
        while scale > 0 && mantissa != 0 {
            mantissa = mantissa.saturating_mul(10);
            scale -= 1;
        }
        while scale < 0 && mantissa != 0 {
            mantissa /= 10;
            scale += 1;
        }
        Ok(if negative { -mantissa } else { mantissa })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    fn members(text: &str) -> Result<heapless::Vec<(&[u8], Value<'_>), 32>, Malformed> {
        let mut out = heapless::Vec::new();
        for_each_member(text.as_bytes(), |k, v| {
            let _ = out.push((k, v));
        })?;
        Ok(out)
    }

    #[test]
    fn iperf3_parameters() {
        let text = r#"{"tcp":true,"omit":0,"time":10,"num":0,"blockcount":0,"parallel":4,"reverse":true,"len":131072,"pacing_timer":1000,"client_version":"3.12","title":"a \"q\" b","extra":{"x":[1,2,{"y":null}]}}"#;
        let m = members(text).unwrap();
        assert_eq!(m[0], (&b"tcp"[..], Value::Bool(true)));
        assert_eq!(m[5], (&b"parallel"[..], Value::Number(4)));
        assert_eq!(m[7], (&b"len"[..], Value::Number(131072)));
        assert_eq!(m[9], (&b"client_version"[..], Value::Str(b"3.12")));
        assert_eq!(m[10].1, Value::Str(br#"a \"q\" b"#));
        assert_eq!(m[11].1, Value::Other);
    }

    #[test]
    fn numbers() {
        let m = members(r#"{"a":1.5,"b":-2,"c":1e+10,"d":1.0737418240e10,"e":5e-1,"f":99999999999999999999999}"#)
            .unwrap();
        let values: heapless::Vec<Value, 8> = m.iter().map(|(_, v)| *v).collect();
        assert_eq!(
            &values[..],
            &[
                Value::Number(1),
                Value::Number(-2),
                Value::Number(10_000_000_000),
                Value::Number(10_737_418_240),
                Value::Number(0),
                Value::Number(i64::MAX),
            ]
        );
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "{",
            "}",
            "[]",
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{"a":1,}"#,
            r#"{"a":tru}"#,
            r#"{"a":1} x"#,
            r#"{"a":"b}"#,
            r#"{"a":-}"#,
            r#"{"a":1.}"#,
            r#"{a:1}"#,
        ] {
            assert_eq!(members(bad), Err(Malformed), "{bad}");
        }
        let deep = "{\"a\":".to_string() + &"[".repeat(40) + &"]".repeat(40) + "}";
        assert_eq!(members(&deep), Err(Malformed));
        assert!(members("{}\0").unwrap().is_empty());
    }
}
