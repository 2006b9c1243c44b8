//! The plain structs the binary fills from its configuration.

use std::fmt;

use axum::http::{HeaderMap, HeaderName};
use clawlet_events::{CustomOptions, Source};
use clawlet_ratelimit::Quota;
use clawlet_verify::{Secret, UnixTime, VerifyError, custom, github, scheme, standard, stripe};
use ipnet::IpNet;

/// Everything the HTTP layer serves; swapped whole by [`crate::App::reload`].
#[derive(Debug, Clone)]
pub struct RuntimeSpec {
    /// The enabled handlers, one path each.
    pub handlers: Vec<HandlerSpec>,
    /// Addresses allowed to send to handlers without their own list; empty allows all.
    pub allowed_ips: Vec<IpNet>,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The quota per client IP for handlers without their own; `None` disables it.
    pub rate_limit: Option<Quota>,
    /// How many leading bits of an IPv6 client address every rate limit keys on (1 to 128; 64
    /// keys each /64 as one client). IPv4 clients are keyed by their whole address.
    pub rate_limit_ipv6_prefix: u8,
    /// The largest body accepted (25 MiB by default in the configuration).
    pub max_body_bytes: usize,
    /// What the per-request log line holds.
    pub logging: LogSpec,
}

/// What the per-request log line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSpec {
    /// One line per request at INFO (target `clawlet_http::request`).
    pub enabled: bool,
    /// Add the request headers; any whose name holds `token`, `key`, `secret`, `signature`,
    /// `auth`, `password`, `cookie`, `hmac`, `sign`, `credential` or `session`, and a custom
    /// handler's signature header, are redacted.
    pub include_headers: bool,
    /// Add the body (lossy UTF-8). It may hold personal data: off unless debugging.
    pub include_payload: bool,
}

impl Default for LogSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            include_headers: false,
            include_payload: false,
        }
    }
}

/// How a handler answers: the spec's `response_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseType {
    /// `{"status":"accepted","event_id":"…"}`, `{"error":"…"}`.
    #[default]
    Json,
    /// `accepted …`, one line of plain text.
    Text,
}

/// One webhook endpoint.
#[derive(Debug, Clone)]
pub struct HandlerSpec {
    /// The handler's name: the `handler` of its events, and the metrics label.
    pub name: String,
    /// The path it answers `POST` on, such as `/webhook/github`.
    pub path: String,
    /// Which sender kind it parses.
    pub source: Source,
    /// How the signature is checked.
    pub verifier: Verifier,
    /// Event types queued; empty queues all. An entry matches the event type (`pull_request`)
    /// or type and action (`pull_request.opened`).
    pub events: Vec<String>,
    /// How it answers.
    pub response_type: ResponseType,
    /// Addresses allowed to send here, replacing the global list; `None` uses the global one.
    /// An empty list allows every address (the binary's configuration refuses one).
    pub allowed_ips: Option<Vec<IpNet>>,
    /// The rate limit here: the global one, none, or a quota of its own.
    pub rate_limit: HandlerRateLimit,
    /// Where a custom handler finds the event type and delivery id.
    pub custom: CustomOptions,
}

/// A handler's rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HandlerRateLimit {
    /// The global limiter, shared with every other handler that uses it; none when the global
    /// limit is off.
    #[default]
    Global,
    /// No limit for this handler, whatever the global one is.
    Off,
    /// A quota per client IP for this handler alone.
    Own(Quota),
}

