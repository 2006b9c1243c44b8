//! `clawlet-webhookd send`: signs and sends a delivery exactly as the provider would, so a
//! deployment can be tested end to end without the provider.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clawlet_verify::{custom, github, standard, stripe};
use serde_json::{Value, json};

use crate::cli::{Provider, SendArgs};
use crate::output::Output;

mod presets;

/// One delivery ready to go on the wire.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) method: reqwest::Method,
    /// Added to `--url` (handshakes that carry their challenge in the query).
    pub(crate) query: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// What the receiver must answer, for a handshake, as the provider checks it.
    pub(crate) expect: Option<Expected>,
}

/// A handshake's expected answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expected {
    Text(String),
    Json(Value),
}

/// The preset kind `provider` names, when it is not one of the four with code of their own.
fn preset_kind(provider: Provider) -> Option<clawlet_config::HandlerKind> {
    use clap::ValueEnum as _;
    let value = provider.to_possible_value()?;
    clawlet_config::HandlerKind::from_name(value.get_name()).filter(|kind| {
        !matches!(
            kind,
            clawlet_config::HandlerKind::Github
                | clawlet_config::HandlerKind::Stripe
                | clawlet_config::HandlerKind::Standard
                | clawlet_config::HandlerKind::Custom
        )
    })
}

/// Builds the signed delivery for `args` at time `now` (unix seconds).
pub(crate) fn build(args: &SendArgs, now: i64) -> Result<Delivery> {
    let event = args
        .event
        .clone()
        .unwrap_or_else(|| default_event(args.provider).to_owned());
    let delivery_id = args
        .delivery_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let file = match &args.payload {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    if let Some(kind) = preset_kind(args.provider) {
        return presets::build(kind, args, file, &delivery_id, now);
    }
    if args.handshake {
        bail!(
            "--handshake: a {} sender performs no handshake; slack, zoom, meta, twitter, msgraph, dropbox and discord do",
            provider_name(args.provider)
        );
    }
    let body = match file {
        Some(body) => body,
        None => sample(args.provider, &event, &delivery_id, now)?,
    };
    let secret = args.secret.as_bytes();
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    match args.provider {
        Provider::Github => headers.extend([
            (
                "User-Agent".to_owned(),
                "GitHub-Hookshot/clawlet-send".to_owned(),
            ),
            ("X-GitHub-Event".to_owned(), event),
            ("X-GitHub-Delivery".to_owned(), delivery_id),
            ("X-GitHub-Hook-ID".to_owned(), "1".to_owned()),
            (
                "X-Hub-Signature".to_owned(),
                github::sign_sha1(secret, &body),
            ),
            (
                "X-Hub-Signature-256".to_owned(),
                github::sign(secret, &body),
            ),
        ]),
        Provider::Stripe => headers.extend([
            (
                "User-Agent".to_owned(),
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)".to_owned(),
            ),
            (
                "Stripe-Signature".to_owned(),
                stripe::sign(secret, now, &body),
            ),
        ]),
        Provider::Standard => {
            let key = standard::Key::from_secret(&args.secret)
                .map_err(|err| anyhow::anyhow!("--secret: {err} (expected whsec_<base64>)"))?;
            let id = format!("msg_{delivery_id}");
            let signature = standard::sign(&key, &id, now, &body)
                .map_err(|err| anyhow::anyhow!("--secret: {err}"))?;
            headers.extend([
                ("webhook-id".to_owned(), id),
                ("webhook-timestamp".to_owned(), now.to_string()),
                ("webhook-signature".to_owned(), signature),
            ]);
        }
        Provider::Custom => headers.extend([
            ("X-Event-Type".to_owned(), event),
            ("X-Delivery-Id".to_owned(), delivery_id),
            (
                "X-Signature".to_owned(),
                custom::Scheme::default().sign(secret, &body),
            ),
        ]),
        other => bail!("{} is signed by its preset, not here", provider_name(other)),
    }
    Ok(Delivery {
        method: reqwest::Method::POST,
        query: None,
        headers,
        body,
        expect: None,
    })
}

fn provider_name(provider: Provider) -> String {
    use clap::ValueEnum as _;
    provider
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_owned())
}

