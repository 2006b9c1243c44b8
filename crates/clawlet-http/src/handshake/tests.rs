use axum::http::{Method, Uri};
use clawlet_verify::Secret;

use super::{Reply, from_body, from_query};
use crate::spec::Handshake;

fn secret(text: &str) -> Secret {
    Secret::new(text).unwrap()
}

/// What a handshake answer looks like in a table: the reply, `none` (not a handshake) or the
/// error's reason.
fn shown(answer: Option<Result<Reply, crate::error::ApiError>>) -> String {
    match answer {
        None => "none".to_owned(),
        Some(Ok(Reply::Json(v))) => format!("json {v}"),
        Some(Ok(Reply::Text(t))) => format!("text {t}"),
        Some(Ok(Reply::NoContent)) => "204".to_owned(),
        Some(Err(e)) => format!("error {}", e.reason()),
    }
}

#[test]
fn query_handshakes() {
    let meta = Handshake::MetaVerifyToken {
        token: secret("tok-1"),
    };
    let crc = Handshake::TwitterCrc {
        secret: secret("consumer-secret"),
    };
    let cases: &[(&Handshake, Method, &str, &str)] = &[
        (
            &meta,
            Method::GET,
            "/m?hub.mode=subscribe&hub.verify_token=tok-1&hub.challenge=1158201444",
            "text 1158201444",
        ),
        (
            &meta,
            Method::GET,
            "/m?hub.mode=subscribe&hub.verify_token=tok-2&hub.challenge=1",
            "error mismatch",
        ),
        (
            &meta,
            Method::GET,
            "/m?hub.mode=unsubscribe&hub.verify_token=tok-1&hub.challenge=1",
            "error mismatch",
        ),
        (
            &meta,
            Method::GET,
            "/m?hub.mode=subscribe&hub.challenge=1",
            "error mismatch",
        ),
        (
            &meta,
            Method::GET,
            "/m?hub.challenge=1&hub.challenge=2&hub.verify_token=tok-1",
            "error bad_handshake",
        ),
        (
            &meta,
            Method::GET,
            "/m?hub.challenge=a%0Ab&hub.mode=subscribe&hub.verify_token=tok-1",
            "error bad_handshake",
        ),
        (&meta, Method::GET, "/m", "none"),
        (&meta, Method::POST, "/m?hub.challenge=1", "none"),
        // HMAC-SHA256 of "abc" under "consumer-secret", base64 (checked with Python's hmac).
        (
            &crc,
            Method::GET,
            "/t?crc_token=abc",
            "json {\"response_token\":\"sha256=AmJlybsqS9sBxTF2wc1u0EoL3rjCR3uY7cSzKbRTd80=\"}",
        ),
        (&crc, Method::GET, "/t?crc_token=", "error bad_handshake"),
        (&crc, Method::POST, "/t?crc_token=abc", "none"),
        (
            &Handshake::DropboxChallenge,
            Method::GET,
            "/d?challenge=x%20y",
            "text x y",
        ),
        (
            &Handshake::DropboxChallenge,
            Method::GET,
            "/d?other=1",
            "none",
        ),
        (
            &Handshake::MsgraphValidationToken,
            Method::POST,
            "/g?validationToken=Validation%3A+Testing",
            "text Validation: Testing",
        ),
        (
            &Handshake::MsgraphValidationToken,
            Method::GET,
            "/g?validationToken=x",
            "none",
        ),
        (
            &Handshake::SlackUrlVerification,
            Method::GET,
            "/s?challenge=x",
            "none",
        ),
    ];
    for (handshake, method, uri, expected) in cases {
        let uri: Uri = uri.parse().unwrap();
        assert_eq!(
            shown(from_query(handshake, method, &uri)),
            *expected,
            "{uri}"
        );
    }
    let long = format!("/d?challenge={}", "a".repeat(super::MAX_ECHO + 1));
    assert_eq!(
        shown(from_query(
            &Handshake::DropboxChallenge,
            &Method::GET,
            &long.parse().unwrap()
        )),
        "error bad_handshake"
    );
}

#[test]
fn body_handshakes() {
    let zoom = Handshake::ZoomUrlValidation {
        secret: secret("zoom-secret"),
    };
    let cases: &[(&Handshake, &str, &str)] = &[
        (
            &Handshake::SlackUrlVerification,
            r#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#,
            r#"json {"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#,
        ),
        (
            &Handshake::SlackUrlVerification,
            r#"{"type":"event_callback","event":{"type":"message"}}"#,
            "none",
        ),
        (
            &Handshake::SlackUrlVerification,
            r#"{"type":"url_verification"}"#,
            "error bad_handshake",
        ),
        (
            &Handshake::SlackUrlVerification,
            "command=%2Fdeploy",
            "none",
        ),
        // HMAC-SHA256 of "qgg8vlvZRS6UYooatFL8Aw" under "zoom-secret", hex (checked with Python's hmac).
        (
            &zoom,
            r#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1,"event":"endpoint.url_validation"}"#,
            r#"json {"encryptedToken":"b17f0320a1322a509340a1a835b3d9edbc491f0b0790ed2d20d0604d39dfe922","plainToken":"qgg8vlvZRS6UYooatFL8Aw"}"#,
        ),
        (&zoom, r#"{"event":"meeting.started","payload":{}}"#, "none"),
        (
            &Handshake::DiscordPing,
            r#"{"type":1,"id":"1","application_id":"2"}"#,
            r#"json {"type":1}"#,
        ),
        (
            &Handshake::DiscordPing,
            r#"{"version":1,"application_id":"2","type":0}"#,
            "204",
        ),
        (
            &Handshake::DiscordPing,
            r#"{"version":1,"type":1,"event":{"type":"APPLICATION_AUTHORIZED"}}"#,
            "none",
        ),
        (
            &Handshake::DiscordPing,
            r#"{"type":2,"data":{"name":"hello"}}"#,
            "none",
        ),
        (&Handshake::DropboxChallenge, r#"{"type":1}"#, "none"),
    ];
    for (handshake, body, expected) in cases {
        assert_eq!(
            shown(from_body(handshake, body.as_bytes())),
            *expected,
            "{body}"
        );
    }
}