/// How a handler checks signatures. `Debug` never prints a secret.
#[derive(Clone)]
pub enum Verifier {
    /// No check at all: the binary warns loudly at start-up.
    Unverified,
    /// `X-Hub-Signature-256` (and legacy `X-Hub-Signature` when allowed).
    Github {
        /// Secrets tried in order (more than one while rotating).
        secrets: Vec<Vec<u8>>,
        /// Accept a SHA-1 signature when no SHA-256 one is sent.
        allow_legacy_sha1: bool,
    },
    /// `Stripe-Signature` with its timestamp.
    Stripe {
        /// Signing secrets (`whsec_…`) tried in order.
        secrets: Vec<Vec<u8>>,
        /// How old (or far ahead) the timestamp may be.
        tolerance_secs: u64,
    },
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature` (or the
    /// `svix-` spelling).
    Standard {
        /// Keys tried in order.
        keys: Vec<standard::Key>,
        /// How old (or far ahead) the timestamp may be.
        tolerance_secs: u64,
    },
    /// An HMAC of the body in one header.
    Custom {
        /// The header carrying the signature.
        header: HeaderName,
        /// Algorithm, encoding and prefix.
        scheme: custom::Scheme,
        /// Secrets tried in order.
        secrets: Vec<Vec<u8>>,
    },
    /// A provider preset, or a custom handler's declarative `signature:`.
    Scheme(Box<SchemeSpec>),
}

/// A handler checked by a declarative scheme, and the handshake its sender performs.
#[derive(Clone)]
pub struct SchemeSpec {
    /// The scheme with its keys, checked when it was built.
    pub verifier: scheme::Verifier,
    /// The URL the sender posts to, for schemes that sign it; the request's query is appended
    /// when this has none.
    pub public_url: Option<String>,
    /// Microsoft Graph: the `clientState` every notification must carry.
    pub client_state: Option<Secret>,
    /// The registration or liveness handshake answered for this handler.
    pub handshake: Option<Handshake>,
    /// A custom handler's signature header, redacted in logs besides the usual ones.
    pub signature_header: Option<HeaderName>,
}

/// A handshake a sender performs to register or check an endpoint. Those it signs are answered
/// only once the request verifies; none is ever queued.
#[derive(Clone)]
pub enum Handshake {
    /// Slack `url_verification` (signed): the `challenge` echoed.
    SlackUrlVerification,
    /// Zoom `endpoint.url_validation` (signed): `plainToken` and its HMAC under `secret`.
    ZoomUrlValidation {
        /// The webhook secret token.
        secret: Secret,
    },
    /// Meta's subscribe `GET`: `hub.challenge` echoed when `hub.verify_token` matches.
    MetaVerifyToken {
        /// The token configured at Meta.
        token: Secret,
    },
    /// X's CRC `GET`: `crc_token` answered with its HMAC under `secret`.
    TwitterCrc {
        /// The consumer secret.
        secret: Secret,
    },
    /// Microsoft Graph's `POST ?validationToken=`: the token echoed as text.
    MsgraphValidationToken,
    /// Dropbox's `GET ?challenge=`: the challenge echoed as text.
    DropboxChallenge,
    /// Discord's PING (signed): `{"type":1}` for an interaction, 204 for a webhook event.
    DiscordPing,
}

impl Handshake {
    /// The label of its counter in `/metrics`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::SlackUrlVerification => "slack_url_verification",
            Self::ZoomUrlValidation { .. } => "zoom_url_validation",
            Self::MetaVerifyToken { .. } => "meta_verify_token",
            Self::TwitterCrc { .. } => "twitter_crc",
            Self::MsgraphValidationToken => "msgraph_validation_token",
            Self::DropboxChallenge => "dropbox_challenge",
            Self::DiscordPing => "discord_ping",
        }
    }

    /// Whether the sender makes it with `GET` rather than `POST`.
    pub(crate) fn is_get(&self) -> bool {
        matches!(
            self,
            Self::MetaVerifyToken { .. } | Self::TwitterCrc { .. } | Self::DropboxChallenge
        )
    }
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl fmt::Debug for SchemeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheme")
            .field("algorithm", &self.verifier.scheme().algorithm)
            .field("public_url", &self.public_url)
            .field(
                "client_state",
                &self.client_state.as_ref().map(|_| Redacted(1)),
            )
            .field("handshake", &self.handshake)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unverified => f.write_str("Unverified"),
            Self::Github {
                secrets,
                allow_legacy_sha1,
            } => f
                .debug_struct("Github")
                .field("secrets", &Redacted(secrets.len()))
                .field("allow_legacy_sha1", allow_legacy_sha1)
                .finish(),
            Self::Stripe {
                secrets,
                tolerance_secs,
            } => f
                .debug_struct("Stripe")
                .field("secrets", &Redacted(secrets.len()))
                .field("tolerance_secs", tolerance_secs)
                .finish(),
            Self::Standard {
                keys,
                tolerance_secs,
            } => f
                .debug_struct("Standard")
                .field("keys", &Redacted(keys.len()))
                .field("tolerance_secs", tolerance_secs)
                .finish(),
            Self::Custom {
                header,
                scheme,
                secrets,
            } => f
                .debug_struct("Custom")
                .field("header", header)
                .field("scheme", scheme)
                .field("secrets", &Redacted(secrets.len()))
                .finish(),
            Self::Scheme(spec) => spec.fmt(f),
        }
    }
}

struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} redacted]", self.0)
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    headers.get(name).map(|value| value.as_bytes())
}

/// Whether `name` appears more than once.
fn repeated<K: axum::http::header::AsHeaderName>(headers: &HeaderMap, name: K) -> bool {
    headers.get_all(name).iter().nth(1).is_some()
}

/// The first of the names that is present.
fn either<'h>(headers: &'h HeaderMap, first: &str, second: &str) -> Option<&'h [u8]> {
    header(headers, first).or_else(|| header(headers, second))
}

impl Verifier {
    /// Whether a signature is checked at all.
    pub fn is_verified(&self) -> bool {
        !matches!(self, Self::Unverified)
    }

    /// Whether every secret is usable: at least one, none empty.
    pub(crate) fn has_usable_secrets(&self) -> bool {
        fn usable(secrets: &[Vec<u8>]) -> bool {
            !secrets.is_empty() && secrets.iter().all(|secret| !secret.is_empty())
        }
        match self {
            Self::Unverified => true,
            Self::Github { secrets, .. }
            | Self::Stripe { secrets, .. }
            | Self::Custom { secrets, .. } => usable(secrets),
            Self::Standard { keys, .. } => !keys.is_empty(),
            // Its keys were checked when the verifier was built.
            Self::Scheme(_) => true,
        }
    }

    /// The handshake this handler answers, if any.
    pub(crate) fn handshake(&self) -> Option<&Handshake> {
        match self {
            Self::Scheme(spec) => spec.handshake.as_ref(),
            _ => None,
        }
    }

    /// Checks the body's signature; `now_unix` for schemes with a timestamp, the method and the
    /// query for schemes that sign the URL.
    pub(crate) fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now_unix: i64,
        method: &str,
        query: Option<&str>,
    ) -> Result<(), VerifyError> {
        if let Self::Scheme(spec) = self {
            return spec.verify(headers, body, now_unix, method, query);
        }
        // A repeated signature, id or timestamp header is ambiguous: another hop (a proxy, an
        // audit log) may have read the other value, so neither is trusted.
        let ambiguous = match self {
            Self::Unverified => false,
            Self::Github { .. } => ["x-hub-signature-256", "x-hub-signature"]
                .into_iter()
                .any(|name| repeated(headers, name)),
            Self::Stripe { .. } => repeated(headers, "stripe-signature"),
            Self::Standard { .. } => [
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
                "svix-id",
                "svix-timestamp",
                "svix-signature",
            ]
            .into_iter()
            .any(|name| repeated(headers, name)),
            Self::Custom { header, .. } => repeated(headers, header),
            Self::Scheme(_) => false,
        };
        if ambiguous {
            return Err(VerifyError::MalformedHeader);
        }
        match self {
            Self::Unverified => Ok(()),
            Self::Github {
                secrets,
                allow_legacy_sha1,
            } => github::verify(
                &Secret::list(secrets)?,
                github::Signatures {
                    sha256: header(headers, "x-hub-signature-256"),
                    sha1: header(headers, "x-hub-signature"),
                },
                body,
                if *allow_legacy_sha1 {
                    github::Legacy::AllowSha1
                } else {
                    github::Legacy::Refuse
                },
            )
            .map(drop),
            Self::Stripe {
                secrets,
                tolerance_secs,
            } => stripe::verify(
                &Secret::list(secrets)?,
                header(headers, "stripe-signature"),
                body,
                UnixTime::from_secs(now_unix),
                (*tolerance_secs > 0).then(|| std::time::Duration::from_secs(*tolerance_secs)),
            )
            .map(drop),
            Self::Standard {
                keys,
                tolerance_secs,
            } => standard::verify(
                keys,
                standard::Delivery {
                    id: either(headers, "webhook-id", "svix-id"),
                    timestamp: either(headers, "webhook-timestamp", "svix-timestamp"),
                    signature: either(headers, "webhook-signature", "svix-signature"),
                    body,
                },
                UnixTime::from_secs(now_unix),
                (*tolerance_secs > 0).then(|| std::time::Duration::from_secs(*tolerance_secs)),
            )
            .map(drop),
            Self::Custom {
                header: name,
                scheme,
                secrets,
            } => scheme
                .verify(
                    &Secret::list(secrets)?,
                    headers.get(name).map(|v| v.as_bytes()),
                    body,
                )
                .map(drop),
            Self::Scheme(_) => Ok(()),
        }
    }

    /// The header carrying this handler's signature, redacted in logs besides the usual ones.
    pub(crate) fn signature_header(&self) -> Option<&HeaderName> {
        match self {
            Self::Custom { header, .. } => Some(header),
            Self::Scheme(spec) => spec.signature_header.as_ref(),
            _ => None,
        }
    }
}

impl SchemeSpec {
    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now_unix: i64,
        method: &str,
        query: Option<&str>,
    ) -> Result<(), VerifyError> {
        let url = self.public_url.as_deref().map(|url| match query {
            Some(query) if !url.contains('?') => std::borrow::Cow::Owned(format!("{url}?{query}")),
            _ => std::borrow::Cow::Borrowed(url),
        });
        let mut request = scheme::Request::new(headers, body).method(method);
        if let Some(url) = &url {
            request = request.url(url);
        }
        self.verifier
            .verify(&request, UnixTime::from_secs(now_unix))?;
        if let Some(state) = &self.client_state {
            clawlet_verify::handshake::msgraph_client_state(state, body)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_signature_header_is_refused() {
        let secret = b"hunter2-secret".to_vec();
        let body = b"{}";
        let verifier = Verifier::Github {
            secrets: vec![secret.clone()],
            allow_legacy_sha1: false,
        };
        let signature = github::sign(&secret, body);
        let mut headers = HeaderMap::new();
        headers.append("x-hub-signature-256", signature.parse().unwrap());
        assert_eq!(verifier.verify(&headers, body, 0, "POST", None), Ok(()));
        headers.append("x-hub-signature-256", signature.parse().unwrap());
        assert_eq!(
            verifier.verify(&headers, body, 0, "POST", None),
            Err(VerifyError::MalformedHeader)
        );
    }

    #[test]
    fn debug_never_prints_a_secret() {
        let secret = b"hunter2-secret".to_vec();
        let cases = [
            Verifier::Github {
                secrets: vec![secret.clone(), secret.clone()],
                allow_legacy_sha1: false,
            },
            Verifier::Stripe {
                secrets: vec![secret.clone()],
                tolerance_secs: 300,
            },
            Verifier::Standard {
                keys: vec![standard::Key::from_secret("whsec_aHVudGVyMi1zZWNyZXQ=").unwrap()],
                tolerance_secs: 300,
            },
            Verifier::Custom {
                header: HeaderName::from_static("x-signature"),
                scheme: custom::Scheme::default(),
                secrets: vec![secret.clone()],
            },
        ];
        let shown: Vec<String> = cases.iter().map(|v| format!("{v:?}")).collect();
        for text in &shown {
            assert!(!text.contains("hunter2"), "{text}");
            // Nor as a byte list.
            assert!(!text.contains("104, 117"), "{text}");
        }
        assert_eq!(
            shown[0],
            "Github { secrets: [2 redacted], allow_legacy_sha1: false }"
        );
        assert_eq!(format!("{:?}", Verifier::Unverified), "Unverified");
    }
}