/// The variable the example configuration reads the provider's secret from, for messages.
fn secret_variable(provider: Provider) -> String {
    match provider {
        Provider::Github => "GITHUB_WEBHOOK_SECRET".to_owned(),
        Provider::Stripe => "STRIPE_WEBHOOK_SECRET".to_owned(),
        Provider::Standard => "MYSERVICE_SECRET".to_owned(),
        Provider::Custom => "CUSTOM_WEBHOOK_SECRET".to_owned(),
        other => format!(
            "{}_WEBHOOK_SECRET",
            provider_name(other).to_ascii_uppercase()
        ),
    }
}

/// Whether the provider signs with a private key rather than `--secret`.
fn signs_with_private_key(provider: Provider) -> bool {
    matches!(provider, Provider::Discord | Provider::Sendgrid)
}

/// Refuses what cannot succeed before anything is sent: an empty secret (the signature could
/// never match a handler's, which must have a non-empty one) and a URL that is not an absolute
/// `http://` or `https://` URL. Returns the parsed URL.
pub(crate) fn check(args: &SendArgs) -> Result<reqwest::Url> {
    // Meta's subscribe request and Dropbox's challenge carry no signature at all.
    let unsigned_handshake =
        args.handshake && matches!(args.provider, Provider::Meta | Provider::Dropbox);
    if args.secret.is_empty() && !signs_with_private_key(args.provider) && !unsigned_handshake {
        let var = secret_variable(args.provider);
        bail!(
            "--secret is empty, so the signature cannot match the handler's secret and the \
             receiver would answer 401; pass the secret the handler is configured with, as in \
             --secret \"${var}\" with {var} exported in this shell with the value the daemon has \
             (or set CLAWLET_SEND_SECRET)"
        );
    }
    let example = "http://127.0.0.1:8080/webhook/github";
    // `localhost:8080/x` parses as a URL of scheme `localhost`: no `://` means no scheme given.
    if !args.url.contains("://") {
        bail!(
            "--url {}: the URL has no scheme; write it in full, as in {example}",
            args.url
        );
    }
    match reqwest::Url::parse(&args.url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(url),
        Ok(_) => bail!(
            "--url {}: the scheme must be http:// or https:// and a host must follow, as in {example}",
            args.url
        ),
        Err(err) => bail!(
            "--url {}: not a URL ({err}); write it as in {example}",
            args.url
        ),
    }
}

/// What `send` says when the receiver did not answer 2xx.
pub(crate) fn refusal(status: reqwest::StatusCode, args: &SendArgs) -> String {
    let mut message = format!("the receiver answered {status}");
    match status.as_u16() {
        401 => {
            let var = secret_variable(args.provider);
            let _ = write!(
                message,
                ": the signature did not verify; check that --secret is the secret of the \
                 handler at {} (its `secret:` in the daemon's configuration, with ${{VAR}} \
                 replaced as the daemon saw it: with config/example.yaml, export {var} with the \
                 same value for the daemon and for send)",
                args.url
            );
        }
        404 => {
            let _ = write!(
                message,
                ": no handler serves this path; the daemon logs its paths at start \
                 (\"webhook paths: …\") and `config check` prints each handler's `path`"
            );
        }
        _ => {}
    }
    message
}

/// Sends the delivery, prints the response, and fails unless the receiver answered 2xx.
pub(crate) async fn run(args: &SendArgs) -> Result<()> {
    let url = check(args)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let delivery = build(args, i64::try_from(now).unwrap_or(i64::MAX))?;
    if let Some(kind) = preset_kind(args.provider)
        && signs_with_private_key(args.provider)
        && let Some(key) = presets::public_key(kind, args)?
    {
        // The one value the operator must copy into the handler for this to verify.
        eprintln!("signed with the private key whose public_key is {key}");
    }
    let mut url = url;
    if let Some(query) = &delivery.query {
        url.set_query(Some(query));
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;
    let mut request = client
        .request(delivery.method.clone(), url)
        .body(delivery.body);
    for (name, value) in &delivery.headers {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("POST {}", args.url))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    // A reader that stops early (`| head -1`) does not change the outcome: the exit code still
    // says whether the receiver took the delivery.
    let mut out = Output::stdout();
    out.line(format_args!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    ))
    .context("writing to standard output")?;
    if !text.is_empty() {
        out.line(&text).context("writing to standard output")?;
    }
    out.finish().context("writing to standard output")?;
    if !status.is_success() {
        bail!("{}", refusal(status, args));
    }
    if let Some(expected) = &delivery.expect {
        check_answer(expected, &text)?;
    }
    Ok(())
}

