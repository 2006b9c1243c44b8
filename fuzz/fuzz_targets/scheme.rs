//! `clawlet_verify::scheme`: the template parser, the signature layouts and encodings, and the
//! JSON pointer lookup, against a straightforward reimplementation.
//!
//! Input: `opts \0 template \0 prefix \0 secret \0 header \0 pointer \0 body`. opts may hold
//! `sha1`/`sha512` (else SHA-256), `hexlower`/`base64` (else hex of either case), and `sep`
//! (`v1=…,v1=…`) or `pairs` (`t=…;h1=…`), else a single signature.
//!
//! Properties: `Template::parse` accepts exactly the templates the reference renders; the verdict
//! equals "some candidate, after the prefix, decodes to the HMAC of the rendered template"; sign
//! then verify accepts; a value the pointer lookup returns is the string serde_json finds there.
#![no_main]

use std::borrow::Cow;

use base64::Engine as _;
use clawlet_fuzz::{Fields, Hash, Opts, hmac};
use clawlet_verify::scheme::{
    Algorithm, Encoding, Key, List, Location, Request, Scheme, Signature, SigningKey, Template,
    Verifier,
};
use clawlet_verify::{Secret, UnixTime};
use libfuzzer_sys::fuzz_target;

const URL: &str = "https://example.com/hook?x=1";
const METHOD: &str = "POST";

/// Renders the template text by hand: `{{`/`}}` escape braces, placeholders are replaced, and
/// `None` means the text is not a template. Only placeholders the fuzzed scheme can fill are
/// known here; `{timestamp}`, `{id}`, `{json:…}` and `{form}` are left to other targets.
fn render(
    template: &str,
    body: &[u8],
    header: impl Fn(&str) -> Option<Vec<u8>>,
) -> Option<Result<Vec<u8>, ()>> {
    let mut out = Vec::new();
    let mut chars = template.char_indices().peekable();
    let mut unfillable = false;
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|&(_, c)| c) == Some('{') => {
                chars.next();
                out.push(b'{');
            }
            '}' if chars.peek().map(|&(_, c)| c) == Some('}') => {
                chars.next();
                out.push(b'}');
            }
            '}' => return None,
            '{' => {
                let end = template[i..].find('}')? + i;
                let name = &template[i + 1..end];
                while chars.peek().is_some_and(|&(j, _)| j <= end) {
                    chars.next();
                }
                match name {
                    "body" => out.extend_from_slice(body),
                    "url" => out.extend_from_slice(URL.as_bytes()),
                    "method" => out.extend_from_slice(METHOD.as_bytes()),
                    "timestamp" | "id" | "form" => unfillable = true,
                    _ => {
                        if let Some(h) = name
                            .strip_prefix("header:")
                            .filter(|h| !h.is_empty() && !h.contains('{'))
                        {
                            match header(h) {
                                Some(v) => out.extend_from_slice(&v),
                                None => unfillable = true,
                            }
                        } else if name
                            .strip_prefix("json:")
                            .is_some_and(|p| !p.is_empty() && !p.contains('{'))
                        {
                            unfillable = true;
                        } else {
                            return None;
                        }
                    }
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Some(if unfillable { Err(()) } else { Ok(out) })
}

fn decode(value: &[u8], encoding: Encoding) -> Option<Vec<u8>> {
    match encoding {
        Encoding::Hex => hex::decode(value).ok(),
        Encoding::HexLower => {
            if value.iter().any(u8::is_ascii_uppercase) {
                None
            } else {
                hex::decode(value).ok()
            }
        }
        Encoding::Base64 => {
            let padded = base64::engine::general_purpose::STANDARD.decode(value);
            padded
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(value))
                .ok()
        }
        Encoding::Text => None,
    }
}

