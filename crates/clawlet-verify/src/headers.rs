//! Reading request headers without depending on an HTTP crate.

/// Read access to a request's headers, by case-insensitive name.
///
/// Implemented for slices and vectors of `(name, value)` pairs and, with the `http` feature, for
/// `http::HeaderMap`. A verification reads only the headers its scheme names.
pub trait Headers {
    /// The first value of the header `name` (compared ASCII case-insensitively), if any.
    fn get(&self, name: &str) -> Option<&[u8]>;

    /// Whether the header `name` appears more than once. A scheme refuses a repeated header it
    /// reads (`malformed_header`): two values leave it ambiguous which one was checked.
    fn is_repeated(&self, name: &str) -> bool {
        let _ = name;
        false
    }

    /// The header `name` read once: absent, present once, or repeated. The provided method
    /// asks [`get`](Headers::get) and [`is_repeated`](Headers::is_repeated); the implementations
    /// here answer with one lookup, which is what a verification calls for each header it reads.
    fn lookup(&self, name: &str) -> Lookup<'_> {
        match self.get(name) {
            None => Lookup::Absent,
            Some(_) if self.is_repeated(name) => Lookup::Repeated,
            Some(value) => Lookup::Once(value),
        }
    }
}

/// What [`Headers::lookup`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The header is not there.
    Absent,
    /// The header's one value.
    Once(&'a [u8]),
    /// The header appears more than once.
    Repeated,
}

impl<T: Headers + ?Sized> Headers for &T {
    fn get(&self, name: &str) -> Option<&[u8]> {
        (**self).get(name)
    }

    fn is_repeated(&self, name: &str) -> bool {
        (**self).is_repeated(name)
    }

    fn lookup(&self, name: &str) -> Lookup<'_> {
        (**self).lookup(name)
    }
}

/// ASCII case-insensitive name equality that looks at the last byte first: the headers of one
/// sender tend to share a long prefix (`webhook-id`, `webhook-signature`, `webhook-timestamp`).
fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len()
        && a.last().map(u8::to_ascii_lowercase) == b.last().map(u8::to_ascii_lowercase)
        && a.eq_ignore_ascii_case(b)
}

/// [`Headers::lookup`] from an iterator over a header's values, in one pass.
fn first_of_all<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> Lookup<'a> {
    match (values.next(), values.next()) {
        (None, _) => Lookup::Absent,
        (Some(value), None) => Lookup::Once(value),
        (Some(_), Some(_)) => Lookup::Repeated,
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> Headers for [(K, V)] {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(k, _)| same_name(k.as_ref(), name))
            .map(|(_, v)| v.as_ref())
    }

    fn is_repeated(&self, name: &str) -> bool {
        self.iter()
            .filter(|(k, _)| same_name(k.as_ref(), name))
            .nth(1)
            .is_some()
    }

    fn lookup(&self, name: &str) -> Lookup<'_> {
        first_of_all(
            self.iter()
                .filter(|(k, _)| same_name(k.as_ref(), name))
                .map(|(_, v)| v.as_ref()),
        )
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> Headers for alloc::vec::Vec<(K, V)> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        Headers::get(self.as_slice(), name)
    }

    fn is_repeated(&self, name: &str) -> bool {
        self.as_slice().is_repeated(name)
    }

    fn lookup(&self, name: &str) -> Lookup<'_> {
        self.as_slice().lookup(name)
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>, const N: usize> Headers for [(K, V); N] {
    fn get(&self, name: &str) -> Option<&[u8]> {
        Headers::get(self.as_slice(), name)
    }

    fn is_repeated(&self, name: &str) -> bool {
        self.as_slice().is_repeated(name)
    }

    fn lookup(&self, name: &str) -> Lookup<'_> {
        self.as_slice().lookup(name)
    }
}

