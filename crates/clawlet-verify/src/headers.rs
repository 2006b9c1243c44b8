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
}

impl<T: Headers + ?Sized> Headers for &T {
    fn get(&self, name: &str) -> Option<&[u8]> {
        (**self).get(name)
    }

    fn is_repeated(&self, name: &str) -> bool {
        (**self).is_repeated(name)
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> Headers for [(K, V)] {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    fn is_repeated(&self, name: &str) -> bool {
        self.iter()
            .filter(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .nth(1)
            .is_some()
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> Headers for alloc::vec::Vec<(K, V)> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        Headers::get(self.as_slice(), name)
    }

    fn is_repeated(&self, name: &str) -> bool {
        self.as_slice().is_repeated(name)
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>, const N: usize> Headers for [(K, V); N] {
    fn get(&self, name: &str) -> Option<&[u8]> {
        Headers::get(self.as_slice(), name)
    }

    fn is_repeated(&self, name: &str) -> bool {
        self.as_slice().is_repeated(name)
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
    }

    #[cfg(feature = "http")]
    #[test]
    fn header_map() {
        let mut map = http::HeaderMap::new();
        map.append("svix-id", http::HeaderValue::from_static("msg_1"));
        assert_eq!(Headers::get(&map, "Svix-Id"), Some(&b"msg_1"[..]));
        assert!(!Headers::is_repeated(&map, "svix-id"));
        map.append("svix-id", http::HeaderValue::from_static("msg_2"));
        assert!(Headers::is_repeated(&map, "SVIX-ID"));
    }
}
