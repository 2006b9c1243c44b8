//! Webhook signature verification as pure functions over bytes.
//!
//! This crate checks the signatures that GitHub, Stripe, Standard Webhooks (Svix) and custom HMAC
//! senders attach to their deliveries, and produces them for senders and tests. It must never do
//! I/O, never read the clock itself (the current time is a parameter), never know about HTTP or
//! configuration types, never allocate on the success path of a verification, and never put a
//! secret or a signature value into an error or `Debug` output.
//!
//! Every `verify` function takes a list of secrets so that rotations work: the delivery is accepted
//! when any secret matches, and [`Verified::secret_index`] says which one did. Every comparison of
//! a digest is constant-time ([`subtle`]), and a truncated or empty signature never passes. A
//! failure is a [`VerifyError`] whose [`code`](VerifyError::code) is a stable string for logs and
//! metrics.
//!
//! | module | headers | signed bytes | key |
//! |---|---|---|---|
//! | [`github`] | `X-Hub-Signature-256` (legacy `X-Hub-Signature`) | body | secret bytes |
//! | [`stripe`] | `Stripe-Signature` | `<t>.<body>` | whole secret string |
//! | [`standard`] | `webhook-id`, `webhook-timestamp`, `webhook-signature` | `<id>.<t>.<body>` | base64 after `whsec_` |
//! | [`custom`] | one header of your choice | body | secret bytes |
//!
//! # GitHub
//!
//! ```
//! use clawlet_verify::github;
//!
//! let body = br#"{"zen":"Keep it logically awesome."}"#;
//! let header = github::sign(b"It's a Secret to Everybody", body);
//! assert!(header.starts_with("sha256="));
//!
//! let secrets = ["old secret", "It's a Secret to Everybody"];
//! let verified = github::verify(&secrets, Some(header.as_bytes()), None, body, false)?;
//! assert_eq!(verified.secret_index(), 1);
//!
//! let err = github::verify(&secrets, Some(header.as_bytes()), None, b"{}", false).unwrap_err();
//! assert_eq!(err.code(), "mismatch");
//! # Ok::<(), clawlet_verify::VerifyError>(())
//! ```
//!
//! # Stripe
//!
//! ```
//! use clawlet_verify::stripe;
//!
//! let secret = "whsec_test_secret";
//! let body = br#"{"id":"evt_1","type":"invoice.paid"}"#;
//! let header = stripe::sign(secret.as_bytes(), 1_700_000_000, body);
//!
//! let now = 1_700_000_010;
//! stripe::verify(&[secret], Some(header.as_bytes()), body, now, stripe::DEFAULT_TOLERANCE_SECS)?;
//!
//! let later = 1_700_000_000 + 301;
//! let err = stripe::verify(&[secret], Some(header.as_bytes()), body, later, 300).unwrap_err();
//! assert_eq!(err, clawlet_verify::VerifyError::TimestampTooOld);
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
//! let signature = standard::sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
//! assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
//!
//! standard::verify(
//!     &[key],
//!     Some(b"msg_p5jXN8AQM9LWM0D4loKWxJek"),
//!     Some(b"1614265330"),
//!     Some(signature.as_bytes()),
//!     body,
//!     1614265330,
//!     standard::DEFAULT_TOLERANCE_SECS,
//! )?;
//! # Ok::<(), clawlet_verify::VerifyError>(())
//! ```
//!
//! # Custom HMAC
//!
//! ```
//! use clawlet_verify::custom::{Algorithm, Encoding, Scheme};
//!
//! let scheme = Scheme { algorithm: Algorithm::Sha512, encoding: Encoding::Base64, prefix: String::new() };
//! let header = scheme.sign(b"shared secret", b"payload");
//! scheme.verify(&[b"shared secret"], Some(header.as_bytes()), b"payload")?;
//!
//! // The default is the common `X-Signature: sha256=<hex>` shape.
//! let header = Scheme::default().sign(b"shared secret", b"payload");
//! assert!(header.starts_with("sha256=") && header.len() == 7 + 64);
//! # Ok::<(), clawlet_verify::VerifyError>(())
//! ```

mod error;
mod mac;

pub mod custom;
pub mod github;
pub mod standard;
pub mod stripe;

pub use error::{Verified, VerifyError};

/// Compiles and runs the examples of the crate's README as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