#[cfg(feature = "http")]
impl Headers for http::HeaderMap {
    fn get(&self, name: &str) -> Option<&[u8]> {
        // `HeaderMap` stores names lower-case and lower-cases a `&str` key on lookup.
        http::HeaderMap::get(self, name).map(http::HeaderValue::as_bytes)
    }

    fn is_repeated(&self, name: &str) -> bool {
        self.get_all(name).iter().nth(1).is_some()
    }

    /// A scan of the names rather than the map's hash: to find a `&str`, `HeaderMap` copies it
    /// lower-cased into a buffer and hashes it a byte at a time, which costs more than comparing
    /// the lengths (and last bytes) of a request's dozen names (BENCHMARKS.md, "Paired ratios").
    /// The scan grows with the number of headers; the HTTP server bounds that number.
    fn lookup(&self, name: &str) -> Lookup<'_> {
        first_of_all(
            self.iter()
                .filter(|(k, _)| same_name(k.as_str(), name))
                .map(|(_, v)| v.as_bytes()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_case_insensitive_and_report_repeats() {
        let headers = [("X-Sig", "a"), ("x-sig", "b"), ("Other", "c")];
        assert_eq!(Headers::get(&headers, "x-SIG"), Some(&b"a"[..]));
        assert!(headers.is_repeated("X-SIG"));
        assert!(!headers.is_repeated("other"));
        assert_eq!(Headers::get(&headers, "missing"), None);
        assert_eq!(headers.lookup("x-sig"), Lookup::Repeated);
        assert_eq!(headers.lookup("OTHER"), Lookup::Once(b"c"));
        assert_eq!(headers.lookup("missing"), Lookup::Absent);
        assert_eq!(headers.to_vec().lookup("X-SIG"), Lookup::Repeated);
        assert_eq!((&&headers[1..]).lookup("x-sig"), Lookup::Once(b"b"));
    }

    /// Headers that only say how to get a value: `lookup` comes from the provided method.
    struct Minimal(Vec<(&'static str, &'static str)>);

    impl Headers for Minimal {
        fn get(&self, name: &str) -> Option<&[u8]> {
            Headers::get(self.0.as_slice(), name)
        }

        fn is_repeated(&self, name: &str) -> bool {
            self.0.is_repeated(name)
        }
    }

    #[test]
    fn the_provided_lookup_agrees_with_get_and_is_repeated() {
        let headers = Minimal(vec![("a", "1"), ("A", "2"), ("b", "3")]);
        assert_eq!(headers.lookup("a"), Lookup::Repeated);
        assert_eq!(headers.lookup("b"), Lookup::Once(b"3"));
        assert_eq!(headers.lookup("c"), Lookup::Absent);
    }

    #[cfg(feature = "http")]
    #[test]
    fn header_map() {
        let mut map = http::HeaderMap::new();
        map.append("svix-id", http::HeaderValue::from_static("msg_1"));
        assert_eq!(Headers::get(&map, "Svix-Id"), Some(&b"msg_1"[..]));
        assert!(!Headers::is_repeated(&map, "svix-id"));
        assert_eq!(Headers::lookup(&map, "Svix-Id"), Lookup::Once(b"msg_1"));
        map.append("svix-id", http::HeaderValue::from_static("msg_2"));
        assert!(Headers::is_repeated(&map, "SVIX-ID"));
        assert_eq!(Headers::lookup(&map, "svix-id"), Lookup::Repeated);
        assert_eq!(Headers::lookup(&map, "webhook-id"), Lookup::Absent);
        map.append("webhook-id", http::HeaderValue::from_static("msg_3"));
        map.append("host", http::HeaderValue::from_static("example.com"));
        assert_eq!(Headers::lookup(&map, "Webhook-ID"), Lookup::Once(b"msg_3"));
        assert_eq!(Headers::lookup(&map, "SVIX-id"), Lookup::Repeated);
        assert_eq!(Headers::lookup(&map, "webhook-i"), Lookup::Absent);
    }
}
