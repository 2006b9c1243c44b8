use alloc::string::ToString;
use alloc::vec;

use super::*;
use crate::presets;

fn secret(s: &str) -> Secret {
    Secret::new(s).unwrap()
}

#[test]
fn templates_parse_and_print_back() {
    #[track_caller]
    fn check(text: &str, expected: Result<&[Part], VerifyError>) {
        let parsed = Template::parse(text);
        assert_eq!(
            parsed.as_ref().map(Template::parts).map_err(Clone::clone),
            expected,
            "{text}"
        );
        if let Ok(template) = parsed {
            assert_eq!(
                Template::parse(&template.to_string()),
                Ok(template),
                "{text}"
            );
        }
    }
    let lit = |s: &'static str| Part::Literal(Cow::Borrowed(s));
    check(
        "v0:{timestamp}:{body}",
        Ok(&[lit("v0:"), Part::Timestamp, lit(":"), Part::Body]),
    );
    check(
        "{method}{url}{body}{timestamp}",
        Ok(&[Part::Method, Part::Url, Part::Body, Part::Timestamp]),
    );
    check(
        "{id}.{header:X-Thing}.{json:/a/b}{form}",
        Ok(&[
            Part::Id,
            lit("."),
            Part::Header(Cow::Borrowed("X-Thing")),
            lit("."),
            Part::Json(Cow::Borrowed("/a/b")),
            Part::Form,
        ]),
    );
    check(
        "{url_either_port}{form}",
        Ok(&[Part::UrlEitherPort, Part::Form]),
    );
    check("{{literal}} {{", Ok(&[lit("{literal} {")]));
    check("", Ok(&[]));
    for bad in ["{nope}", "{body", "}", "{header:}", "{json:}", "a}b", "{}"] {
        check(bad, Err(VerifyError::InvalidTemplate));
    }
}

fn hmac_scheme(encoding: Encoding, list: List, prefix: &'static str) -> Scheme {
    Scheme {
        signature: Signature {
            location: Location::Header(Cow::Borrowed("x-sig")),
            prefix: Cow::Borrowed(prefix),
            encoding,
            list,
        },
        ..Scheme::default()
    }
}

/// hex(HMAC-SHA256("key", "body")), computed with Python's hmac module.
const HEX: &str = "9ec2cdbd62f6b3d1e6a0ee5dc7aa3e3e0b8b5ec9b0a0b25fd6d7ae4e1ad4eba7";

fn verify_with(scheme: Scheme, header: &str) -> Result<usize, VerifyError> {
    let headers = [("X-Sig", header)];
    Verifier::new(scheme, vec![Key::secret("key").unwrap()])?
        .verify(&Request::new(&headers, b"body"), UnixTime::from_secs(0))
        .map(|v| v.secret_index())
}

