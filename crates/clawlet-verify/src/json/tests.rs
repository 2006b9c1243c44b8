use super::*;

fn check(doc: &str, pointer: &str, expected: Option<&str>) {
    let got = lookup(doc.as_bytes(), pointer);
    assert_eq!(
        got.as_deref(),
        expected.map(str::as_bytes),
        "{pointer} in {doc}"
    );
}

#[test]
fn lookups() {
    let doc = r#" {"a": {"b~c": [10, "x\"y", {"d/e": true}]}, "s": "caf\u00e9 \ud83d\ude00", "n": -1.5e3, "empty": ""} "#;
    check(doc, "/a/b~0c/0", Some("10"));
    check(doc, "/a/b~0c/1", Some("x\"y"));
    check(doc, "/a/b~0c/2/d~1e", Some("true"));
    check(doc, "/a/b~0c/2", Some(r#"{"d/e": true}"#));
    check(doc, "/s", Some("café 😀"));
    check(doc, "/n", Some("-1.5e3"));
    check(doc, "/empty", Some(""));
    check(doc, "/a/b~0c/3", None);
    check(doc, "/a/b~0c/01", None);
    check(doc, "/a/b~2c", None);
    check(doc, "a", None);
    check(doc, "/missing", None);
    check(r#"{"":1}"#, "/", Some("1"));
    check("[1,2]", "", Some("[1,2]"));
}

#[test]
fn escaped_keys_match_their_decoded_form() {
    check(r#"{"t\u0069mestamp": "1"}"#, "/timestamp", Some("1"));
    check(r#"{"a\/b": "1"}"#, "/a~1b", Some("1"));
}

#[test]
fn invalid_documents_and_duplicates_are_refused() {
    check(r#"{"a":1,"a":2}"#, "/a", None);
    check(r#"{"a":1} x"#, "/a", None);
    check(r#"{"a":01}"#, "/a", None);
    check(r#"{"a":"\x"}"#, "/a", None);
    check(r#"{"a":"\ud800"}"#, "/a", None);
    check("{\"a\":\"\u{1}\"}", "/a", None);
    check(r#"{"a":1,}"#, "/a", None);
    check(r#"{"a" 1}"#, "/a", None);
    check(r#"{"a":tru}"#, "/a", None);
    check(r#"{"a":1.}"#, "/a", None);
    assert_eq!(lookup(b"{\"a\":\"\xff\"}", "/a"), None);
    let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
    check(&deep, "/0", None);
    // Duplicates off the path do not matter to the lookup.
    check(r#"{"a":1,"b":{"c":1,"c":2}}"#, "/a", Some("1"));
}
