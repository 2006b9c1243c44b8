//! Provider presets as the daemon serves them: the verifier and handshake built from
//! clawlet-verify's preset (or a custom handler's `signature:` block), and where clawlet-events
//! finds each preset's event type, action and delivery id. Every provider is a row here, not
//! code of its own.

use std::borrow::Cow;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use clawlet_config::{Handler, HandlerKind, SignatureAlgorithm, TimestampUnit};
use clawlet_events::{Layout, Place};
use clawlet_http::{Handshake, SchemeSpec, Verifier};
use clawlet_verify::Secret;
use clawlet_verify::Tolerance;
use clawlet_verify::presets::{self, Handshake as PresetHandshake};
use clawlet_verify::scheme::{
    self, Algorithm, Encoding, Key, List, Location, Scheme, Template, TimestampRule,
    TimestampSource, Unit,
};

/// What a preset's deliveries carry besides what its scheme says: the event type when the
/// scheme names none or names a poor one, the action, more delivery id places, and the body
/// shapes it sends.
struct Row {
    kind: HandlerKind,
    /// Tried before the scheme's event location.
    event_first: &'static [P],
    /// Tried after it.
    event_then: &'static [P],
    fallback_type: &'static str,
    action: &'static [P],
    /// Tried after the scheme's one-time token and delivery id.
    id_then: &'static [P],
    /// Whether the scheme's delivery id is left out (a batch whose first element's id would
    /// drop the rest of a different batch as a duplicate).
    id_hash_only: bool,
    /// A fresh delivery id when none is found (no dedup): see [`Layout::fresh_id`].
    fresh_id: bool,
    form: bool,
    array: bool,
    /// Whether an array body is a batch of events, each stored on its own (see
    /// [`Layout::split`]): the places are read inside each element, so the scheme's, which
    /// name the first element, are left out.
    split: bool,
    kept: &'static [&'static str],
}