#[test]
fn signature_layouts() {
    let real = {
        let none: [(&str, &str); 0] = [];
        let scheme = hmac_scheme(Encoding::HexLower, List::Single, "");
        scheme
            .signature_value(
                &SigningKey::Secret(secret("key")),
                &Request::new(&none, b"body"),
                UnixTime::from_secs(0),
            )
            .unwrap()
    };
    assert_eq!(real.len(), 64);
    assert_ne!(
        real, HEX,
        "the constant above is a wrong signature on purpose"
    );
    let upper = real.to_ascii_uppercase();
    let single = |e| hmac_scheme(e, List::Single, "");
    let check = |scheme: Scheme, header: &str, expected: Result<usize, VerifyError>| {
        assert_eq!(
            verify_with(scheme.clone(), header),
            expected,
            "{header} with {:?}",
            scheme.signature
        );
    };
    check(single(Encoding::HexLower), &real, Ok(0));
    check(
        single(Encoding::HexLower),
        &upper,
        Err(VerifyError::MalformedHeader),
    );
    check(single(Encoding::Hex), &upper, Ok(0));
    check(single(Encoding::HexLower), HEX, Err(VerifyError::Mismatch));
    check(
        single(Encoding::HexLower),
        &real[..62],
        Err(VerifyError::MalformedHeader),
    );
    check(
        single(Encoding::HexLower),
        &format!("{real} "),
        Err(VerifyError::MalformedHeader),
    );
    check(
        single(Encoding::HexLower),
        "zz",
        Err(VerifyError::MalformedHeader),
    );
    check(
        hmac_scheme(Encoding::HexLower, List::Single, "v0="),
        &format!("v0={real}"),
        Ok(0),
    );
    check(
        hmac_scheme(Encoding::HexLower, List::Single, "v0="),
        &real,
        Err(VerifyError::MalformedHeader),
    );
    let separated = || hmac_scheme(Encoding::HexLower, List::Separated(b','), "v1=");
    check(separated(), &format!("v1={HEX}, v1={real}"), Ok(0));
    check(
        separated(),
        &format!("v0={real}"),
        Err(VerifyError::NoSignatureForScheme),
    );
    check(
        separated(),
        &format!("v1={HEX},v1=short"),
        Err(VerifyError::Mismatch),
    );
    let pairs = || {
        hmac_scheme(
            Encoding::HexLower,
            List::Pairs {
                separator: b';',
                key: Cow::Borrowed("h1"),
            },
            "",
        )
    };
    check(pairs(), &format!("ts=1;h1={HEX};h1={real}"), Ok(0));
    check(
        pairs(),
        &format!("ts=1;h2={real}"),
        Err(VerifyError::NoSignatureForScheme),
    );
    check(pairs(), "", Err(VerifyError::missing("x-sig")));
    // Past the signatures a list keeps from its first pass, every one is still tried.
    for wrong in [super::FIRST_CANDIDATES - 1, super::FIRST_CANDIDATES, 20] {
        let list = |key: &str| {
            let mut entries = vec![format!("{key}{HEX}"); wrong];
            entries.push(format!("{key}{real}"));
            entries.join(",")
        };
        check(separated(), &list("v1="), Ok(0));
        check(pairs(), &list("h1=").replace(',', ";"), Ok(0));
        let forged = list("v1=").replace(&real, HEX);
        check(separated(), &forged, Err(VerifyError::Mismatch));
    }
}

proptest::proptest! {
    #[test]
    fn find_byte_finds_what_a_byte_scan_finds(
        haystack in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        needle in proptest::prelude::any::<u8>(),
        planted in proptest::option::of(0usize..40),
    ) {
        let mut haystack = haystack;
        // Random bytes seldom hold the needle: plant it, often after bytes just below and
        // above it, where a word-at-a-time scan could borrow into a false match.
        if let Some(at) = planted.filter(|&at| at < haystack.len()) {
            haystack[at] = needle;
            if at > 0 {
                haystack[at - 1] = needle.wrapping_add(1);
            }
        }
        proptest::prop_assert_eq!(
            super::find_byte(&haystack, needle),
            haystack.iter().position(|&b| b == needle)
        );
    }
}

#[test]
fn hex_decoding_takes_exactly_the_hex_digits_in_either_place() {
    for upper in [true, false] {
        for b in 0..=255u8 {
            let digit = match b {
                b'0'..=b'9' => Some(b - b'0'),
                b'a'..=b'f' => Some(b - b'a' + 10),
                b'A'..=b'F' if upper => Some(b - b'A' + 10),
                _ => None,
            };
            for (pair, expected) in [
                ([b, b'7'], digit.map(|d| d << 4 | 7)),
                ([b'7', b], digit.map(|d| 0x70 | d)),
            ] {
                let mut out = [0u8; 1];
                let decoded = super::decode_hex(&pair, upper, &mut out).map(|n| out[..n].to_vec());
                assert_eq!(
                    decoded,
                    expected.map(|v| vec![v]),
                    "{pair:?}, upper case allowed: {upper}"
                );
            }
        }
    }
    let mut out = [0u8; 2];
    assert_eq!(super::decode_hex(b"", true, &mut out), None);
    assert_eq!(super::decode_hex(b"abc", true, &mut out), None);
    assert_eq!(
        super::decode_hex(b"aabbcc", true, &mut out),
        None,
        "longer than the buffer"
    );
}

