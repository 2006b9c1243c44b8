//! The handshakes senders perform to register an endpoint or check that it is alive, answered
//! here and never queued. Those a sender signs (Slack, Zoom, Discord) are read from a body that
//! has already verified; those it does not sign (Meta, X, Microsoft Graph, Dropbox) are answered
//! from the query alone, after the same allowlist and rate limit as any delivery.
//!
//! An echoed value is the sender's own text sent back: it is bounded and must be printable, and
//! plain-text answers say `nosniff`, so that the endpoint cannot be made to serve a page.

use axum::Json;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::ApiError;
use crate::spec::Handshake;

/// The longest challenge or token echoed back.
const MAX_ECHO: usize = 2048;

/// How a handshake is answered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `application/json`.
    Json(serde_json::Value),
    /// `text/plain` with `X-Content-Type-Options: nosniff`.
    Text(String),
    /// 204, no body.
    NoContent,
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Self::Json(value) => Json(value).into_response(),
            Self::Text(text) => {
                let mut response = text.into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                response.headers_mut().insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
                response
            }
            Self::NoContent => StatusCode::NO_CONTENT.into_response(),
        }
    }
}

/// The value of query parameter `name`; `Ok(None)` when absent. A repeated parameter, or one
/// that is too long or holds control characters, is refused rather than echoed.
fn param(uri: &Uri, name: &str) -> Result<Option<String>, ApiError> {
    let mut found = None;
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(key)? == name {
            let value = decode(value)?;
            if found.is_some() {
                return Err(ApiError::BadHandshake);
            }
            found = Some(value);
        }
    }
    match found {
        Some(v) if v.is_empty() || v.len() > MAX_ECHO || v.chars().any(char::is_control) => {
            Err(ApiError::BadHandshake)
        }
        other => Ok(other),
    }
}

/// A query component decoded as a form does it (`+` is a space, `%XX` a byte); refused when
/// an escape is malformed or the result is not UTF-8.
fn decode(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .ok_or(ApiError::BadHandshake)?;
                let hex = std::str::from_utf8(hex).map_err(|_| ApiError::BadHandshake)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| ApiError::BadHandshake)?);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ApiError::BadHandshake)
}

/// A handshake answered from the method and query alone, before any body is read: `None`
/// when this request is not one (it then goes on as a delivery, or is refused as before).
pub(crate) fn from_query(
    handshake: &Handshake,
    method: &Method,
    uri: &Uri,
) -> Option<Result<Reply, ApiError>> {
    let answer = |name: &str| param(uri, name).transpose();
    match handshake {
        Handshake::MetaVerifyToken { token } if method == Method::GET => {
            let challenge = answer("hub.challenge")?;
            Some(challenge.and_then(|challenge| {
                let mode = param(uri, "hub.mode")?;
                let given = param(uri, "hub.verify_token")?.unwrap_or_default();
                if mode.as_deref() != Some("subscribe")
                    || !clawlet_verify::handshake::token_matches(token, given.as_bytes())
                {
                    return Err(ApiError::Unauthorized(
                        clawlet_verify::VerifyError::Mismatch,
                    ));
                }
                Ok(Reply::Text(challenge))
            }))
        }
        Handshake::TwitterCrc { secret } if method == Method::GET => {
            Some(answer("crc_token")?.map(|token| {
                let response = clawlet_verify::handshake::twitter_crc_response(secret, &token);
                Reply::Json(serde_json::json!({ "response_token": response }))
            }))
        }
        Handshake::DropboxChallenge if method == Method::GET => {
            Some(answer("challenge")?.map(Reply::Text))
        }
        Handshake::MsgraphValidationToken if method == Method::POST => {
            Some(answer("validationToken")?.map(Reply::Text))
        }
        _ => None,
    }
}

/// The fields of a signed handshake body; everything else in it is ignored.
#[derive(Deserialize)]
struct Fields {
    #[serde(rename = "type")]
    kind: Option<serde_json::Value>,
    event: Option<serde_json::Value>,
    challenge: Option<String>,
    payload: Option<ZoomPayload>,
}

#[derive(Deserialize)]
struct ZoomPayload {
    #[serde(rename = "plainToken")]
    plain_token: Option<String>,
}

/// A signed handshake, read from a body that verified: `None` when the body is a delivery.
pub(crate) fn from_body(handshake: &Handshake, body: &[u8]) -> Option<Result<Reply, ApiError>> {
    if !matches!(
        handshake,
        Handshake::SlackUrlVerification
            | Handshake::ZoomUrlValidation { .. }
            | Handshake::DiscordPing
    ) || !body.trim_ascii_start().starts_with(b"{")
    {
        return None;
    }
    let fields: Fields = serde_json::from_slice(body).ok()?;
    let echoable = |text: String| {
        if text.is_empty() || text.len() > MAX_ECHO || text.chars().any(char::is_control) {
            Err(ApiError::BadHandshake)
        } else {
            Ok(text)
        }
    };
    match handshake {
        Handshake::SlackUrlVerification => (fields.kind.as_ref()?.as_str()? == "url_verification")
            .then(|| {
                let challenge = echoable(fields.challenge.unwrap_or_default())?;
                Ok(Reply::Json(serde_json::json!({ "challenge": challenge })))
            }),
        Handshake::ZoomUrlValidation { secret } => {
            (fields.event.as_ref()?.as_str()? == "endpoint.url_validation").then(|| {
                let plain = echoable(
                    fields
                        .payload
                        .and_then(|p| p.plain_token)
                        .unwrap_or_default(),
                )?;
                let encrypted = clawlet_verify::handshake::zoom_encrypted_token(secret, &plain);
                Ok(Reply::Json(
                    serde_json::json!({ "plainToken": plain, "encryptedToken": encrypted }),
                ))
            })
        }
        Handshake::DiscordPing => match fields.kind.as_ref()?.as_u64()? {
            // An interaction PING carries no event; a webhook event of type 1 does.
            1 if fields.event.is_none() => Some(Ok(Reply::Json(serde_json::json!({ "type": 1 })))),
            // Webhook events: type 0 is their PING.
            0 => Some(Ok(Reply::NoContent)),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests;
