//! A JSON Pointer (RFC 6901) lookup over raw body bytes, for schemes that sign or time-stamp
//! inside the body.
//!
//! The crate stays free of a JSON library: this is a strict recursive-descent scan of the whole
//! document that keeps only the one value the pointer names. It refuses what a JSON parser
//! refuses (invalid UTF-8, trailing garbage, control characters in strings, bad escapes, nesting
//! deeper than [`MAX_DEPTH`]) and, unlike most parsers, refuses an object with a duplicated key on
//! the pointer's path, where "the first" or "the last" would be a guess an attacker could exploit.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

/// Deeper documents are refused rather than risk the stack.
pub(crate) const MAX_DEPTH: usize = 128;

/// The value at `pointer` in `doc`: a string's decoded contents, or the exact source text of any
/// other value (a number as written, `true`, an object). `None` when the document is not valid
/// JSON, the pointer is malformed, nothing is there, or a key on the path is duplicated.
pub(crate) fn lookup<'a>(doc: &'a [u8], pointer: &str) -> Option<Cow<'a, [u8]>> {
    core::str::from_utf8(doc).ok()?;
    let tokens = parse_pointer(pointer)?;
    let mut parser = Parser {
        s: doc,
        i: 0,
        found: None,
        hits: 0,
    };
    parser.ws();
    parser.value(Some(&tokens), 0)?;
    parser.ws();
    if parser.i != doc.len() || parser.hits != 1 {
        return None;
    }
    parser.found
}

fn parse_pointer(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    rest.split('/')
        .map(|token| {
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return None,
                    }
                } else {
                    out.push(c);
                }
            }
            Some(out)
        })
        .collect()
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    found: Option<Cow<'a, [u8]>>,
    hits: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek() == Some(b)).then(|| self.i += 1)
    }

    /// One value; `target` is the rest of the pointer when this value lies on its path.
    fn value(&mut self, target: Option<&[String]>, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let start = self.i;
        let hit = matches!(target, Some([]));
        let deeper = target.and_then(|t| t.split_first());
        match self.peek()? {
            b'{' => self.object(deeper, depth)?,
            b'[' => self.array(deeper, depth)?,
            b'"' => {
                let s = self.string()?;
                if hit {
                    self.record(s);
                }
                return Some(());
            }
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            _ => self.number()?,
        }
        if hit {
            self.record(Cow::Borrowed(&self.s[start..self.i]));
        }
        Some(())
    }

    fn record(&mut self, value: Cow<'a, [u8]>) {
        self.hits += 1;
        self.found = Some(value);
    }

    fn object(&mut self, target: Option<(&String, &[String])>, depth: usize) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        let mut matched = false;
        loop {
            self.ws();
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            let next = match target {
                Some((first, rest)) if key.as_ref() == first.as_bytes() => {
                    if matched {
                        // A duplicated key on the path: refuse rather than pick one.
                        return None;
                    }
                    matched = true;
                    Some(rest)
                }
                _ => None,
            };
            self.value(next, depth + 1)?;
            self.ws();
            if self.eat(b',').is_none() {
                break;
            }
        }
        self.eat(b'}')
    }

    fn array(&mut self, target: Option<(&String, &[String])>, depth: usize) -> Option<()> {
        self.eat(b'[')?;
        self.ws();
        if self.eat(b']').is_some() {
            return Some(());
        }
        let index = target.and_then(|(first, rest)| Some((array_index(first)?, rest)));
        let mut n = 0usize;
        loop {
            self.ws();
            let next = match index {
                Some((i, rest)) if i == n => Some(rest),
                _ => None,
            };
            self.value(next, depth + 1)?;
            n += 1;
            self.ws();
            if self.eat(b',').is_none() {
                break;
            }
        }
        self.eat(b']')
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i.checked_add(word.len())?;
        (self.s.get(self.i..end)? == word).then(|| self.i = end)
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Option<()> {
        let _ = self.eat(b'-');
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.eat(b'.').is_some() && self.digits() == 0 {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// A string's decoded contents, borrowed when it has no escape.
    fn string(&mut self) -> Option<Cow<'a, [u8]>> {
        self.eat(b'"')?;
        let start = self.i;
        let mut owned: Option<Vec<u8>> = None;
        loop {
            let b = self.peek()?;
            match b {
                b'"' => {
                    let raw = &self.s[start..self.i];
                    self.i += 1;
                    return Some(owned.map_or(Cow::Borrowed(raw), Cow::Owned));
                }
                0x00..=0x1f => return None,
                b'\\' => {
                    let out = owned.get_or_insert_with(|| self.s[start..self.i].to_vec());
                    self.i += 1;
                    let escaped = self.peek()?;
                    self.i += 1;
                    let c = match escaped {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                _ => {
                    if let Some(out) = owned.as_mut() {
                        out.push(b);
                    }
                    self.i += 1;
                }
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let end = self.i.checked_add(4)?;
        let digits = self.s.get(self.i..end)?;
        let mut v = 0u32;
        for &d in digits {
            v = v * 16 + char::from(d).to_digit(16)?;
        }
        self.i = end;
        Some(v)
    }

    /// After `\u`: one code point, joining a surrogate pair; a lone surrogate is refused.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        match first {
            0xD800..=0xDBFF => {
                self.eat(b'\\')?;
                self.eat(b'u')?;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return None;
                }
                char::from_u32(0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00))
            }
            0xDC00..=0xDFFF => None,
            _ => char::from_u32(first),
        }
    }
}

/// An RFC 6901 array index: `0` or digits without a leading zero.
fn array_index(token: &str) -> Option<usize> {
    let valid = token == "0"
        || (!token.is_empty()
            && !token.starts_with('0')
            && token.bytes().all(|b| b.is_ascii_digit()));
    if valid { token.parse().ok() } else { None }
}

#[cfg(test)]
mod tests;