/// The candidates a header offers under a layout, after the prefix.
fn candidates<'a>(header: &'a [u8], list: &List, prefix: &[u8]) -> Vec<&'a [u8]> {
    let trim = |mut s: &'a [u8]| {
        while s.first() == Some(&b' ') {
            s = &s[1..];
        }
        while s.last() == Some(&b' ') {
            s = &s[..s.len() - 1];
        }
        s
    };
    match list {
        List::Single => header.strip_prefix(prefix).into_iter().collect(),
        List::Separated(sep) => header
            .split(|b| b == sep)
            .map(trim)
            .filter_map(|e| e.strip_prefix(prefix))
            .collect(),
        List::Pairs { separator, key } => header
            .split(|b| b == separator)
            .filter_map(|e| {
                let eq = e.iter().position(|&b| b == b'=')?;
                (&e[..eq] == key.as_bytes()).then(|| &e[eq + 1..])
            })
            .filter_map(|v| v.strip_prefix(prefix))
            .collect(),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut fields = Fields::new(data);
    let opts = Opts::new(fields.next_field());
    let template = String::from_utf8_lossy(fields.next_field().unwrap_or_default()).into_owned();
    let prefix = String::from_utf8_lossy(fields.next_field().unwrap_or_default()).into_owned();
    let secret = fields.next_field().unwrap_or(b"k");
    let header = fields.next_field();
    let pointer = String::from_utf8_lossy(fields.next_field().unwrap_or_default()).into_owned();
    let body = fields.rest();

    // The pointer lookup: whatever it returns for a string is what serde_json finds.
    if let Some(found) = Scheme::extract(
        &Location::Json(Cow::Owned(pointer.clone())),
        &[("a", "b")],
        body,
    ) {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(value) => {
                let at = value
                    .pointer(&pointer)
                    .expect("the lookup found what serde_json does not");
                if let Some(text) = at.as_str() {
                    assert_eq!(found.as_ref(), text.as_bytes(), "string at {pointer}");
                }
            }
            // serde_json also refuses numbers beyond f64 and nesting at its own limit; JSON itself
            // allows both, and the lookup keeps only one string of the document.
            Err(err) => assert!(
                err.to_string().contains("out of range")
                    || err.to_string().contains("recursion limit"),
                "the lookup accepted invalid JSON: {err}"
            ),
        }
    }

    let (algorithm, hash) = if opts.flag("sha1") {
        (Algorithm::HmacSha1, Hash::Sha1)
    } else if opts.flag("sha512") {
        (Algorithm::HmacSha512, Hash::Sha512)
    } else {
        (Algorithm::HmacSha256, Hash::Sha256)
    };
    let encoding = if opts.flag("hexlower") {
        Encoding::HexLower
    } else if opts.flag("base64") {
        Encoding::Base64
    } else {
        Encoding::Hex
    };
    let list = if opts.flag("sep") {
        List::Separated(b',')
    } else if opts.flag("pairs") {
        List::Pairs {
            separator: b';',
            key: Cow::Borrowed("h1"),
        }
    } else {
        List::Single
    };

    let headers: Vec<(&str, &[u8])> = header
        .map(|h| vec![("x-sig", h), ("x-other", h)])
        .unwrap_or_default();
    let lookup = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_vec())
            .filter(|v| !v.is_empty())
    };
    let parsed = Template::parse(&template);
    let reference = render(&template, body, lookup);
    assert_eq!(
        parsed.is_ok(),
        reference.is_some(),
        "template {template:?}: {parsed:?}"
    );
    let (Ok(payload), Some(Ok(rendered))) = (parsed, reference) else {
        return;
    };
    if payload.to_string() != template {
        // Printing may merge nothing and escape the same way: it must parse back equal.
        assert_eq!(Template::parse(&payload.to_string()).as_ref(), Ok(&payload));
    }
    let Ok(secret_value) = Secret::new(secret) else {
        return;
    };

    let scheme = Scheme {
        signature: Signature {
            location: Location::Header(Cow::Borrowed("x-sig")),
            prefix: Cow::Owned(prefix.clone()),
            encoding,
            list: list.clone(),
        },
        payload,
        algorithm,
        ..Scheme::default()
    };
    let verifier = match Verifier::new(scheme.clone(), vec![Key::Secret(secret_value.clone())]) {
        Ok(verifier) => verifier,
        Err(err) => {
            // Only a layout that would not parse back is refused.
            let sep = match &list {
                List::Separated(sep) => *sep,
                List::Pairs { separator, .. } => *separator,
                List::Single => panic!("a single-signature HMAC scheme is refused: {err:?}"),
            };
            let p = prefix.as_bytes();
            assert!(
                p.contains(&sep)
                    || (sep == b',' && (p.first() == Some(&b' ') || p.last() == Some(&b' '))),
                "refused {err:?} for prefix {prefix:?}"
            );
            return;
        }
    };
    let now = UnixTime::from_secs(0);
    let request = Request::new(&headers, body).url(URL).method(METHOD);
    let got = verifier.verify(&request, now);

    let mac = hmac(hash, secret, &[&rendered]);
    let expected = header.filter(|h| !h.is_empty()).is_some_and(|h| {
        candidates(h, &list, prefix.as_bytes())
            .iter()
            .any(|c| decode(c, encoding).is_some_and(|d| d == mac))
    });
    assert_eq!(
        got.is_ok(),
        expected,
        "verdict {got:?} for header {header:?}"
    );

    // What the scheme signs, it verifies (the header it reads is the one it writes).
    if template.contains("{header:") {
        return;
    }
    let signed = scheme
        .sign(
            &SigningKey::Secret(secret_value),
            &Request::new(&headers, body).url(URL).method(METHOD),
            now,
        )
        .expect("an HMAC scheme signs");
    let fresh = Request::new(&signed, body).url(URL).method(METHOD);
    assert!(
        verifier.verify(&fresh, now).is_ok(),
        "fresh signature {signed:?}"
    );
});
