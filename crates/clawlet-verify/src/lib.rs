//! Webhook signature verification as pure functions over bytes.
//!
//! This crate checks the signatures that webhook senders attach to their deliveries, and
//! produces them for senders and tests. It must never do I/O, never read the clock itself (the
//! current time is a parameter), never depend on an HTTP framework or configuration types (the
//! optional `http` feature only lets it read an `http::HeaderMap`), never allocate on the success
//! path of an HMAC verification, and never put a secret or a signature value into an error or
//! `Debug` output.
//!
//! A sender is data: a [`scheme::Scheme`] says where the signature is, how it is encoded, what is
//! signed (a template such as `v0:{timestamp}:{body}`), with which algorithm (HMAC-SHA1/256/512,
//! Ed25519, ECDSA P-256, or a shared token) and how fresh the timestamp must be. [`presets`]
//! writes 29 senders in that language (Slack, Shopify, GitLab, Twilio, Discord, SendGrid, Standard
//! Webhooks, ...); a [`scheme::Verifier`] pairs a scheme with keys checked once.
//!
//! Every verification takes a list of keys so that rotations work: the delivery is accepted
//! when any key matches, and [`Verified::secret_index`] says which one did. Every comparison is
//! constant-time ([`subtle`]), and a truncated or empty signature never passes. The signature is
//! checked before the timestamp, so a timestamp error always means an authentic but stale
//! delivery. A passed check does not make a delivery new: a replay inside the tolerance window
//! passes again, so deduplicate on the delivery id the scheme names. A failure is a
//! [`VerifyError`] whose [`code`](VerifyError::code) is a stable string for logs and metrics and
//! whose [`kind`](VerifyError::kind) says whether to answer 400, 401 or alert an operator.
//!
//! | module | what it checks |
//! |---|---|
//! | [`presets`] | 29 senders as data, with `presets::by_name("slack")` |
//! | [`scheme`] | the declarative language, [`scheme::Verifier`] and signing |
//! | [`handshake`] | registration answers: Zoom, Twitter CRC, Meta and Graph tokens |
//! | [`github`] | `X-Hub-Signature-256` (legacy `X-Hub-Signature` on request), empty bodies refused |
//! | [`stripe`] | `Stripe-Signature: t=…,v1=…` |
//! | [`standard`] | Standard Webhooks and Svix: `webhook-*` or `svix-*`, `v1` HMAC and `v1a` Ed25519 |
//! | [`custom`] | one header, `<prefix><hex or base64>` HMAC of the body |
//!
//! Features: `std` (default; without it the crate is `no_std` + `alloc`), `sha1` (default),
//! `ed25519`, `p256`, `http`.
//!
//! # A preset
//!
//! ```
//! use clawlet_verify::presets;
//! use clawlet_verify::scheme::{Key, Request, Verifier};
//! use clawlet_verify::{Secret, UnixTime};
//!
//! // Slack's documented example.
//! let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
//! let headers = [
//!     ("X-Slack-Request-Timestamp", "1531420618"),
//!     ("X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"),
//! ];
//! let secret = Secret::new("8f742231b10e8888abcd99yyyzzz85a5")?;
//! let verifier = Verifier::new(presets::SLACK.scheme, vec![Key::Secret(secret)])?;
//!
//! let verified = verifier.verify(&Request::new(&headers, body), UnixTime::from_secs(1531420618 + 60))?;
//! assert_eq!(verified.timestamp(), Some(1531420618));
//!
//! let late = verifier.verify(&Request::new(&headers, body), UnixTime::from_secs(1531420618 + 301));
//! assert_eq!(late.map_err(|e| e.code()), Err("timestamp_too_old"));
//! # Ok::<(), clawlet_verify::VerifyError>(())
//! ```
//!
//! # GitHub
//!
//! ```
//! use clawlet_verify::{Secret, github};
//!
//! let body = br#"{"zen":"Keep it logically awesome."}"#;
//! let header = github::sign(b"It's a Secret to Everybody", body);
//! assert!(header.starts_with("sha256="));
//!
//! let secrets = Secret::list(&["old secret", "It's a Secret to Everybody"])?;
//! let signatures = github::Signatures { sha256: Some(header.as_bytes()), sha1: None };
//! let verified = github::verify(&secrets, signatures, body, github::Legacy::Refuse)?;
//! assert_eq!(verified.secret_index(), 1);
//!
//! let err = github::verify(&secrets, signatures, b"{}", github::Legacy::Refuse).unwrap_err();
//! assert_eq!(err.code(), "mismatch");
//! # Ok::<(), clawlet_verify::VerifyError>(())
//! ```
//!
//! # Stripe
//!
//! ```
//! use clawlet_verify::{Secret, UnixTime, VerifyError, stripe};
//!
//! let secret = "whsec_test_secret";
//! let body = br#"{"id":"evt_1","type":"invoice.paid"}"#;
//! let header = stripe::sign(secret.as_bytes(), 1_700_000_000, body);
//! let secrets = Secret::list(&[secret])?;
//!
//! let now = UnixTime::from_secs(1_700_000_010);
//! stripe::verify(&secrets, Some(header.as_bytes()), body, now, Some(stripe::DEFAULT_TOLERANCE))?;
//!
//! let later = UnixTime::from_secs(1_700_000_000 + 301);
//! let err = stripe::verify(&secrets, Some(header.as_bytes()), body, later, Some(stripe::DEFAULT_TOLERANCE));
//! assert_eq!(err.unwrap_err(), VerifyError::TimestampTooOld);
//! # Ok::<(), clawlet_verify::VerifyError>(())
//! ```
//!
//! # Standard Webhooks
//!
//! ```
//! use clawlet_verify::standard::{self, Key};
//!
//! let key = Key::from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//! let body = br#"{"test": 2432232314}"#;
//! let signature = standard::sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)?;
//! assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
//!
//! // Svix sends the same values under `svix-*` names; `verify_headers` reads either.
//! let headers = [
//!     ("svix-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
//!     ("svix-timestamp", "1614265330"),
//!     ("svix-signature", signature.as_str()),
//! ];
//! let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1614265330);
//! standard::verify_headers(&[key], &headers, body, now, Some(standard::DEFAULT_TOLERANCE))?;
//! # Ok::<(), clawlet_verify::VerifyError>(())
//! ```
//!
//! # Custom HMAC
//!
//! ```
//! use clawlet_verify::Secret;
//! use clawlet_verify::custom::{Algorithm, Encoding, Scheme};
//!
//! let scheme = Scheme { algorithm: Algorithm::Sha512, encoding: Encoding::Base64, prefix: String::new() };
//! let header = scheme.sign(b"shared secret", b"payload");
//! scheme.verify(&[Secret::new("shared secret")?], Some(header.as_bytes()), b"payload")?;
//!
//! // The default is the common `X-Signature: sha256=<hex>` shape.
//! let header = Scheme::default().sign(b"shared secret", b"payload");
//! assert!(header.starts_with("sha256=") && header.len() == 7 + 64);
//! # Ok::<(), clawlet_verify::VerifyError>(())
//! ```

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

mod error;
mod headers;
mod json;
mod mac;
mod secret;
mod time;

pub mod custom;
pub mod github;
pub mod handshake;
pub mod presets;
pub mod scheme;
pub mod standard;
pub mod stripe;

pub use error::{ErrorKind, Verified, VerifyError};
pub use headers::{Headers, Lookup};
pub use secret::Secret;
pub use time::{Tolerance, UnixTime};

/// Compiles and runs the examples of the crate's README as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