/// Checks a handshake's answer as the provider does: the echoed value, or the computed token.
fn check_answer(expected: &Expected, text: &str) -> Result<()> {
    let matches = match expected {
        Expected::Text(want) => text == want,
        Expected::Json(want) => serde_json::from_str::<Value>(text).is_ok_and(|got| &got == want),
    };
    if !matches {
        bail!(
            "the receiver answered the handshake, but not as the provider expects, which would refuse to register the endpoint; expected {}",
            match expected {
                Expected::Text(want) => want.clone(),
                Expected::Json(want) => want.to_string(),
            }
        );
    }
    Ok(())
}

fn default_event(provider: Provider) -> &'static str {
    match provider {
        Provider::Github => "push",
        Provider::Stripe => "payment_intent.succeeded",
        // Presets pick their own default in `presets::sample`.
        _ => "user.created",
    }
}

const REPO: &str = "octo-org/hello-world";

/// A small, realistic body for the event, shaped like the provider's own.
fn sample(provider: Provider, event: &str, delivery_id: &str, now: i64) -> Result<Vec<u8>> {
    let body = match provider {
        Provider::Github => github_sample(event),
        Provider::Stripe => stripe_sample(event, delivery_id, now),
        _ => json!({
            "event_type": event,
            "type": event,
            "timestamp": time::OffsetDateTime::from_unix_timestamp(now)
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
            "data": { "user_id": "123", "email": "user@example.com", "name": "John Doe" },
        }),
    };
    serde_json::to_vec(&body).context("encoding the sample payload")
}

fn github_sample(event: &str) -> Value {
    let repository = json!({ "id": 1_296_269, "name": "hello-world", "full_name": REPO,
        "html_url": format!("https://github.com/{REPO}"), "default_branch": "main",
        "owner": { "login": "octo-org", "id": 1 } });
    let sender = json!({ "login": "octocat", "id": 583_231, "type": "User" });
    let pull_request = json!({ "number": 42, "title": "Add a health check", "state": "open",
        "html_url": format!("https://github.com/{REPO}/pull/42"), "user": sender,
        "head": { "ref": "health" }, "base": { "ref": "main" } });
    let issue = json!({ "number": 7, "title": "Webhook retries pile up", "state": "open",
        "html_url": format!("https://github.com/{REPO}/issues/7"), "user": sender });
    match event {
        "push" => {
            json!({ "ref": "refs/heads/main", "before": "0".repeat(40), "after": "a".repeat(40),
            "commits": [
                { "id": "a".repeat(40), "message": "Add health check", "author": { "name": "Octo Cat" } },
                { "id": "b".repeat(40), "message": "Document it", "author": { "name": "Octo Cat" } }
            ],
            "pusher": { "name": "octocat" }, "repository": repository, "sender": sender })
        }
        "pull_request" => json!({ "action": "opened", "number": 42, "pull_request": pull_request,
            "repository": repository, "sender": sender }),
        "issues" => {
            json!({ "action": "opened", "issue": issue, "repository": repository, "sender": sender })
        }
        "issue_comment" => json!({ "action": "created", "issue": issue,
            "comment": { "id": 1, "body": "Seen it too.", "user": sender },
            "repository": repository, "sender": sender }),
        "release" => json!({ "action": "published",
            "release": { "tag_name": "v1.0.0", "name": "v1.0.0", "author": sender },
            "repository": repository, "sender": sender }),
        "fork" => json!({ "forkee": { "full_name": "octocat/hello-world", "owner": sender },
            "repository": repository, "sender": sender }),
        "star" => json!({ "action": "created", "starred_at": "2024-01-15T10:30:00Z",
            "repository": repository, "sender": sender }),
        "ping" => json!({ "zen": "Keep it logically awesome.", "hook_id": 1,
            "hook": { "type": "Repository", "id": 1, "events": ["*"] },
            "repository": repository, "sender": sender }),
        other => {
            json!({ "action": "created", "repository": repository, "sender": sender, "event": other })
        }
    }
}