/// A place in a row: a header or a JSON pointer.
#[derive(Clone, Copy)]
enum P {
    H(&'static str),
    J(&'static str),
}

const NONE: &[P] = &[];

const fn row(kind: HandlerKind) -> Row {
    Row {
        kind,
        event_first: NONE,
        event_then: NONE,
        fallback_type: "",
        action: NONE,
        id_then: NONE,
        id_hash_only: false,
        fresh_id: false,
        form: false,
        array: false,
        split: false,
        kept: &[],
    }
}

const ROWS: &[Row] = &[
    Row {
        event_then: &[P::J("/type")],
        fallback_type: "slash_command",
        id_then: &[P::J("/event_id"), P::J("/trigger_id")],
        form: true,
        kept: &["x-slack-retry-num", "x-slack-retry-reason"],
        ..row(HandlerKind::Slack)
    },
    row(HandlerKind::Zoom),
    Row {
        kept: &[
            "x-shopify-topic",
            "x-shopify-shop-domain",
            "x-shopify-api-version",
            "x-shopify-event-id",
            "x-shopify-webhook-id",
        ],
        ..row(HandlerKind::Shopify)
    },
    Row {
        event_first: &[P::J("/object_kind")],
        action: &[P::J("/object_attributes/action")],
        kept: &["x-gitlab-event", "x-gitlab-event-uuid", "x-gitlab-instance"],
        ..row(HandlerKind::Gitlab)
    },
    Row {
        event_then: &[P::J("/type")],
        action: &[P::J("/action")],
        kept: &["linear-event", "linear-delivery"],
        ..row(HandlerKind::Linear)
    },
    row(HandlerKind::Paddle),
    Row {
        event_then: &[
            P::J("/EventType"),
            P::J("/MessageStatus"),
            P::J("/SmsStatus"),
            P::J("/CallStatus"),
        ],
        fallback_type: "message",
        form: true,
        kept: &["i-twilio-idempotency-token"],
        ..row(HandlerKind::Twilio)
    },
    row(HandlerKind::Square),
    Row {
        array: true,
        ..row(HandlerKind::Hubspot)
    },
    row(HandlerKind::Pagerduty),
    row(HandlerKind::Mailgun),
    Row {
        action: &[P::J("/entry/0/changes/0/field")],
        ..row(HandlerKind::Meta)
    },
    Row {
        kept: &["x-event-key", "x-request-uuid", "x-hook-uuid"],
        ..row(HandlerKind::Bitbucket)
    },
    Row {
        action: &[P::J("/action")],
        kept: &["x-gitea-event", "x-gitea-delivery"],
        ..row(HandlerKind::Gitea)
    },
    Row {
        event_then: &[P::H("x-gitea-event")],
        action: &[P::J("/action")],
        id_then: &[P::H("x-gitea-delivery")],
        kept: &["x-forgejo-event", "x-forgejo-delivery"],
        ..row(HandlerKind::Forgejo)
    },
    row(HandlerKind::Typeform),
    Row {
        action: &[P::J("/action")],
        kept: &["sentry-hook-resource", "request-id"],
        ..row(HandlerKind::Sentry)
    },
    row(HandlerKind::Vercel),
    row(HandlerKind::Calendly),
    row(HandlerKind::Intercom),
    Row {
        id_then: &[P::J("/id")],
        ..row(HandlerKind::Coinbase)
    },
    Row {
        fallback_type: "account_activity",
        ..row(HandlerKind::Twitter)
    },
    Row {
        event_then: &[P::J("/value/0/lifecycleEvent")],
        fallback_type: "notification",
        // The scheme's id is the subscription's, the same for every notification it sends.
        id_hash_only: true,
        fresh_id: true,
        ..row(HandlerKind::Msgraph)
    },
    Row {
        fallback_type: "list_folder",
        fresh_id: true,
        ..row(HandlerKind::Dropbox)
    },
    Row {
        // Interactions name their kind by number; webhook events by name under `event`.
        event_first: &[P::J("/event/type")],
        fallback_type: "interaction",
        ..row(HandlerKind::Discord)
    },
    Row {
        // Each event of the array is stored on its own, deduplicated by its `sg_event_id`.
        event_first: &[P::J("/event")],
        id_then: &[P::J("/sg_event_id")],
        split: true,
        ..row(HandlerKind::Sendgrid)
    },
];

fn places(list: &[P]) -> impl Iterator<Item = Place> + '_ {
    list.iter().map(|p| match p {
        P::H(name) => Place::Header((*name).to_owned()),
        P::J(pointer) => Place::Pointer((*pointer).to_owned()),
    })
}

fn place(location: &Location) -> Vec<Place> {
    match location {
        Location::Header(name) => vec![Place::Header(name.to_string())],
        Location::HeaderOr(first, second) => vec![
            Place::Header(first.to_string()),
            Place::Header(second.to_string()),
        ],
        Location::Json(pointer) => vec![Place::Pointer(pointer.to_string())],
    }
}

/// Where a preset's deliveries carry their event type, action and delivery id: the scheme's
/// locations, completed by the preset's row. `None` for kinds parsed by code of their own.
pub(crate) fn layout(kind: HandlerKind) -> Option<Layout> {
    let row = ROWS.iter().find(|r| r.kind == kind)?;
    let scheme = &presets::by_name(kind.name())?.scheme;
    let mut event_type: Vec<Place> = places(row.event_first).collect();
    if !row.split {
        event_type.extend(scheme.event.iter().flat_map(place));
    }
    event_type.extend(places(row.event_then));
    // A one-time token (Mailgun's) is the dedup key: it is what may be accepted only once.
    let mut delivery_id: Vec<Place> = if row.id_hash_only || row.split {
        Vec::new()
    } else {
        scheme
            .token
            .iter()
            .chain(scheme.id.iter())
            .flat_map(place)
            .collect()
    };
    delivery_id.extend(places(row.id_then));
    Some(Layout {
        event_type,
        fallback_type: row.fallback_type.to_owned(),
        action: places(row.action).collect(),
        delivery_id,
        fresh_id: row.fresh_id,
        form: row.form,
        array: row.array,
        split: row.split,
        kept_headers: row.kept.iter().map(|h| (*h).to_owned()).collect(),
    })
}

/// The kinds verified by a declarative scheme: every kind but GitHub, Stripe, custom HMAC and
/// Standard Webhooks with a shared secret, which keep their own verifiers.
pub(crate) fn uses_scheme(h: &Handler) -> bool {
    match h.kind {
        HandlerKind::Github | HandlerKind::Stripe => false,
        HandlerKind::Custom => h.signature.is_some(),
        HandlerKind::Standard => h.public_key.is_some(),
        _ => true,
    }
}

/// The tolerance a handler's `tolerance_seconds` sets: 0 turns the check off.
fn tolerance(h: &Handler) -> Tolerance {
    if h.tolerance_seconds == 0 {
        Tolerance::UNCHECKED
    } else {
        Tolerance::both(Duration::from_secs(h.tolerance_seconds))
    }
}

fn secret(text: &str, key: &str, name: &str) -> Result<Secret> {
    Secret::new(text).map_err(|err| anyhow!("webhooks.handlers.{name}.{key}: {err}"))
}

/// The verifier of a handler for which [`uses_scheme`] holds.
pub(crate) fn verifier(h: &Handler) -> Result<Verifier> {
    let at = |key: &str| format!("webhooks.handlers.{}.{key}", h.name);
    let (mut scheme, handshake_kind) = match h.kind {
        HandlerKind::Custom => (custom_scheme(h)?, None),
        HandlerKind::Standard => (presets::STANDARD_ED25519.scheme.clone(), None),
        kind => {
            let preset = presets::by_name(kind.name())
                .ok_or_else(|| anyhow!("{}: no verifier for this kind", at("kind")))?;
            (preset.scheme.clone(), preset.handshake)
        }
    };
    if let Some(rule) = &mut scheme.timestamp {
        rule.tolerance = tolerance(h);
    }
    let public_key = || {
        h.public_key
            .as_deref()
            .ok_or_else(|| anyhow!("{}: is missing", at("public_key")))
    };
    let keys = match scheme.algorithm {
        Algorithm::Ed25519 => {
            let text = public_key()?;
            let text = text.strip_prefix("whpk_").unwrap_or(text);
            let key = if text.len() == 64 {
                Key::ed25519_hex(text)
            } else {
                Key::ed25519_base64(text)
            };
            vec![key.map_err(|err| anyhow!("{}: {err}", at("public_key")))?]
        }
        Algorithm::EcdsaP256Der | Algorithm::EcdsaP256Raw => vec![
            Key::p256_spki_base64(public_key()?)
                .map_err(|err| anyhow!("{}: {err}", at("public_key")))?,
        ],
        _ if h.kind == HandlerKind::Msgraph => {
            let state = h
                .client_state
                .as_ref()
                .ok_or_else(|| anyhow!("{}: is missing", at("client_state")))?;
            vec![
                Key::secret(state.expose())
                    .map_err(|err| anyhow!("{}: {err}", at("client_state")))?,
            ]
        }
        _ => h
            .secrets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Key::secret(s.expose()).map_err(|err| anyhow!("{}[{i}]: {err}", at("secrets")))
            })
            .collect::<Result<_>>()?,
    };
    let verifier = scheme::Verifier::new(scheme, keys).map_err(|err| {
        anyhow!(
            "{}: {err}",
            at(if h.kind == HandlerKind::Custom {
                "signature"
            } else {
                "kind"
            })
        )
    })?;
    let first_secret = || -> Result<Secret> {
        let s = h
            .secrets
            .first()
            .ok_or_else(|| anyhow!("{}: is missing", at("secret")))?;
        secret(s.expose(), "secret", &h.name)
    };
    let handshake = match handshake_kind {
        None => None,
        Some(PresetHandshake::SlackUrlVerification) => Some(Handshake::SlackUrlVerification),
        Some(PresetHandshake::ZoomUrlValidation) => Some(Handshake::ZoomUrlValidation {
            secret: first_secret()?,
        }),
        Some(PresetHandshake::MetaVerifyToken) => Some(Handshake::MetaVerifyToken {
            token: secret(
                h.verify_token
                    .as_ref()
                    .ok_or_else(|| anyhow!("{}: is missing", at("verify_token")))?
                    .expose(),
                "verify_token",
                &h.name,
            )?,
        }),
        Some(PresetHandshake::TwitterCrc) => Some(Handshake::TwitterCrc {
            secret: first_secret()?,
        }),
        Some(PresetHandshake::MsgraphValidationToken) => Some(Handshake::MsgraphValidationToken),
        Some(PresetHandshake::DropboxChallenge) => Some(Handshake::DropboxChallenge),
        Some(PresetHandshake::DiscordPing) => Some(Handshake::DiscordPing),
    };
    let client_state = match &h.client_state {
        Some(state) if h.kind == HandlerKind::Msgraph => {
            Some(secret(state.expose(), "client_state", &h.name)?)
        }
        _ => None,
    };
    let signature_header = match &h.signature {
        Some(sig) if h.kind == HandlerKind::Custom => Some(
            sig.header
                .to_ascii_lowercase()
                .parse()
                .with_context(|| format!("{}: not a header name", at("signature.header")))?,
        ),
        _ => None,
    };
    Ok(Verifier::Scheme(Box::new(SchemeSpec {
        verifier,
        public_url: h.public_url.clone(),
        client_state,
        handshake,
        signature_header,
    })))
}

