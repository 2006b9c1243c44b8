//! The senders this crate knows, each written in the [`scheme`](crate::scheme) language.
//!
//! A preset is data: its [`Scheme`] (signature, signed payload, algorithm, timestamp rule, where
//! the delivery id and event type are), what configuration it needs beyond a secret, and the
//! registration handshake the sender performs. Tolerances follow the sender's own library where
//! it sets one; where it sets none, this crate bounds both sides by five minutes (noted per
//! preset) so a captured delivery cannot be replayed forever.
//!
//! ```
//! use clawlet_verify::presets;
//! use clawlet_verify::scheme::{Key, Request, SigningKey, Verifier};
//! use clawlet_verify::{Secret, UnixTime};
//!
//! let slack = presets::by_name("slack").expect("a preset");
//! let secret = Secret::new("8f742231b10e8888abcd99yyyzzz85a5")?;
//! let now = UnixTime::from_secs(1_531_420_618);
//! let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J";
//!
//! let none: [(&str, &str); 0] = [];
//! let headers = slack.scheme.sign(&SigningKey::Secret(secret.clone()), &Request::new(&none, body), now)?;
//! let verifier = Verifier::new(slack.scheme.clone(), vec![Key::Secret(secret)])?;
//! verifier.verify(&Request::new(&headers, body), now)?;
//! # Ok::<(), clawlet_verify::VerifyError>(())
//! ```

use alloc::borrow::Cow;
use core::time::Duration;

use crate::Tolerance;
use crate::scheme::{
    Algorithm, Encoding, List, Location, Part, Scheme, Signature, Template, TimestampRule,
    TimestampSource, Unit,
};

/// Configuration a preset needs besides its secret or key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Needs {
    /// The sender's public key instead of a shared secret (Ed25519 or P-256).
    pub public_key: bool,
    /// The public URL the sender posts to, because it is signed.
    pub public_url: bool,
    /// A verify token for the registration handshake (Meta).
    pub verify_token: bool,
    /// The client state every notification carries (Microsoft Graph).
    pub client_state: bool,
}

/// A registration or liveness handshake the sender performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Handshake {
    /// Slack `url_verification`: echo `challenge` (the request is signed like any other).
    SlackUrlVerification,
    /// Zoom `endpoint.url_validation`: answer `plainToken` and
    /// [`zoom_encrypted_token`](crate::handshake::zoom_encrypted_token) (signed request).
    ZoomUrlValidation,
    /// Meta: `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` echoes the challenge
    /// when [the token matches](crate::handshake::token_matches) (unsigned).
    MetaVerifyToken,
    /// Twitter CRC: `GET ?crc_token=…` answered with
    /// [`twitter_crc_response`](crate::handshake::twitter_crc_response) (unsigned).
    TwitterCrc,
    /// Microsoft Graph: `POST ?validationToken=…` echoed as `text/plain` (unsigned).
    MsgraphValidationToken,
    /// Dropbox: `GET ?challenge=…` echoed as `text/plain` with `X-Content-Type-Options: nosniff`
    /// (unsigned).
    DropboxChallenge,
    /// Discord: a signed `{"type": 1}` PING answered with `{"type": 1}` (interactions) or 204
    /// (webhook events).
    DiscordPing,
}

/// One sender.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Preset {
    /// The `kind` name in configuration.
    pub kind: &'static str,
    /// How its deliveries are signed. Microsoft Graph signs nothing: its scheme is a
    /// [`Token`](Algorithm::Token) check of the first notification's `clientState`; check every
    /// notification with [`msgraph_client_state`](crate::handshake::msgraph_client_state).
    pub scheme: Scheme,
    /// What it needs besides a secret.
    pub needs: Needs,
    /// The handshake it performs, if any.
    pub handshake: Option<Handshake>,
}