fn stripe_sample(event: &str, delivery_id: &str, now: i64) -> Value {
    let object = match event {
        "payment_intent.succeeded" | "payment_intent.payment_failed" => json!({
            "id": "pi_3Q0", "object": "payment_intent", "amount": 2999, "amount_received": 2999,
            "currency": "usd", "customer": "cus_Q0", "receipt_email": "customer@example.com",
            "status": if event.ends_with("succeeded") { "succeeded" } else { "requires_payment_method" } }),
        "checkout.session.completed" => json!({
            "id": "cs_test_Q0", "object": "checkout.session", "amount_total": 2999, "currency": "usd",
            "customer": "cus_Q0", "customer_details": { "email": "customer@example.com" },
            "payment_status": "paid", "status": "complete" }),
        "invoice.paid" | "invoice.payment_failed" => json!({
            "id": "in_Q0", "object": "invoice", "amount_due": 2999, "amount_paid": 2999,
            "currency": "usd", "customer": "cus_Q0", "customer_email": "customer@example.com",
            "status": if event == "invoice.paid" { "paid" } else { "open" } }),
        "customer.created" | "customer.updated" => json!({
            "id": "cus_Q0", "object": "customer", "email": "customer@example.com", "name": "Jenny Rosen" }),
        _ => json!({ "id": "obj_Q0" }),
    };
    let id = format!("evt_{}", delivery_id.replace('-', ""));
    json!({ "id": id, "object": "event", "api_version": "2024-06-20", "created": now,
        "livemode": false, "pending_webhooks": 1, "type": event, "data": { "object": object } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clawlet_verify::{Secret, UnixTime};

    fn args(provider: Provider, secret: &str) -> SendArgs {
        SendArgs {
            provider,
            url: "http://127.0.0.1:1/".to_owned(),
            secret: secret.to_owned(),
            private_key: None,
            public_url: None,
            verify_token: None,
            handshake: false,
            event: None,
            payload: None,
            delivery_id: Some("0190c6a0-0000-7000-8000-000000000001".to_owned()),
        }
    }

    /// Every preset's sample verifies with the preset's own scheme at the time it was signed,
    /// and not a minute past its window where it has one.
    #[test]
    fn every_preset_sample_verifies_with_its_scheme() {
        use clap::ValueEnum as _;
        use clawlet_verify::scheme::{Key, Request, SigningKey, Verifier};
        let seed = [7u8; 32];
        let now = 1_700_000_000;
        for provider in Provider::value_variants() {
            let Some(kind) = preset_kind(*provider) else {
                continue;
            };
            let mut a = args(*provider, "s3cret");
            a.private_key = Some("07".repeat(32));
            a.public_url = Some("https://hooks.example.com/h".to_owned());
            let d = build(&a, now).unwrap();
            let preset = clawlet_verify::presets::by_name(kind.name()).unwrap();
            let key = match kind {
                clawlet_config::HandlerKind::Discord => {
                    SigningKey::ed25519_seed(&seed).verifying_key()
                }
                clawlet_config::HandlerKind::Sendgrid => {
                    SigningKey::p256_scalar(&seed).unwrap().verifying_key()
                }
                _ => Key::secret("s3cret").unwrap(),
            };
            let verifier = Verifier::new(preset.scheme.clone(), vec![key]).unwrap();
            let request = Request::new(&d.headers, &d.body)
                .url("https://hooks.example.com/h")
                .method("POST");
            verifier
                .verify(&request, UnixTime::from_secs(now))
                .unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
        }
    }

    fn header<'a>(delivery: &'a Delivery, name: &str) -> Option<&'a [u8]> {
        delivery
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_bytes())
    }

    #[test]
    fn each_provider_signs_what_its_verifier_accepts() {
        let now = 1_700_000_000;
        let d = build(&args(Provider::Github, "s3cret"), now).unwrap();
        github::verify(
            &Secret::list(&["s3cret"]).unwrap(),
            github::Signatures {
                sha256: header(&d, "x-hub-signature-256"),
                sha1: None,
            },
            &d.body,
            github::Legacy::Refuse,
        )
        .unwrap();

        let d = build(&args(Provider::Stripe, "whsec_abc"), now).unwrap();
        stripe::verify(
            &Secret::list(&["whsec_abc"]).unwrap(),
            header(&d, "stripe-signature"),
            &d.body,
            UnixTime::from_secs(now),
            Some(stripe::DEFAULT_TOLERANCE),
        )
        .unwrap();

        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let d = build(&args(Provider::Standard, secret), now).unwrap();
        let key = standard::Key::from_secret(secret).unwrap();
        standard::verify(
            &[key],
            standard::Delivery {
                id: header(&d, "webhook-id"),
                timestamp: header(&d, "webhook-timestamp"),
                signature: header(&d, "webhook-signature"),
                body: &d.body,
            },
            UnixTime::from_secs(now),
            Some(standard::DEFAULT_TOLERANCE),
        )
        .unwrap();

        let d = build(&args(Provider::Custom, "s3cret"), now).unwrap();
        custom::Scheme::default()
            .verify(
                &Secret::list(&["s3cret"]).unwrap(),
                header(&d, "x-signature"),
                &d.body,
            )
            .unwrap();
    }

    /// What `send` says before sending anything, and after a refusal.
    #[test]
    fn messages() {
        let with = |secret: &str, url: &str| SendArgs {
            url: url.to_owned(),
            ..args(Provider::Github, secret)
        };
        let refused = |a: &SendArgs| check(a).map(drop).unwrap_err().to_string();
        insta::assert_snapshot!("empty_secret", refused(&with("", "http://127.0.0.1:8080/")));
        insta::assert_snapshot!(
            "url_without_scheme",
            refused(&with("s", "127.0.0.1:8080/webhook/github"))
        );
        insta::assert_snapshot!(
            "url_without_scheme_or_port",
            refused(&with("s", "localhost/webhook/github"))
        );
        insta::assert_snapshot!(
            "url_with_another_scheme",
            refused(&with("s", "ftp://127.0.0.1/webhook/github"))
        );
        assert!(check(&with("s", "https://hooks.example.com/webhook/github")).is_ok());
        let a = with("s", "http://127.0.0.1:8080/webhook/github");
        insta::assert_snapshot!(
            "answered_401",
            refusal(reqwest::StatusCode::UNAUTHORIZED, &a)
        );
        insta::assert_snapshot!("answered_404", refusal(reqwest::StatusCode::NOT_FOUND, &a));
        insta::assert_snapshot!(
            "answered_503",
            refusal(reqwest::StatusCode::SERVICE_UNAVAILABLE, &a)
        );
    }

    #[test]
    fn a_wrong_secret_does_not_verify() {
        let d = build(&args(Provider::Github, "s3cret"), 0).unwrap();
        assert!(
            github::verify(
                &Secret::list(&["other"]).unwrap(),
                github::Signatures {
                    sha256: header(&d, "x-hub-signature-256"),
                    sha1: None,
                },
                &d.body,
                github::Legacy::Refuse,
            )
            .is_err()
        );
    }

    /// `send sendgrid` posts a batch, which the daemon's SendGrid handler splits into one event
    /// per element, each with its own delivery id derived from `--delivery-id`.
    #[test]
    fn the_sendgrid_sample_is_a_batch_of_events() {
        let mut a = args(Provider::Sendgrid, "unused");
        a.private_key = Some("07".repeat(32));
        a.event = Some("open".to_owned());
        let d = build(&a, 1_700_000_000).unwrap();
        let custom = clawlet_events::CustomOptions {
            layout: crate::providers::layout(clawlet_config::HandlerKind::Sendgrid).unwrap(),
            ..clawlet_events::CustomOptions::default()
        };
        let headers: Vec<(&str, &[u8])> = d
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        let parsed = clawlet_events::parse_batch(&clawlet_events::Request {
            handler: "sendgrid",
            source: clawlet_events::Source::Sendgrid,
            headers: &headers,
            body: &bytes::Bytes::copy_from_slice(&d.body),
            received_at: time::OffsetDateTime::UNIX_EPOCH,
            custom: &custom,
        })
        .unwrap();
        let clawlet_events::Parsed::Batch(events) = parsed else {
            panic!("not a batch: {}", String::from_utf8_lossy(&d.body));
        };
        let got: Vec<(&str, &str)> = events
            .iter()
            .map(|e| (e.event_type.as_str(), e.delivery_id.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("open", "0190c6a0-0000-7000-8000-000000000001-1"),
                ("open", "0190c6a0-0000-7000-8000-000000000001-2"),
            ]
        );
    }

    #[test]
    fn samples_exist_for_every_event_the_spec_lists() {
        for event in [
            "push",
            "pull_request",
            "issues",
            "issue_comment",
            "release",
            "fork",
            "star",
            "ping",
        ] {
            let body: Value =
                serde_json::from_slice(&sample(Provider::Github, event, "d", 0).unwrap()).unwrap();
            assert!(body.get("repository").is_some(), "{event}");
        }
        for event in [
            "checkout.session.completed",
            "payment_intent.succeeded",
            "payment_intent.payment_failed",
            "invoice.paid",
            "invoice.payment_failed",
            "customer.created",
            "customer.updated",
        ] {
            let body: Value =
                serde_json::from_slice(&sample(Provider::Stripe, event, "d", 0).unwrap()).unwrap();
            assert_eq!(body["type"], event);
            assert!(body["data"]["object"]["id"].is_string(), "{event}");
        }
    }
}
