//! `kind: <preset>` handlers: the keys each reads, and the words used when one is missing or
//! does not belong.

use clawlet_config::{
    Credential, Encoding, HandlerKind, Signature, SignatureAlgorithm, TimestampUnit, load,
};

use crate::{check_error, opts, spec_env, write_config};

const DISCORD_KEY: &str = "e0d1c6a0b7f8e9d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6978877665544332211";
const SENDGRID_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEJ9y3yFKpj5wk6Ckz1Mf2ByxE0eWYkpJ2qcTHhfzw0cG5zQ6FHtOcP5mXqKgWv2uBvHtjdxsYqoS1bhgiUbXaQ==";

/// A handler block of `kind` with exactly the keys it needs.
fn minimal(kind: HandlerKind) -> String {
    let needs = kind.needs();
    let mut yaml = format!("    h:\n      kind: {}\n", kind.name());
    yaml.push_str(match needs.credential {
        Credential::Secret => "      secret: s3cret\n",
        Credential::SecretOrPublicKey => "      secret: whsec_c2VjcmV0\n",
        Credential::ClientState => "      client_state: state-1\n",
        Credential::PublicKey => "",
    });
    if kind == HandlerKind::Discord {
        yaml.push_str(&format!("      public_key: {DISCORD_KEY}\n"));
    }
    if kind == HandlerKind::Sendgrid {
        yaml.push_str(&format!("      public_key: {SENDGRID_KEY}\n"));
    }
    if needs.public_url {
        yaml.push_str("      public_url: https://hooks.example.com/webhook/h\n");
    }
    if needs.verify_token {
        yaml.push_str("      verify_token: tok-1\n");
    }
    yaml
}

#[test]
fn every_kind_loads_with_the_keys_it_needs() {
    for kind in HandlerKind::ALL {
        let (_dir, path) = write_config(&format!("webhooks:\n  handlers:\n{}", minimal(kind)));
        let loaded =
            load(&opts(Some(path), spec_env())).unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
        let h = &loaded.config.webhooks.handlers["h"];
        assert_eq!(h.kind, kind);
        assert!(h.verify, "{}", kind.name());
        let tolerance = match kind {
            HandlerKind::Linear => 60,
            HandlerKind::Paddle => 5,
            HandlerKind::Calendly => 180,
            _ => 300,
        };
        assert_eq!(h.tolerance_seconds, tolerance, "{}", kind.name());
        assert_eq!(HandlerKind::from_name(kind.name()), Some(kind));
    }
}

#[test]
fn a_custom_signature_block_is_read_whole() {
    let yaml = "webhooks:\n  handlers:\n    acme:\n      kind: custom\n      secret: s3cret\n      signature:\n        header: X-Acme-Signature\n        prefix: v1=\n        encoding: base64\n        algorithm: hmac-sha512\n        signed_payload: \"{timestamp}.{body}\"\n        timestamp_header: X-Acme-Timestamp\n        timestamp_unit: milliseconds\n        separator: \" \"\n";
    let (_dir, path) = write_config(yaml);
    let loaded = load(&opts(Some(path), spec_env())).unwrap();
    let h = &loaded.config.webhooks.handlers["acme"];
    assert_eq!(
        h.signature,
        Some(Signature {
            header: "X-Acme-Signature".into(),
            prefix: "v1=".into(),
            encoding: Encoding::Base64,
            algorithm: SignatureAlgorithm::HmacSha512,
            signed_payload: "{timestamp}.{body}".into(),
            timestamp_header: Some("X-Acme-Timestamp".into()),
            timestamp_unit: TimestampUnit::Milliseconds,
            id_header: None,
            separator: Some(" ".into()),
        })
    );
}

#[test]
fn preset_keys_missing_misplaced_or_malformed() {
    let cases: &[(&str, &str)] = &[
        (
            "preset_discord_without_public_key",
            "    d:\n      kind: discord\n",
        ),
        (
            "preset_discord_with_a_secret_and_a_bad_key",
            "    d:\n      kind: discord\n      secret: s\n      public_key: not-hex\n",
        ),
        (
            "preset_sendgrid_key_not_base64",
            "    s:\n      kind: sendgrid\n      public_key: \"%%%\"\n",
        ),
        (
            "preset_twilio_without_public_url",
            "    t:\n      kind: twilio\n      secret: s\n",
        ),
        (
            "preset_square_relative_public_url",
            "    q:\n      kind: square\n      secret: s\n      public_url: /webhook/q\n",
        ),
        (
            "preset_meta_without_verify_token",
            "    m:\n      kind: meta\n      secret: s\n",
        ),
        (
            "preset_msgraph_without_client_state",
            "    g:\n      kind: msgraph\n",
        ),
        (
            "preset_keys_a_kind_does_not_read",
            "    gh:\n      kind: github\n      secret: s\n      public_url: https://x.example/h\n      verify_token: t\n      client_state: c\n      public_key: k\n",
        ),
        (
            "preset_unknown_kind",
            "    x:\n      kind: slak\n      secret: s\n",
        ),
        (
            "preset_slack_without_secret",
            "    sl:\n      kind: slack\n",
        ),
        (
            "preset_standard_public_key_not_whpk",
            "    st:\n      kind: standard\n      public_key: abc\n",
        ),
        (
            "custom_signature_block_mistakes",
            "    c:\n      kind: custom\n      secret: s\n      prefix: x=\n      signature:\n        header: \"X Sig\"\n        algorithm: md5\n        encoding: hexx\n        signed_payload: \"{timestamp}.{bdy}\"\n        timestamp_unit: minutes\n        separator: \", \"\n",
        ),
        (
            "custom_signature_ed25519_needs_a_public_key",
            "    c:\n      kind: custom\n      signature:\n        header: X-Sig\n        algorithm: ed25519\n        signed_payload: \"{timestamp}{body}\"\n",
        ),
        (
            "custom_signature_on_a_preset",
            "    z:\n      kind: zoom\n      secret: s\n      signature:\n        header: X-Sig\n",
        ),
    ];
    for (name, handlers) in cases {
        check_error(
            name,
            &format!("webhooks:\n  handlers:\n{handlers}"),
            spec_env(),
        );
    }
}