const fn name(s: &'static str) -> Cow<'static, str> {
    Cow::Borrowed(s)
}

const fn header(s: &'static str) -> Location {
    Location::Header(name(s))
}

const fn pointer(s: &'static str) -> Location {
    Location::Json(name(s))
}

const fn sig(
    location: Location,
    prefix: &'static str,
    encoding: Encoding,
    list: List,
) -> Signature {
    Signature {
        location,
        prefix: name(prefix),
        encoding,
        list,
    }
}

const FIVE_MINUTES: Tolerance = Tolerance::both(Duration::from_secs(300));

const fn ts(source: TimestampSource, unit: Unit, tolerance: Tolerance) -> Option<TimestampRule> {
    Some(TimestampRule {
        source,
        unit,
        tolerance,
    })
}

const fn ts_header(h: &'static str, unit: Unit, tolerance: Tolerance) -> Option<TimestampRule> {
    ts(TimestampSource::Location(header(h)), unit, tolerance)
}

const BODY_ONLY: &[Part] = &[Part::Body];
const V0_TIMESTAMP_BODY: &[Part] = &[
    Part::Literal(name("v0:")),
    Part::Timestamp,
    Part::Literal(name(":")),
    Part::Body,
];
const TIMESTAMP_COLON_BODY: &[Part] = &[Part::Timestamp, Part::Literal(name(":")), Part::Body];
const URL_FORM: &[Part] = &[Part::UrlEitherPort, Part::Form];
const URL_BODY: &[Part] = &[Part::Url, Part::Body];
const METHOD_URL_BODY_TIMESTAMP: &[Part] = &[Part::Method, Part::Url, Part::Body, Part::Timestamp];
const TIMESTAMP_TOKEN: &[Part] = &[Part::Timestamp, Part::Json(name("/signature/token"))];
const TIMESTAMP_DOT_BODY: &[Part] = &[Part::Timestamp, Part::Literal(name(".")), Part::Body];
const TIMESTAMP_BODY: &[Part] = &[Part::Timestamp, Part::Body];
const ID_TIMESTAMP_BODY: &[Part] = &[
    Part::Id,
    Part::Literal(name(".")),
    Part::Timestamp,
    Part::Literal(name(".")),
    Part::Body,
];

const BODY: Template = Template::from_parts(BODY_ONLY);

/// A scheme that signs the body with HMAC and carries no timestamp.
const fn body_hmac(
    signature: Signature,
    algorithm: Algorithm,
    id: Option<Location>,
    event: Option<Location>,
) -> Scheme {
    Scheme {
        signature,
        payload: BODY,
        algorithm,
        timestamp: None,
        id,
        event,
        token: None,
        body_hash_param: None,
    }
}

const fn plain(kind: &'static str, scheme: Scheme) -> Preset {
    Preset {
        kind,
        scheme,
        needs: Needs {
            public_key: false,
            public_url: false,
            verify_token: false,
            client_state: false,
        },
        handshake: None,
    }
}

const fn with_handshake(mut preset: Preset, handshake: Handshake) -> Preset {
    preset.handshake = Some(handshake);
    preset
}

const fn needing(mut preset: Preset, needs: Needs) -> Preset {
    preset.needs = needs;
    preset
}

const NEEDS_PUBLIC_URL: Needs = Needs {
    public_key: false,
    public_url: true,
    verify_token: false,
    client_state: false,
};

const NEEDS_PUBLIC_KEY: Needs = Needs {
    public_key: true,
    public_url: false,
    verify_token: false,
    client_state: false,
};

/// Slack: `X-Slack-Signature: v0=<hex>` over `v0:<X-Slack-Request-Timestamp>:<body>`, five
/// minutes each way (the SDK's window).
pub const SLACK: Preset = with_handshake(
    plain(
        "slack",
        Scheme {
            signature: sig(
                header("x-slack-signature"),
                "v0=",
                Encoding::HexLower,
                List::Single,
            ),
            payload: Template::from_parts(V0_TIMESTAMP_BODY),
            algorithm: Algorithm::HmacSha256,
            timestamp: ts_header("x-slack-request-timestamp", Unit::Seconds, FIVE_MINUTES),
            id: None,
            event: Some(pointer("/event/type")),
            token: None,
            body_hash_param: None,
        },
    ),
    Handshake::SlackUrlVerification,
);

/// Zoom: `x-zm-signature: v0=<hex>` over `v0:<x-zm-request-timestamp>:<body>`; Zoom sets no
/// window, this crate uses five minutes each way.
pub const ZOOM: Preset = with_handshake(
    plain(
        "zoom",
        Scheme {
            signature: sig(
                header("x-zm-signature"),
                "v0=",
                Encoding::HexLower,
                List::Single,
            ),
            payload: Template::from_parts(V0_TIMESTAMP_BODY),
            algorithm: Algorithm::HmacSha256,
            timestamp: ts_header("x-zm-request-timestamp", Unit::Seconds, FIVE_MINUTES),
            id: None,
            event: Some(pointer("/event")),
            token: None,
            body_hash_param: None,
        },
    ),
    Handshake::ZoomUrlValidation,
);

/// Shopify: `X-Shopify-Hmac-Sha256: <base64>` over the body; `X-Shopify-Topic`,
/// `X-Shopify-Event-Id` (falling back to `X-Shopify-Webhook-Id`).
pub const SHOPIFY: Preset = plain(
    "shopify",
    body_hmac(
        sig(
            header("x-shopify-hmac-sha256"),
            "",
            Encoding::Base64,
            List::Single,
        ),
        Algorithm::HmacSha256,
        Some(Location::HeaderOr(
            name("x-shopify-event-id"),
            name("x-shopify-webhook-id"),
        )),
        Some(header("x-shopify-topic")),
    ),
);

/// GitLab: `X-Gitlab-Token` equal to the secret (constant time); `X-Gitlab-Event`;
/// `Idempotency-Key` (stable across retries, falling back to `X-Gitlab-Event-UUID`).
pub const GITLAB: Preset = plain(
    "gitlab",
    body_hmac(
        sig(header("x-gitlab-token"), "", Encoding::Text, List::Single),
        Algorithm::Token,
        Some(Location::HeaderOr(
            name("idempotency-key"),
            name("x-gitlab-event-uuid"),
        )),
        Some(header("x-gitlab-event")),
    ),
);

/// Linear: `Linear-Signature: <hex>` over the body; `webhookTimestamp` (milliseconds, in the
/// body) within 60 seconds each way, as Linear's SDK checks; `Linear-Delivery`, `Linear-Event`.
pub const LINEAR: Preset = plain(
    "linear",
    Scheme {
        signature: sig(header("linear-signature"), "", Encoding::Hex, List::Single),
        payload: BODY,
        algorithm: Algorithm::HmacSha256,
        timestamp: ts(
            TimestampSource::Location(pointer("/webhookTimestamp")),
            Unit::Millis,
            Tolerance::both(Duration::from_secs(60)),
        ),
        id: Some(header("linear-delivery")),
        event: Some(header("linear-event")),
        token: None,
        body_hash_param: None,
    },
);

/// Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex>[;h1=<hex>]` over `<ts>:<body>`, five
/// seconds old at most as Paddle's SDKs check (and five seconds ahead).
pub const PADDLE: Preset = plain(
    "paddle",
    Scheme {
        signature: sig(
            header("paddle-signature"),
            "",
            Encoding::HexLower,
            List::Pairs {
                separator: b';',
                key: name("h1"),
            },
        ),
        payload: Template::from_parts(TIMESTAMP_COLON_BODY),
        algorithm: Algorithm::HmacSha256,
        timestamp: ts(
            TimestampSource::Pair(name("ts")),
            Unit::Seconds,
            Tolerance::both(Duration::from_secs(5)),
        ),
        id: Some(pointer("/event_id")),
        event: Some(pointer("/event_type")),
        token: None,
        body_hash_param: None,
    },
);

/// Twilio: `X-Twilio-Signature: <base64 HMAC-SHA1>` over the public URL (with or without its
/// default port, as Twilio's validator accepts both) followed by the sorted form parameters; a
/// JSON body is covered by the URL's `bodySHA256` parameter instead.
/// `I-Twilio-Idempotency-Token` is the delivery id. Needs `public_url` and the `sha1` feature.
pub const TWILIO: Preset = needing(
    plain(
        "twilio",
        Scheme {
            signature: sig(
                header("x-twilio-signature"),
                "",
                Encoding::Base64,
                List::Single,
            ),
            payload: Template::from_parts(URL_FORM),
            algorithm: Algorithm::HmacSha1,
            timestamp: None,
            id: Some(header("i-twilio-idempotency-token")),
            event: None,
            token: None,
            body_hash_param: Some(name("bodySHA256")),
        },
    ),
    NEEDS_PUBLIC_URL,
);

/// Square: `x-square-hmacsha256-signature: <base64>` over the notification URL followed by the
/// body. Needs `public_url`.
pub const SQUARE: Preset = needing(
    plain(
        "square",
        Scheme {
            signature: sig(
                header("x-square-hmacsha256-signature"),
                "",
                Encoding::Base64,
                List::Single,
            ),
            payload: Template::from_parts(URL_BODY),
            algorithm: Algorithm::HmacSha256,
            timestamp: None,
            id: Some(pointer("/event_id")),
            event: Some(pointer("/type")),
            token: None,
            body_hash_param: None,
        },
    ),
    NEEDS_PUBLIC_URL,
);

/// HubSpot v3: `X-HubSpot-Signature-v3: <base64>` over method, URL, body and
/// `X-HubSpot-Request-Timestamp` (milliseconds). Its library truncates the timestamp to the
/// second and requires an age below five minutes, so exactly 300 s is already too old; the
/// future, which it leaves open, is bounded by five minutes here. Needs `public_url`.
pub const HUBSPOT: Preset = needing(
    plain(
        "hubspot",
        Scheme {
            signature: sig(
                header("x-hubspot-signature-v3"),
                "",
                Encoding::Base64,
                List::Single,
            ),
            payload: Template::from_parts(METHOD_URL_BODY_TIMESTAMP),
            algorithm: Algorithm::HmacSha256,
            timestamp: ts_header(
                "x-hubspot-request-timestamp",
                Unit::MillisWholeSecondsExclusive,
                FIVE_MINUTES,
            ),
            id: None,
            event: Some(pointer("/0/subscriptionType")),
            token: None,
            body_hash_param: None,
        },
    ),
    NEEDS_PUBLIC_URL,
);

/// PagerDuty v3: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>]` over the body; `X-Webhook-Id`.
pub const PAGERDUTY: Preset = plain(
    "pagerduty",
    body_hmac(
        sig(
            header("x-pagerduty-signature"),
            "v1=",
            Encoding::HexLower,
            List::Separated(b','),
        ),
        Algorithm::HmacSha256,
        Some(pointer("/event/id")),
        Some(pointer("/event/event_type")),
    ),
);

/// Mailgun: the body's `signature.signature` is the hex HMAC-SHA256 of `signature.timestamp`
/// followed by `signature.token`; the token is one-time (deduplicate on it). Mailgun sets no
/// window; this crate uses five minutes each way.
pub const MAILGUN: Preset = plain(
    "mailgun",
    Scheme {
        signature: sig(
            pointer("/signature/signature"),
            "",
            Encoding::HexLower,
            List::Single,
        ),
        payload: Template::from_parts(TIMESTAMP_TOKEN),
        algorithm: Algorithm::HmacSha256,
        timestamp: ts(
            TimestampSource::Location(pointer("/signature/timestamp")),
            Unit::Seconds,
            FIVE_MINUTES,
        ),
        id: Some(pointer("/event-data/id")),
        event: Some(pointer("/event-data/event")),
        token: Some(pointer("/signature/token")),
        body_hash_param: None,
    },
);

/// Meta (Facebook, Instagram, WhatsApp): `X-Hub-Signature-256: sha256=<hex>` over the body.
pub const META: Preset = needing(
    with_handshake(
        plain(
            "meta",
            body_hmac(
                sig(
                    header("x-hub-signature-256"),
                    "sha256=",
                    Encoding::HexLower,
                    List::Single,
                ),
                Algorithm::HmacSha256,
                None,
                Some(pointer("/object")),
            ),
        ),
        Handshake::MetaVerifyToken,
    ),
    Needs {
        public_key: false,
        public_url: false,
        verify_token: true,
        client_state: false,
    },
);

/// Bitbucket Cloud: `X-Hub-Signature: sha256=<hex>` over the body; `X-Event-Key`,
/// `X-Request-UUID`.
pub const BITBUCKET: Preset = plain(
    "bitbucket",
    body_hmac(
        sig(
            header("x-hub-signature"),
            "sha256=",
            Encoding::HexLower,
            List::Single,
        ),
        Algorithm::HmacSha256,
        Some(header("x-request-uuid")),
        Some(header("x-event-key")),
    ),
);

/// Gitea: `X-Gitea-Signature: <hex>` over the body; `X-Gitea-Event`, `X-Gitea-Delivery`.
pub const GITEA: Preset = plain(
    "gitea",
    body_hmac(
        sig(
            header("x-gitea-signature"),
            "",
            Encoding::HexLower,
            List::Single,
        ),
        Algorithm::HmacSha256,
        Some(header("x-gitea-delivery")),
        Some(header("x-gitea-event")),
    ),
);

/// Forgejo: `X-Forgejo-Signature: <hex>` over the body; `X-Forgejo-Event`,
/// `X-Forgejo-Delivery`.
pub const FORGEJO: Preset = plain(
    "forgejo",
    body_hmac(
        sig(
            header("x-forgejo-signature"),
            "",
            Encoding::HexLower,
            List::Single,
        ),
        Algorithm::HmacSha256,
        Some(header("x-forgejo-delivery")),
        Some(header("x-forgejo-event")),
    ),
);

/// Typeform: `Typeform-Signature: sha256=<base64>` over the body.
pub const TYPEFORM: Preset = plain(
    "typeform",
    body_hmac(
        sig(
            header("typeform-signature"),
            "sha256=",
            Encoding::Base64,
            List::Single,
        ),
        Algorithm::HmacSha256,
        Some(pointer("/event_id")),
        Some(pointer("/event_type")),
    ),
);

/// Sentry integration platform: `Sentry-Hook-Signature: <hex>` over the body;
/// `Sentry-Hook-Resource`, `Request-ID`.
pub const SENTRY: Preset = plain(
    "sentry",
    body_hmac(
        sig(
            header("sentry-hook-signature"),
            "",
            Encoding::HexLower,
            List::Single,
        ),
        Algorithm::HmacSha256,
        Some(header("request-id")),
        Some(header("sentry-hook-resource")),
    ),
);

/// Vercel: `x-vercel-signature: <hex HMAC-SHA1>` over the body (feature `sha1`).
pub const VERCEL: Preset = plain(
    "vercel",
    body_hmac(
        sig(
            header("x-vercel-signature"),
            "",
            Encoding::HexLower,
            List::Single,
        ),
        Algorithm::HmacSha1,
        Some(pointer("/id")),
        Some(pointer("/type")),
    ),
);

/// Calendly: `Calendly-Webhook-Signature: t=<unix>,v1=<hex>` over `<t>.<body>`; three minutes,
/// as Calendly's guide suggests.
pub const CALENDLY: Preset = plain(
    "calendly",
    Scheme {
        signature: sig(
            header("calendly-webhook-signature"),
            "",
            Encoding::HexLower,
            List::Pairs {
                separator: b',',
                key: name("v1"),
            },
        ),
        payload: Template::from_parts(TIMESTAMP_DOT_BODY),
        algorithm: Algorithm::HmacSha256,
        timestamp: ts(
            TimestampSource::Pair(name("t")),
            Unit::Seconds,
            Tolerance::both(Duration::from_secs(180)),
        ),
        id: None,
        event: Some(pointer("/event")),
        token: None,
        body_hash_param: None,
    },
);

/// Intercom: `X-Hub-Signature: sha1=<hex HMAC-SHA1>` over the body (feature `sha1`).
pub const INTERCOM: Preset = plain(
    "intercom",
    body_hmac(
        sig(
            header("x-hub-signature"),
            "sha1=",
            Encoding::HexLower,
            List::Single,
        ),
        Algorithm::HmacSha1,
        Some(pointer("/id")),
        Some(pointer("/topic")),
    ),
);

/// Coinbase Commerce: `X-CC-Webhook-Signature: <hex>` over the body.
pub const COINBASE: Preset = plain(
    "coinbase",
    body_hmac(
        sig(
            header("x-cc-webhook-signature"),
            "",
            Encoding::HexLower,
            List::Single,
        ),
        Algorithm::HmacSha256,
        Some(pointer("/event/id")),
        Some(pointer("/event/type")),
    ),
);

/// Twitter (X) Account Activity: `x-twitter-webhooks-signature: sha256=<base64>` over the body.
pub const TWITTER: Preset = with_handshake(
    plain(
        "twitter",
        body_hmac(
            sig(
                header("x-twitter-webhooks-signature"),
                "sha256=",
                Encoding::Base64,
                List::Single,
            ),
            Algorithm::HmacSha256,
            None,
            None,
        ),
    ),
    Handshake::TwitterCrc,
);

/// Microsoft Graph change notifications: nothing is signed; every notification's `clientState`
/// must equal the configured one. The scheme checks the first; use
/// [`msgraph_client_state`](crate::handshake::msgraph_client_state) for all of them.
pub const MSGRAPH: Preset = needing(
    with_handshake(
        plain(
            "msgraph",
            body_hmac(
                sig(
                    pointer("/value/0/clientState"),
                    "",
                    Encoding::Text,
                    List::Single,
                ),
                Algorithm::Token,
                Some(pointer("/value/0/subscriptionId")),
                Some(pointer("/value/0/changeType")),
            ),
        ),
        Handshake::MsgraphValidationToken,
    ),
    Needs {
        public_key: false,
        public_url: false,
        verify_token: false,
        client_state: true,
    },
);

/// Dropbox: `X-Dropbox-Signature: <hex>` over the body, keyed with the app secret.
pub const DROPBOX: Preset = with_handshake(
    plain(
        "dropbox",
        body_hmac(
            sig(
                header("x-dropbox-signature"),
                "",
                Encoding::HexLower,
                List::Single,
            ),
            Algorithm::HmacSha256,
            None,
            None,
        ),
    ),
    Handshake::DropboxChallenge,
);

/// Discord: `X-Signature-Ed25519: <hex>` over `<X-Signature-Timestamp><body>` with the
/// application's public key (feature `ed25519`); Discord sets no window, this crate uses five
/// minutes each way.
pub const DISCORD: Preset = needing(
    with_handshake(
        plain(
            "discord",
            Scheme {
                signature: sig(
                    header("x-signature-ed25519"),
                    "",
                    Encoding::Hex,
                    List::Single,
                ),
                payload: Template::from_parts(TIMESTAMP_BODY),
                algorithm: Algorithm::Ed25519,
                timestamp: ts_header("x-signature-timestamp", Unit::Seconds, FIVE_MINUTES),
                id: Some(pointer("/id")),
                event: Some(pointer("/type")),
                token: None,
                body_hash_param: None,
            },
        ),
        Handshake::DiscordPing,
    ),
    NEEDS_PUBLIC_KEY,
);

/// SendGrid Event Webhook: `X-Twilio-Email-Event-Webhook-Signature: <base64 DER>` ECDSA P-256
/// over `<X-Twilio-Email-Event-Webhook-Timestamp><body>` with the base64 SPKI public key
/// (feature `p256`); SendGrid sets no window, this crate uses five minutes each way. The body
/// is an array of events, each with its own `sg_event_id`.
pub const SENDGRID: Preset = needing(
    plain(
        "sendgrid",
        Scheme {
            signature: sig(
                header("x-twilio-email-event-webhook-signature"),
                "",
                Encoding::Base64,
                List::Single,
            ),
            payload: Template::from_parts(TIMESTAMP_BODY),
            algorithm: Algorithm::EcdsaP256Der,
            timestamp: ts_header(
                "x-twilio-email-event-webhook-timestamp",
                Unit::Seconds,
                FIVE_MINUTES,
            ),
            id: Some(pointer("/0/sg_event_id")),
            event: Some(pointer("/0/event")),
            token: None,
            body_hash_param: None,
        },
    ),
    NEEDS_PUBLIC_KEY,
);

const STANDARD_PAYLOAD: Template = Template::from_parts(ID_TIMESTAMP_BODY);

const fn standard_scheme(prefix: &'static str, algorithm: Algorithm) -> Scheme {
    Scheme {
        signature: sig(
            Location::HeaderOr(name("webhook-signature"), name("svix-signature")),
            prefix,
            Encoding::Base64,
            List::Separated(b' '),
        ),
        payload: STANDARD_PAYLOAD,
        algorithm,
        timestamp: ts(
            TimestampSource::Location(Location::HeaderOr(
                name("webhook-timestamp"),
                name("svix-timestamp"),
            )),
            Unit::Seconds,
            FIVE_MINUTES,
        ),
        id: Some(Location::HeaderOr(name("webhook-id"), name("svix-id"))),
        event: Some(pointer("/type")),
        token: None,
        body_hash_param: None,
    }
}

/// Standard Webhooks (and Svix): `webhook-signature: v1,<base64> …` HMAC-SHA256 over
/// `<webhook-id>.<webhook-timestamp>.<body>`, five minutes each way; `svix-*` headers are read
/// when `webhook-*` are absent. The key is the base64 after `whsec_`
/// ([`standard::Key`](crate::standard::Key) decodes it). With a `whpk_` public key use
/// [`STANDARD_ED25519`].
pub const STANDARD: Preset = plain("standard", standard_scheme("v1,", Algorithm::HmacSha256));

/// Standard Webhooks' asymmetric form: `webhook-signature: v1a,<base64 Ed25519>` with a `whpk_`
/// public key (feature `ed25519`). Not a `kind` of its own: `standard` with a `whpk_` key.
pub const STANDARD_ED25519: Preset = needing(
    plain("standard", standard_scheme("v1a,", Algorithm::Ed25519)),
    NEEDS_PUBLIC_KEY,
);

/// GitHub: `X-Hub-Signature-256: sha256=<hex>` over the body; `X-GitHub-Event`,
/// `X-GitHub-Delivery`. The [`github`](crate::github) module adds the legacy SHA-1 header and
/// refuses empty bodies.
pub const GITHUB: Preset = plain(
    "github",
    body_hmac(
        sig(
            header("x-hub-signature-256"),
            "sha256=",
            Encoding::HexLower,
            List::Single,
        ),
        Algorithm::HmacSha256,
        Some(header("x-github-delivery")),
        Some(header("x-github-event")),
    ),
);

/// Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]` over `<t>.<body>`, five minutes each
/// way; the key is the whole `whsec_…` string.
pub const STRIPE: Preset = plain(
    "stripe",
    Scheme {
        signature: sig(
            header("stripe-signature"),
            "",
            Encoding::HexLower,
            List::Pairs {
                separator: b',',
                key: name("v1"),
            },
        ),
        payload: Template::from_parts(TIMESTAMP_DOT_BODY),
        algorithm: Algorithm::HmacSha256,
        timestamp: ts(
            TimestampSource::Pair(name("t")),
            Unit::Seconds,
            FIVE_MINUTES,
        ),
        id: Some(pointer("/id")),
        event: Some(pointer("/type")),
        token: None,
        body_hash_param: None,
    },
);

/// Every preset with its own `kind`, in the order of the documentation.
pub static ALL: &[Preset] = &[
    SLACK, ZOOM, SHOPIFY, GITLAB, LINEAR, PADDLE, TWILIO, SQUARE, HUBSPOT, PAGERDUTY, MAILGUN,
    META, BITBUCKET, GITEA, FORGEJO, TYPEFORM, SENTRY, VERCEL, CALENDLY, INTERCOM, COINBASE,
    TWITTER, MSGRAPH, DROPBOX, DISCORD, SENDGRID, STANDARD, GITHUB, STRIPE,
];

/// The preset of a `kind`, compared exactly (`slack`, not `Slack`).
#[must_use]
pub fn by_name(kind: &str) -> Option<&'static Preset> {
    ALL.iter().find(|preset| preset.kind == kind)
}

#[cfg(test)]
mod tests;