#[test]
fn repeated_headers_are_refused() {
    let headers = [("x-sig", "a"), ("X-Sig", "b")];
    let verifier = Verifier::new(Scheme::default(), vec![Key::secret("k").unwrap()]).unwrap();
    let mut scheme = Scheme::default();
    scheme.signature.location = Location::Header(Cow::Borrowed("x-sig"));
    let verifier2 = Verifier::new(scheme, vec![Key::secret("k").unwrap()]).unwrap();
    assert_eq!(
        verifier.verify(&Request::new(&headers, b"x"), UnixTime::from_secs(0)),
        Err(VerifyError::missing("x-signature"))
    );
    assert_eq!(
        verifier2.verify(&Request::new(&headers, b"x"), UnixTime::from_secs(0)),
        Err(VerifyError::MalformedHeader)
    );
}

#[test]
fn construction_checks_keys_and_templates() {
    let key = || vec![Key::secret("k").unwrap()];
    assert_eq!(
        Verifier::new(Scheme::default(), vec![]).unwrap_err(),
        VerifyError::NoSecrets
    );
    let needs_ts = Scheme {
        payload: Template::parse("{timestamp}.{body}").unwrap(),
        ..Scheme::default()
    };
    assert_eq!(
        Verifier::new(needs_ts, key()).unwrap_err(),
        VerifyError::InvalidTemplate
    );
    let needs_id = Scheme {
        payload: Template::parse("{id}.{body}").unwrap(),
        ..Scheme::default()
    };
    assert_eq!(
        Verifier::new(needs_id, key()).unwrap_err(),
        VerifyError::InvalidTemplate
    );
    let mut pair_without_pairs = presets::STRIPE.scheme.clone();
    pair_without_pairs.signature.list = List::Single;
    assert_eq!(
        Verifier::new(pair_without_pairs, key()).unwrap_err(),
        VerifyError::InvalidTemplate
    );
    #[cfg(feature = "ed25519")]
    {
        let ed = SigningKey::ed25519_seed(&[1; 32]).verifying_key();
        assert_eq!(
            Verifier::new(Scheme::default(), vec![ed]).unwrap_err(),
            VerifyError::UnsupportedKey
        );
        assert_eq!(
            Verifier::new(presets::DISCORD.scheme.clone(), key()).unwrap_err(),
            VerifyError::UnsupportedKey
        );
    }
    // A prefix holding the list separator would split differently than it was written.
    let ambiguous = hmac_scheme(
        Encoding::Hex,
        List::Pairs {
            separator: b';',
            key: Cow::Borrowed("h1"),
        },
        "a;",
    );
    assert_eq!(
        Verifier::new(ambiguous, key()).unwrap_err(),
        VerifyError::InvalidTemplate
    );
    let spaced = hmac_scheme(Encoding::Hex, List::Separated(b','), " v1=");
    assert_eq!(
        Verifier::new(spaced, key()).unwrap_err(),
        VerifyError::InvalidTemplate
    );
    let url = Scheme {
        payload: Template::parse("{url}{body}").unwrap(),
        ..Scheme::default()
    };
    let verifier = Verifier::new(url, key()).unwrap();
    let sig = "sha256=".to_string() + &"0".repeat(64);
    let headers = [("x-signature", sig.as_str())];
    assert_eq!(
        verifier.verify(&Request::new(&headers, b"x"), UnixTime::from_secs(0)),
        Err(VerifyError::InvalidTemplate),
        "a scheme that signs the URL needs the caller to pass it"
    );
}

#[cfg(feature = "sha1")]
#[test]
fn other_port_forms() {
    #[track_caller]
    fn check(url: &str, expected: Option<&str>) {
        assert_eq!(other_port_form(url).as_deref(), expected, "{url}");
    }
    check(
        "https://h.example/a?b=1",
        Some("https://h.example:443/a?b=1"),
    );
    check("https://h.example:443/a", Some("https://h.example/a"));
    check("HTTPS://h.example:443", Some("HTTPS://h.example"));
    check("http://h.example/a", Some("http://h.example:80/a"));
    check("http://h.example:80?x=1", Some("http://h.example?x=1"));
    check(
        "https://u:p@h.example/a",
        Some("https://u:p@h.example:443/a"),
    );
    check("https://[::1]:443/a", Some("https://[::1]/a"));
    check("https://[::1]/a", Some("https://[::1]:443/a"));
    check("https://h.example:8443/a", Some("https://h.example/a"));
    check("http://h.example:443/a", Some("http://h.example/a"));
    check("ftp://h.example/a", None);
    check("https:///a", None);
    check("no scheme", None);
}