/// A custom handler's `signature:` block as a scheme.
fn custom_scheme(h: &Handler) -> Result<Scheme> {
    let at = |key: &str| format!("webhooks.handlers.{}.signature.{key}", h.name);
    let sig = h
        .signature
        .as_ref()
        .ok_or_else(|| anyhow!("{}: is missing", at("header")))?;
    let owned = |text: &str| -> scheme::Name { Cow::Owned(text.to_ascii_lowercase()) };
    let payload = Template::parse(&sig.signed_payload)
        .map_err(|err| anyhow!("{}: {err}", at("signed_payload")))?;
    let algorithm = match sig.algorithm {
        SignatureAlgorithm::HmacSha1 => Algorithm::HmacSha1,
        SignatureAlgorithm::HmacSha256 => Algorithm::HmacSha256,
        SignatureAlgorithm::HmacSha512 => Algorithm::HmacSha512,
        SignatureAlgorithm::Ed25519 => Algorithm::Ed25519,
        SignatureAlgorithm::EcdsaP256 => Algorithm::EcdsaP256Der,
    };
    let list = match sig.separator.as_deref().map(str::as_bytes) {
        Some([byte]) => List::Separated(*byte),
        Some(_) => return Err(anyhow!("{}: must be one ASCII character", at("separator"))),
        None => List::Single,
    };
    Ok(Scheme {
        signature: scheme::Signature {
            location: Location::Header(owned(&sig.header)),
            prefix: Cow::Owned(sig.prefix.clone()),
            encoding: match sig.encoding {
                clawlet_config::Encoding::Hex => Encoding::Hex,
                clawlet_config::Encoding::Base64 => Encoding::Base64,
            },
            list,
        },
        payload,
        algorithm,
        timestamp: sig.timestamp_header.as_deref().map(|header| TimestampRule {
            source: TimestampSource::Location(Location::Header(owned(header))),
            unit: match sig.timestamp_unit {
                TimestampUnit::Seconds => Unit::Seconds,
                TimestampUnit::Milliseconds => Unit::Millis,
            },
            tolerance: tolerance(h),
        }),
        id: sig
            .id_header
            .as_deref()
            .map(|header| Location::Header(owned(header))),
        event: None,
        token: None,
        body_hash_param: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_kind_has_a_row_and_a_scheme() {
        for kind in HandlerKind::ALL {
            let parsed_by_own_code = matches!(
                kind,
                HandlerKind::Github
                    | HandlerKind::Stripe
                    | HandlerKind::Custom
                    | HandlerKind::Standard
            );
            assert_eq!(
                layout(kind).is_none(),
                parsed_by_own_code,
                "{}",
                kind.name()
            );
            if let Some(layout) = layout(kind) {
                assert!(
                    !layout.event_type.is_empty() || !layout.fallback_type.is_empty(),
                    "{} has no event type",
                    kind.name()
                );
            }
            let has_preset = presets::by_name(kind.name()).is_some();
            assert_eq!(has_preset, kind != HandlerKind::Custom, "{}", kind.name());
        }
    }

    #[test]
    fn a_handler_without_tolerance_seconds_keeps_its_senders_window() {
        for kind in HandlerKind::ALL {
            let Some(rule) =
                presets::by_name(kind.name()).and_then(|p| p.scheme.timestamp.as_ref())
            else {
                continue;
            };
            let window = Some(Duration::from_secs(kind.default_tolerance_seconds()));
            assert_eq!(rule.tolerance.past, window, "{}", kind.name());
            assert_eq!(rule.tolerance.future, window, "{}", kind.name());
        }
    }

    #[test]
    fn sendgrid_reads_each_event_of_its_batch_on_its_own() {
        let layout = layout(HandlerKind::Sendgrid).unwrap();
        assert!(layout.split);
        // Relative to each element: the scheme's `/0/...` places would name the first event.
        assert_eq!(layout.event_type, [Place::Pointer("/event".to_owned())]);
        assert_eq!(
            layout.delivery_id,
            [Place::Pointer("/sg_event_id".to_owned())]
        );
    }

    #[test]
    fn mailgun_dedups_on_its_one_time_token() {
        let layout = layout(HandlerKind::Mailgun).unwrap();
        assert_eq!(
            layout.delivery_id.first(),
            Some(&Place::Pointer("/signature/token".to_owned()))
        );
    }
}