#[test]
fn twilio_form_matches_the_documented_example() {
    // Twilio's security guide: auth token 12345, these parameters, this URL.
    let body = b"CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
    let headers = [("X-Twilio-Signature", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")];
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    let verifier = Verifier::new(
        presets::TWILIO.scheme.clone(),
        vec![Key::secret("12345").unwrap()],
    )
    .unwrap();
    let request = Request::new(&headers, body).url(url);
    assert_eq!(
        verifier
            .verify(&request, UnixTime::from_secs(0))
            .map(|v| v.secret_index()),
        Ok(0)
    );
    // Parameter order on the wire does not matter; their values do.
    let reordered = b"To=%2B18005551212&Digits=1234&CallSid=CA1234567890ABCDE&Caller=%2B12349013030&From=%2B12349013030";
    assert!(
        verifier
            .verify(
                &Request::new(&headers, reordered).url(url),
                UnixTime::from_secs(0)
            )
            .is_ok()
    );
    let changed = b"To=%2B18005551213&Digits=1234&CallSid=CA1234567890ABCDE&Caller=%2B12349013030&From=%2B12349013030";
    assert_eq!(
        verifier.verify(
            &Request::new(&headers, changed).url(url),
            UnixTime::from_secs(0)
        ),
        Err(VerifyError::Mismatch)
    );
}

#[cfg(feature = "sha1")]
#[test]
fn twilio_json_bodies_are_covered_by_the_url_hash() {
    // Python: hashlib.sha256(b'{"a":1}').hexdigest(), then the HMAC-SHA1 of the URL alone.
    let url = "https://example.com/hook?bodySHA256=015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862";
    assert_eq!(
        body_sha256_hex(br#"{"a":1}"#),
        "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
    );
    let headers = [("x-twilio-signature", "2e7mH/NA6FwzvUqLZxhsETU/4bw=")];
    let verifier = Verifier::new(
        presets::TWILIO.scheme.clone(),
        vec![Key::secret("12345").unwrap()],
    )
    .unwrap();
    let now = UnixTime::from_secs(0);
    assert!(
        verifier
            .verify(&Request::new(&headers, br#"{"a":1}"#).url(url), now)
            .is_ok()
    );
    assert_eq!(
        verifier.verify(&Request::new(&headers, br#"{"a":2}"#).url(url), now),
        Err(VerifyError::BodyHashMismatch)
    );
}

#[test]
fn extract_reads_headers_and_body_fields() {
    let headers = [("Linear-Delivery", "d-1"), ("svix-id", "msg_1")];
    let body = br#"{"event":{"type":"a\u0062c"},"n":5}"#;
    let get =
        |location: Location| Scheme::extract(&location, &headers, body).map(|v| v.into_owned());
    assert_eq!(
        get(Location::Header("linear-delivery".into())),
        Some(b"d-1".to_vec())
    );
    assert_eq!(
        get(Location::HeaderOr("webhook-id".into(), "svix-id".into())),
        Some(b"msg_1".to_vec())
    );
    assert_eq!(
        get(Location::Json("/event/type".into())),
        Some(b"abc".to_vec())
    );
    assert_eq!(get(Location::Json("/n".into())), Some(b"5".to_vec()));
    assert_eq!(get(Location::Json("/missing".into())), None);
}

#[test]
fn form_decoding() {
    let pairs = sorted_form(b"b=2&a=%41+x&a=1&a=1&&c");
    let rendered: Vec<(Vec<u8>, Vec<u8>)> = pairs
        .into_iter()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(
        rendered,
        vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"a".to_vec(), b"A x".to_vec()),
            (b"b".to_vec(), b"2".to_vec()),
            (b"c".to_vec(), b"".to_vec()),
        ]
    );
    assert_eq!(
        percent_decode(b"%zz%4"),
        Cow::<[u8]>::Owned(b"%zz%4".to_vec())
    );
    assert_eq!(
        query_param("https://x/y?a=1&bodySHA256=ab#f", "bodySHA256").as_deref(),
        Some(&b"ab"[..])
    );
    assert_eq!(query_param("https://x/y", "a"), None);
}
