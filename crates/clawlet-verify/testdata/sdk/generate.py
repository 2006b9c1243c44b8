#!/usr/bin/env python3
"""Writes the per-preset signature vectors of clawlet-verify.

Run from anywhere, inside a virtual environment holding the exact versions of requirements.txt:

    python3 -m venv /tmp/sdkvenv
    /tmp/sdkvenv/bin/pip install -r crates/clawlet-verify/testdata/sdk/requirements.txt
    /tmp/sdkvenv/bin/python crates/clawlet-verify/testdata/sdk/generate.py

It writes `../signatures/<preset>.json` (one file per preset) and `../e2e-cases.json`.

The output is a pure function of this file and the pinned libraries: the clock is fixed (every case
carries `now`), secrets are literals, the Ed25519 keys come from fixed seeds and the ECDSA
signatures are deterministic (RFC 6979). Running it twice gives the same bytes.

Where a provider publishes an official SDK on PyPI, the SDK signs where it has a signer, and its
verifier is asked about EVERY case, with the clock frozen at the case's `now`. Its answer is
recorded in `library_results`; a case whose `expect` differs from an SDK answer must say why in
`reason` and carry `quirk: true`, or the script stops.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import hashlib
import hmac
import io
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from nacl.signing import SigningKey

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "signatures"
E2E = HERE.parent / "e2e-cases.json"

# 2026-01-01T00:00:00Z: every "now" below is this instant unless a published example fixes its own.
NOW = 1767225600

# Paddle's SDK reads TEST_MODE to switch its clock check off; the vectors need the check on.
os.environ.pop("TEST_MODE", None)


def v(dist: str) -> str:
    return f"{dist}@{version(dist)}"


# ---------------------------------------------------------------------------------------------
# primitives (used for doc-derived presets and to build tampered or foreign signatures)


def hmac_raw(alg, key: str | bytes, msg: str | bytes) -> bytes:
    key = key.encode() if isinstance(key, str) else key
    msg = msg.encode() if isinstance(msg, str) else msg
    return hmac.new(key, msg, alg).digest()


def hex256(key, msg) -> str:
    return hmac_raw(hashlib.sha256, key, msg).hex()


def b64_256(key, msg) -> str:
    return base64.b64encode(hmac_raw(hashlib.sha256, key, msg)).decode()


def hex1(key, msg) -> str:
    return hmac_raw(hashlib.sha1, key, msg).hex()


# ---------------------------------------------------------------------------------------------
# frozen clocks for the SDKs that read the time themselves


class _FrozenDatetime(_dt.datetime):
    frozen: float = NOW

    @classmethod
    def now(cls, tz=None):
        return _dt.datetime.fromtimestamp(cls.frozen, tz=tz or _dt.timezone.utc)


@contextlib.contextmanager
def frozen_datetime(module, now: int):
    saved = module.datetime
    _FrozenDatetime.frozen = now
    module.datetime = _FrozenDatetime
    try:
        yield
    finally:
        module.datetime = saved


def outcome(fn) -> str:
    """Runs one SDK verification and names its answer; an exception is a rejection."""
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink):
            ok = fn()
    except Exception as e:  # the SDKs signal rejection by raising as often as by returning False
        return f"reject ({type(e).__name__}: {e})"
    if ok is False:
        return "reject (returned False)"
    return "accept"


# ---------------------------------------------------------------------------------------------
# the case record


FIELD_ORDER = [
    "name", "preset", "secret", "secrets", "public_key", "url", "method", "headers", "body", "body_file",
    "now", "tolerance", "expect", "code", "quirk", "handshake", "reason", "library_results",
]


def any_key(keys, fn) -> str:
    """Asks the SDK once per configured secret, as an application holding several would."""
    results = [outcome(lambda k=k: fn(k)) for k in keys]
    return "accept" if "accept" in results else results[0]


def case(**kw) -> dict:
    unknown = set(kw) - set(FIELD_ORDER)
    assert not unknown, unknown
    kw.setdefault("now", NOW)
    return {k: kw[k] for k in FIELD_ORDER if k in kw and kw[k] is not None}


def check_agreement(preset: str, cases: list[dict]) -> None:
    for c in cases:
        for lib, answer in c.get("library_results", {}).items():
            agrees = answer.split(" ")[0] == c["expect"]
            if not agrees and not c.get("quirk"):
                sys.exit(f"{preset}/{c['name']}: {lib} says {answer!r}, expect is {c['expect']!r}")


# ---------------------------------------------------------------------------------------------
# sample bodies, written for these vectors in the shapes the providers document


SLACK_EVENT = (
    '{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","team_id":"T0001","api_app_id":"A0F7XDUAZ",'
    '"event":{"type":"app_mention","user":"U061F7AUR","text":"<@U0LAN0Z89> is it everything?",'
    '"ts":"1515449522.000016","channel":"C123ABC456","event_ts":"1515449522000016"},'
    '"type":"event_callback","event_id":"Ev0LAN670R","event_time":1515449522}'
)
SLACK_URL_VERIFICATION = (
    '{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl",'
    '"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}'
)
SLACK_SLASH_FORM = (
    "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&team_domain=example&channel_id=C2147483705"
    "&channel_name=test&user_id=U2147483697&user_name=Steve&command=%2Fweather&text=94070"
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1234%2F5678"
    "&trigger_id=13345224609.738474920.8088930838d88f008e0"
)
# Published by Slack in "Verifying requests from Slack" (secret, timestamp, body and signature).
SLACK_DOC = {
    "secret": "8f742231b10e8888abcd99yyyzzz85a5",
    "timestamp": "1531420618",
    "body": (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
        "&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
        "&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
        "%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    ),
    "signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
    "url": "https://docs.slack.dev/authentication/verifying-requests-from-slack/",
}

ZOOM_EVENT = (
    '{"event":"meeting.started","event_ts":1767225590000,"payload":{"account_id":"AAAAAABBBB",'
    '"object":{"id":"1234567890","uuid":"4444AAAiAAAAAiAiAiiAii==","host_id":"x1yCzABCDEfg23HiJKl4mN",'
    '"topic":"Weekly sync","type":2,"start_time":"2026-01-01T00:00:00Z","timezone":"UTC","duration":30}}}'
)
ZOOM_PLAIN_TOKEN = "qgg8vlvZRS6UYooatFL8Aw"
ZOOM_URL_VALIDATION = (
    '{"payload":{"plainToken":"' + ZOOM_PLAIN_TOKEN + '"},"event_ts":1767225599000,'
    '"event":"endpoint.url_validation"}'
)

SHOPIFY_ORDER = (
    '{"id":820982911946154508,"admin_graphql_api_id":"gid://shopify/Order/820982911946154508",'
    '"email":"jon@example.com","created_at":"2025-12-31T18:59:59-05:00","currency":"USD",'
    '"total_price":"403.00","financial_status":"paid","line_items":[{"id":487817672276298554,'
    '"title":"Aviator sunglasses","quantity":1,"price":"89.99","sku":"SKU2006-001"}]}'
)

GITLAB_PUSH = (
    '{"object_kind":"push","event_name":"push","before":"95790bf891e76fee5e1747ab589903a6a1f80f22",'
    '"after":"da1560886d4f094c3e6c9ef40349f7d38b5d27d7","ref":"refs/heads/main","user_name":"John Smith",'
    '"project_id":15,"project":{"id":15,"name":"Diaspora","path_with_namespace":"mike/diaspora",'
    '"web_url":"http://example.com/mike/diaspora"},"commits":[],"total_commits_count":0}'
)


def linear_issue(ts_ms: int) -> str:
    return (
        '{"action":"create","type":"Issue","createdAt":"2026-01-01T00:00:00.000Z",'
        '"data":{"id":"2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9","identifier":"ENG-42","title":"Webhook test",'
        '"priority":2,"teamId":"72b2a2dc-6f4f-4423-9d34-24b5bd10634a"},'
        '"url":"https://linear.app/example/issue/ENG-42/webhook-test",'
        '"organizationId":"b2d1e4c1-8c3f-4b8e-9d2a-0f1e2d3c4b5a",'
        f'"webhookTimestamp":{ts_ms},"webhookId":"000042e3-d123-4980-b49f-8e140eef9329"}}'
    )


PADDLE_EVENT = (
    '{"event_id":"evt_01hv8x2acma2gz1he1f5s2x8ys","event_type":"transaction.completed",'
    '"occurred_at":"2026-01-01T00:00:00.000000Z","notification_id":"ntf_01hv8x2af6cx2nhxrse3w2m3ve",'
    '"data":{"id":"txn_01hv8wptq8987qeep44cyrewp9","status":"completed","currency_code":"USD",'
    '"customer_id":"ctm_01hv6y1jedq4p1n0yqn5ba3ky4"}}'
)

TWILIO_SMS_PARAMS = [
    ("AccountSid", "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"),
    ("ApiVersion", "2010-04-01"),
    ("Body", "Hello from the test vectors"),
    ("From", "+14155550100"),
    ("MessageSid", "SM1234567890abcdef1234567890abcdef"),
    ("NumMedia", "0"),
    ("To", "+14155550199"),
]
TWILIO_JSON = (
    '{"account_sid":"ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX","event_type":"com.twilio.messaging.message.delivered",'
    '"data":{"messageSid":"SM1234567890abcdef1234567890abcdef","messageStatus":"delivered"}}'
)
# Published by Twilio (security guide and the twilio-php "Validate Incoming Requests" page): the
# example auth token, URL, form parameters and signature.
TWILIO_DOC = {
    "token": "12345",
    "url": "https://mycompany.com/myapp.php?foo=1&bar=2",
    "params": [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ],
    "signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
    "doc": "https://www.twilio.com/docs/usage/security#validating-requests and "
           "http://twilio-php-atbaker.readthedocs.io/en/latest/usage/validation.html",
}

SQUARE_EVENT = (
    '{"merchant_id":"6SSW7HV8K2ST5","type":"payment.created","event_id":"13b867cf-db3d-4b1c-90b6-2f32a9d78124",'
    '"created_at":"2026-01-01T00:00:00.000Z","data":{"type":"payment","id":"KkAkhdMsgzn59SM8A89WgKwekxLZY",'
    '"object":{"payment":{"id":"hYy9pRFVxpDsO1FB05SunFWUe9JZY","amount_money":{"amount":100,"currency":"USD"},'
    '"status":"APPROVED"}}}}'
)

HUBSPOT_EVENTS = (
    '[{"eventId":100,"subscriptionId":12345,"portalId":62515,"appId":54321,"occurredAt":1767225590000,'
    '"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
    '"changeFlag":"NEW"}]'
)

PAGERDUTY_EVENT = (
    '{"event":{"id":"5ac64822-4adc-4fda-ade0-410becf0de4f","event_type":"incident.triggered",'
    '"resource_type":"incident","occurred_at":"2026-01-01T00:00:00.000Z","agent":null,'
    '"data":{"id":"PGR0VU2","type":"incident","self":"https://api.pagerduty.com/incidents/PGR0VU2",'
    '"number":2,"status":"triggered","title":"A little bump in the road","urgency":"high"}}}'
)

MAILGUN_EVENT_DATA = (
    '{"id":"CPgfbmQMTCKtHW6uIWtuVe","timestamp":1767225590.123,"event":"delivered",'
    '"recipient":"alice@example.com","message":{"headers":{"message-id":"20260101000000.1.ABC@example.com"}}}'
)

META_WHATSAPP = (
    '{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages",'
    '"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881",'
    '"phone_number_id":"106540352242922"},"messages":[{"from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",'
    '"timestamp":"1767225590","type":"text","text":{"body":"Hello"}}]}}]}]}'
)

BITBUCKET_PUSH = (
    '{"actor":{"display_name":"Emma","uuid":"{b8d0e0c4-2d44-4e6f-9b1a-9a8f8f1c2d3e}"},'
    '"repository":{"full_name":"team/repo","uuid":"{7f2b3c4d-5e6f-4a1b-8c9d-0e1f2a3b4c5d}"},'
    '"push":{"changes":[{"new":{"type":"branch","name":"main","target":{"hash":"709d658dc5b6d6afcd46049c2f332ee3f515a67d"}}}]}}'
)

GITEA_PUSH = (
    '{"ref":"refs/heads/develop","before":"28e1879d029cb852e4844d9c718537df08844e03",'
    '"after":"bffeb74224043ba2feb48d137756c8a9331c449a","compare_url":"http://localhost:3000/gitea/webhooks/compare/28e1879d029cb852e4844d9c718537df08844e03...bffeb74224043ba2feb48d137756c8a9331c449a",'
    '"commits":[{"id":"bffeb74224043ba2feb48d137756c8a9331c449a","message":"Webhooks Yay!",'
    '"url":"http://localhost:3000/gitea/webhooks/commit/bffeb74224043ba2feb48d137756c8a9331c449a"}],'
    '"repository":{"id":140,"name":"webhooks","full_name":"gitea/webhooks"},'
    '"pusher":{"id":1,"login":"gitea"},"sender":{"id":1,"login":"gitea"}}'
)

TYPEFORM_RESPONSE = (
    '{"event_id":"01HZ8Y4K6G1W1X2Y3Z4A5B6C7D","event_type":"form_response",'
    '"form_response":{"form_id":"lT4Z3j","token":"a3a12ec67a1365927098a606107fac15",'
    '"submitted_at":"2026-01-01T00:00:00Z","answers":[{"type":"text","text":"It is great",'
    '"field":{"id":"SMEUb7VJz92Q","type":"short_text"}}]}}'
)

SENTRY_ISSUE = (
    '{"action":"created","installation":{"uuid":"a8e5d37a-696c-4c54-adb5-b3f28d64c7de"},'
    '"data":{"issue":{"id":"1170820242","shortId":"FRONTEND-1","title":"Error: boom","status":"unresolved",'
    '"project":{"id":"1","slug":"frontend"}}},"actor":{"type":"application","id":"sentry","name":"Sentry"}}'
)

VERCEL_EVENT = (
    '{"id":"evt_1RgK6Rkk9Rd2hCkEzbfVWbJw","type":"deployment.created","createdAt":1767225590000,'
    '"payload":{"deployment":{"id":"dpl_2mVJpD5XRAwW1Nzk3rXwqgUfxzZh","name":"web",'
    '"url":"web-abc123.vercel.app"},"project":{"id":"prj_12HKQaOmR5t5Uy6vdcQsNIiZgHGB"},"target":"production"}}'
)

CALENDLY_EVENT = (
    '{"created_at":"2026-01-01T00:00:00.000000Z","created_by":"https://api.calendly.com/users/AAAAAAAAAAAAAAAA",'
    '"event":"invitee.created","payload":{"email":"test@example.com","name":"John Doe",'
    '"uri":"https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2/invitees/AAAAAAAAAAAAAAAA",'
    '"status":"active","timezone":"America/New_York"}}'
)

INTERCOM_NOTIFICATION = (
    '{"type":"notification_event","app_id":"a86dr8yl","data":{"type":"notification_event_data",'
    '"item":{"type":"conversation","id":"1","state":"open"}},"id":"notif_ccd8a4d2-3985-4d58-b3e1-6b5a5a9f3d5c",'
    '"topic":"conversation.user.created","delivery_attempts":1,"first_sent_at":1767225590,"created_at":1767225590}'
)

COINBASE_EVENT = (
    '{"id":1,"scheduled_for":"2026-01-01T00:00:00Z","event":{"id":"24934862-d980-46cb-9402-43c81b0cdba6",'
    '"resource":"event","type":"charge:created","api_version":"2018-03-22","created_at":"2026-01-01T00:00:00Z",'
    '"data":{"code":"66BEOV2A","name":"The Sovereign Individual","pricing_type":"fixed_price"}}}'
)

TWITTER_EVENT = (
    '{"for_user_id":"2244994945","tweet_create_events":[{"created_at":"Thu Jan 01 00:00:00 +0000 2026",'
    '"id_str":"1050118621198921728","text":"Hello from the vectors","user":{"id_str":"6253282","screen_name":"api"}}]}'
)
TWITTER_CRC_TOKEN = "nhj1pLrYq3fxNAcwjsDmvMbHGrbTkQDKxWqbswUv"

MSGRAPH_CLIENT_STATE = "secretClientValue"


def msgraph_notifications(*states: str | None) -> str:
    items = []
    for i, state in enumerate(states):
        state_field = "" if state is None else f'"clientState":"{state}",'
        items.append(
            '{"subscriptionId":"7f105c7d-2dc5-4530-97cd-4e7ae6534c07",'
            f'"subscriptionExpirationDateTime":"2026-01-03T00:00:00.0000000Z",{state_field}'
            '"changeType":"created","resource":"Users/4a5f9e2b/messages/AAMkAD' + str(i) + '",'
            '"tenantId":"84bd8158-6d4d-4958-8b9f-9d6445542f95",'
            '"resourceData":{"@odata.type":"#Microsoft.Graph.Message","id":"AAMkAD' + str(i) + '"}}'
        )
    return '{"value":[' + ",".join(items) + "]}"


DROPBOX_NOTIFICATION = (
    '{"list_folder":{"accounts":["dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc","dbid:AAAOOTAaGQy8sfSf6XQTXwnMYAxhbgwbbQ4"]},'
    '"delta":{"users":[12345678,23456789]}}'
)

DISCORD_PING = '{"application_id":"123456789012345678","id":"987654321098765432","type":1,"token":"aW50ZXJhY3Rpb24","version":1}'
DISCORD_COMMAND = (
    '{"application_id":"123456789012345678","id":"987654321098765433","type":2,"token":"aW50ZXJhY3Rpb24",'
    '"version":1,"data":{"id":"771825006014889984","name":"blep","type":1,'
    '"options":[{"name":"animal","type":3,"value":"animal_dog"}]},"guild_id":"290926798626357999",'
    '"channel_id":"645027906669510667","member":{"user":{"id":"53908232506183680","username":"Mason"}}}'
)

SENDGRID_EVENTS = (
    '[{"email":"example@test.com","timestamp":1767225590,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>",'
    '"event":"processed","category":"cat facts","sg_event_id":"rbtnWrG1DVDGGGFHFyun0A==",'
    '"sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"},'
    '{"email":"example@test.com","timestamp":1767225595,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>",'
    '"event":"delivered","category":"cat facts","sg_event_id":"7kOB3yJt5rgbXWJrp9CeoA==",'
    '"sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0","response":"250 OK"}]'
)

STANDARD_BODY = '{"type":"user.created","timestamp":"2026-01-01T00:00:00Z","data":{"id":"user_1","email":"test@example.com"}}'


# ---------------------------------------------------------------------------------------------
# shared case sets for body-only HMAC presets (documented scheme, no SDK)


def hmac_body_preset(
    preset: str,
    doc: str,
    secret: str,
    other_secret: str,
    sig_header: str,
    sign,  # (secret, body) -> header value
    malformed: str,
    body: str,
    body_source: str,
    extra_headers: dict[str, str],
    rotation_header: tuple[str, str] | None = None,
    malformed_code: str | None = "malformed_header",
) -> list[dict]:
    """Accept, tampered, wrong secret, rotation, malformed and missing cases for a scheme that
    signs the body alone. `rotation_header` is (label, header) when the provider sends several
    signatures in one header."""
    base = dict(preset=preset, method="POST")
    good = sign(secret, body)
    how = f"computed with Python's hmac exactly as {doc} describes"
    cases = [
        case(name="accept", secret=secret, headers={sig_header: good, **extra_headers}, body=body,
             expect="accept", reason=f"{how}; body {body_source}", **base),
        case(name="tampered_body", secret=secret, headers={sig_header: good, **extra_headers},
             body=body[:-1] + " " + body[-1],
             expect="reject", code="mismatch", reason="the accept case's signature over a body changed after signing", **base),
        case(name="wrong_secret", secret=secret, headers={sig_header: sign(other_secret, body), **extra_headers},
             body=body, expect="reject", code="mismatch", reason="signed with another secret", **base),
        case(name="rotation_second_secret", secrets=[other_secret, secret],
             headers={sig_header: good, **extra_headers}, body=body, expect="accept",
             reason="two configured secrets during rotation; the second one signed", **base),
        case(name="malformed_signature", secret=secret, headers={sig_header: malformed, **extra_headers},
             body=body, expect="reject", code=malformed_code,
             reason="the signature header cannot be decoded in the scheme's encoding", **base),
        case(name="missing_signature_header", secret=secret, headers=dict(extra_headers), body=body,
             expect="reject", code="missing_header", reason=f"no {sig_header} header", **base),
    ]
    if rotation_header is not None:
        label, value = rotation_header
        cases.append(case(name=f"rotation_{label}", secret=secret,
                          headers={sig_header: value, **extra_headers}, body=body, expect="accept",
                          reason="several signatures in the header during rotation, one of them valid", **base))
    return cases


# ---------------------------------------------------------------------------------------------
# presets with an official SDK


def slack() -> list[dict]:
    from slack_sdk.signature import Clock, SignatureVerifier

    lib = f"{v('slack-sdk')} SignatureVerifier.is_valid_request"
    secret = "8f2b3c4d5e6f708192a3b4c5d6e7f809"
    other = "00112233445566778899aabbccddeeff"

    class Fixed(Clock):
        def __init__(self, now):
            self.at = now

        def now(self):
            return float(self.at)

    def sign(sec, ts, body):
        return SignatureVerifier(sec).generate_signature(timestamp=str(ts), body=body)

    def headers(sig, ts):
        h = {}
        if sig is not None:
            h["X-Slack-Signature"] = sig
        if ts is not None:
            h["X-Slack-Request-Timestamp"] = str(ts)
        return h

    def mk(name, expect, body, sig, ts, reason, code=None, secrets=None, now=NOW, sec=secret, quirk=None, handshake=None):
        keys = secrets or [sec]
        result = any_key(keys, lambda k: SignatureVerifier(k, clock=Fixed(now)).is_valid_request(body, headers(sig, ts)))
        return case(name=name, preset="slack", secret=None if secrets else sec, secrets=secrets,
                    method="POST", headers=headers(sig, ts), body=body, now=now, tolerance=300,
                    expect=expect, code=code, quirk=quirk, handshake=handshake, reason=reason,
                    library_results={lib: result})

    ts = NOW - 5
    good = sign(secret, ts, SLACK_EVENT)
    d = SLACK_DOC
    return [
        mk("doc_example", "accept", d["body"], d["signature"], d["timestamp"],
           f"Slack's published example (secret, timestamp, slash-command body, signature): {d['url']}",
           sec=d["secret"], now=int(d["timestamp"])),
        mk("accept_event_callback", "accept", SLACK_EVENT, good, ts,
           "signed with SignatureVerifier.generate_signature; Events API app_mention body in the documented shape"),
        mk("accept_url_verification", "accept", SLACK_URL_VERIFICATION, sign(secret, ts, SLACK_URL_VERIFICATION), ts,
           "the url_verification handshake is signed like any event; the answer echoes `challenge`",
           handshake={"kind": "slack_url_verification",
                      "response": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}),
        mk("accept_form_body", "accept", SLACK_SLASH_FORM, sign(secret, ts, SLACK_SLASH_FORM), ts,
           "slash command, application/x-www-form-urlencoded body signed as raw bytes"),
        mk("tampered_body", "reject", SLACK_EVENT.replace("everything", "anything"), good, ts,
           "the accept_event_callback signature over a changed body", code="mismatch"),
        mk("wrong_secret", "reject", SLACK_EVENT, sign(other, ts, SLACK_EVENT), ts, "signed with another secret", code="mismatch"),
        mk("timestamp_signed_differs", "reject", SLACK_EVENT, good, ts + 1,
           "the header timestamp is not the signed one", code="mismatch"),
        mk("stale_timestamp", "reject", SLACK_EVENT, sign(secret, NOW - 301, SLACK_EVENT), NOW - 301,
           "validly signed 301 s before now; the SDK allows 300 s", code="timestamp_too_old"),
        mk("old_within_window", "accept", SLACK_EVENT, sign(secret, NOW - 299, SLACK_EVENT), NOW - 299,
           "validly signed 299 s before now, inside the 300 s window"),
        mk("age_exactly_300", "accept", SLACK_EVENT, sign(secret, NOW - 300, SLACK_EVENT), NOW - 300,
           "validly signed exactly 300 s before now: the SDK rejects only beyond 300 s"),
        mk("future_timestamp", "reject", SLACK_EVENT, sign(secret, NOW + 301, SLACK_EVENT), NOW + 301,
           "validly signed 301 s after now; the SDK's window is symmetric", code="timestamp_too_new"),
        mk("rotation_second_secret", "accept", SLACK_EVENT, good, ts,
           "two configured secrets during rotation; the second one signed (the SDK is asked once per secret)",
           secrets=[other, secret]),
        mk("malformed_signature", "reject", SLACK_EVENT, "v0=not-hex", ts,
           "the v0= value is not hex", code="malformed_header"),
        mk("wrong_version_prefix", "reject", SLACK_EVENT, "v1=" + good[3:], ts,
           "a valid MAC under an unknown version prefix"),
        mk("missing_signature_header", "reject", SLACK_EVENT, None, ts, "no X-Slack-Signature", code="missing_header"),
        mk("missing_timestamp_header", "reject", SLACK_EVENT, good, None,
           "no X-Slack-Request-Timestamp", code="missing_header"),
    ]


def paddle() -> list[dict]:
    from paddle_billing.Notifications import Secret, Verifier

    # The package re-exports the class under the module's name; the clock lives in the module.
    verifier_module = sys.modules["paddle_billing.Notifications.Verifier"]
    from paddle_billing.Notifications.PaddleSignature import PaddleSignature

    lib = f"{v('paddle-python-sdk')} Notifications.Verifier.verify (maximum_variance 5 s)"
    secret = "pdl_ntfset_01hv8wptq8987qeep44cyrewp9_6hNVbZJ2u2b8m5pdT0b1a2Ws8Jp5Wxaq"
    other = "pdl_ntfset_01hv6y1jedq4p1n0yqn5ba3ky4_Q0kfLeBx8P1sQ7zUjmqQ4tHcRtDdRJf2"

    def h1(sec, ts, body):
        return PaddleSignature.calculate_hmac(sec, f"{ts}:{body}".encode()).hexdigest()

    class Req:
        def __init__(self, body, headers):
            self.body = body.encode()
            self.headers = headers

    def mk(name, expect, body, header, reason, code=None, secrets=None, quirk=None):
        keys = secrets or [secret]
        headers = {} if header is None else {"Paddle-Signature": header}
        saved = verifier_module.time
        verifier_module.time = lambda: float(NOW)
        try:
            result = outcome(lambda: Verifier().verify(Req(body, headers), [Secret(k) for k in keys]))
        finally:
            verifier_module.time = saved
        return case(name=name, preset="paddle", secret=None if secrets else secret, secrets=secrets,
                    method="POST", headers=headers, body=body, tolerance=5, expect=expect, code=code,
                    quirk=quirk, reason=reason, library_results={lib: result})

    ts = NOW - 2
    good = h1(secret, ts, PADDLE_EVENT)
    return [
        mk("accept", "accept", PADDLE_EVENT, f"ts={ts};h1={good}",
           "h1 computed with the SDK's PaddleSignature.calculate_hmac over '{ts}:{body}' "
           "(https://developer.paddle.com/webhooks/signature-verification); transaction.completed body in the documented shape"),
        mk("tampered_body", "reject", PADDLE_EVENT.replace("completed", "billed", 1), f"ts={ts};h1={good}",
           "the accept signature over a changed body", code="mismatch"),
        mk("wrong_secret", "reject", PADDLE_EVENT, f"ts={ts};h1={h1(other, ts, PADDLE_EVENT)}",
           "signed with another secret", code="mismatch"),
        mk("timestamp_signed_differs", "reject", PADDLE_EVENT, f"ts={ts - 1};h1={good}",
           "ts in the header is not the signed one", code="mismatch"),
        mk("stale_timestamp", "reject", PADDLE_EVENT, f"ts={NOW - 6};h1={h1(secret, NOW - 6, PADDLE_EVENT)}",
           "validly signed 6 s before now; the SDK's default variance is 5 s", code="timestamp_too_old"),
        mk("old_within_window", "accept", PADDLE_EVENT, f"ts={NOW - 4};h1={h1(secret, NOW - 4, PADDLE_EVENT)}",
           "validly signed 4 s before now"),
        mk("age_exactly_5", "accept", PADDLE_EVENT, f"ts={NOW - 5};h1={h1(secret, NOW - 5, PADDLE_EVENT)}",
           "validly signed exactly 5 s before now: the SDK rejects only beyond 5 s"),
        mk("future_timestamp", "reject", PADDLE_EVENT, f"ts={NOW + 6};h1={h1(secret, NOW + 6, PADDLE_EVENT)}",
           "validly signed 6 s after now", code="timestamp_too_new"),
        mk("rotation_two_h1_second_valid", "accept", PADDLE_EVENT,
           f"ts={ts};h1={h1(other, ts, PADDLE_EVENT)};h1={good}",
           "during secret rotation Paddle sends one h1 per active secret; one matches"),
        mk("rotation_two_h1_first_valid", "accept", PADDLE_EVENT,
           f"ts={ts};h1={good};h1={h1(other, ts, PADDLE_EVENT)}",
           "as above, the valid h1 first"),
        mk("rotation_second_secret", "accept", PADDLE_EVENT, f"ts={ts};h1={good}",
           "two configured secrets; the second one signed", secrets=[other, secret]),
        mk("malformed_timestamp", "reject", PADDLE_EVENT, f"ts=yesterday;h1={good}",
           "ts is not an integer", code="malformed_header"),
        mk("malformed_no_h1", "reject", PADDLE_EVENT, f"ts={ts}",
           "no h1 in the header"),
        mk("missing_signature_header", "reject", PADDLE_EVENT, None, "no Paddle-Signature", code="missing_header"),
    ]


def twilio() -> list[dict]:
    from twilio.request_validator import RequestValidator

    lib = f"{v('twilio')} RequestValidator.validate"
    token = "9f1c6e2a7b3d4c5e8f90a1b2c3d4e5f6"
    other = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    url = "https://hooks.example.com/webhooks/twilio"

    def mk(name, expect, url_, body, sig, reason, code=None, secrets=None, sec=token, json_body=False, quirk=None):
        keys = secrets or [sec]
        headers = {} if sig is None else {"X-Twilio-Signature": sig}
        params = body if json_body else dict(parse_qsl(body, keep_blank_values=True))
        result = any_key(keys, lambda k: RequestValidator(k).validate(url_, params, sig or ""))
        headers["Content-Type"] = "application/json" if json_body else "application/x-www-form-urlencoded"
        return case(name=name, preset="twilio", secret=None if secrets else sec, secrets=secrets,
                    url=url_, method="POST", headers=headers, body=body, expect=expect, code=code,
                    quirk=quirk, reason=reason, library_results={lib: result})

    form = urlencode(TWILIO_SMS_PARAMS)
    good = RequestValidator(token).compute_signature(url, dict(TWILIO_SMS_PARAMS))
    body_hash = RequestValidator(token).compute_hash(TWILIO_JSON)
    json_url = f"{url}?bodySHA256={body_hash}"
    json_sig = RequestValidator(token).compute_signature(json_url, {})
    doc_form = urlencode(TWILIO_DOC["params"])
    doc_sig = RequestValidator(TWILIO_DOC["token"]).compute_signature(TWILIO_DOC["url"], dict(TWILIO_DOC["params"]))
    assert doc_sig == TWILIO_DOC["signature"], doc_sig
    return [
        mk("doc_example", "accept", TWILIO_DOC["url"], doc_form, TWILIO_DOC["signature"],
           f"Twilio's published example (auth token, URL with query, form parameters, signature): {TWILIO_DOC['doc']}",
           sec=TWILIO_DOC["token"]),
        mk("accept_form", "accept", url, form, good,
           "signed with RequestValidator.compute_signature (HMAC-SHA1 over URL + sorted name/value pairs); incoming SMS parameters"),
        mk("accept_json_body_sha256", "accept", json_url, TWILIO_JSON, json_sig,
           "JSON body: the URL carries bodySHA256=hex(SHA-256(body)) and the signature covers the URL only",
           json_body=True),
        mk("tampered_form_param", "reject", url, form.replace("Hello", "Hullo"), good,
           "a form value changed after signing", code="mismatch"),
        mk("tampered_json_body", "reject", json_url, TWILIO_JSON.replace("delivered", "failed"), json_sig,
           "the JSON body no longer matches bodySHA256 while the URL signature still does", json_body=True),
        mk("wrong_url", "reject", url + "/other", form, good, "signed for another public URL", code="mismatch"),
        mk("signed_with_default_port", "accept", url, form,
           RequestValidator(token).compute_signature(url.replace(".com/", ".com:443/", 1), dict(TWILIO_SMS_PARAMS)),
           "signed over the URL with an explicit :443; the validator tries the URL with and without the "
           "default port, and so does the preset"),
        mk("configured_with_default_port", "accept", url.replace(".com/", ".com:443/", 1), form, good,
           "the configured URL names :443, the signature covers the URL without it; accepted in both forms"),
        mk("http_signed_with_default_port", "accept", url.replace("https://", "http://", 1), form,
           RequestValidator(token).compute_signature(
               url.replace("https://", "http://", 1).replace(".com/", ".com:80/", 1), dict(TWILIO_SMS_PARAMS)),
           "an http URL: the default port added is :80"),
        mk("signed_with_other_port", "reject", url, form,
           RequestValidator(token).compute_signature(url.replace(".com/", ".com:8443/", 1), dict(TWILIO_SMS_PARAMS)),
           "signed over the URL with :8443, which is not the default port of https", code="mismatch"),
        mk("wrong_token", "reject", url, form, RequestValidator(other).compute_signature(url, dict(TWILIO_SMS_PARAMS)),
           "signed with another auth token", code="mismatch"),
        mk("rotation_secondary_token", "accept", url, form, good,
           "primary and secondary auth token configured; the secondary one signed", secrets=[other, token]),
        mk("malformed_signature", "reject", url, form, "not base64!", "the header is not base64", code="malformed_header"),
        mk("missing_signature_header", "reject", url, form, None, "no X-Twilio-Signature", code="missing_header"),
    ]


def square() -> list[dict]:
    from square.utils.webhooks_helper import verify_signature

    lib = f"{v('squareup')} utils.webhooks_helper.verify_signature"
    key = "Wb0Ss3ncEA3i5fsaEr6aZg"
    other = "ZlnYe0LqKcAv3lD0cJ7cjA"
    url = "https://hooks.example.com/webhooks/square"

    def mk(name, expect, url_, body, sig, reason, code=None, secrets=None):
        keys = secrets or [key]
        headers = {} if sig is None else {"x-square-hmacsha256-signature": sig}
        result = any_key(keys, lambda k: verify_signature(request_body=body, signature_header=sig or "",
                                                          signature_key=k, notification_url=url_))
        return case(name=name, preset="square", secret=None if secrets else key, secrets=secrets,
                    url=url_, method="POST", headers=headers, body=body, expect=expect, code=code,
                    reason=reason, library_results={lib: result})

    good = b64_256(key, url + SQUARE_EVENT)
    return [
        mk("accept", "accept", url, SQUARE_EVENT, good,
           "base64(HMAC-SHA256(key, notification URL + body)) per https://developer.squareup.com/docs/webhooks/step3validate; payment.created body in the documented shape"),
        mk("tampered_body", "reject", url, SQUARE_EVENT.replace("APPROVED", "COMPLETED"), good,
           "the accept signature over a changed body", code="mismatch"),
        mk("wrong_url", "reject", url + "/", SQUARE_EVENT, good,
           "the configured notification URL differs by a trailing slash", code="mismatch"),
        mk("wrong_key", "reject", url, SQUARE_EVENT, b64_256(other, url + SQUARE_EVENT),
           "signed with another signature key", code="mismatch"),
        mk("rotation_second_key", "accept", url, SQUARE_EVENT, good,
           "two configured keys; the second one signed", secrets=[other, key]),
        mk("malformed_signature", "reject", url, SQUARE_EVENT, "%%%", "the header is not base64", code="malformed_header"),
        mk("missing_signature_header", "reject", url, SQUARE_EVENT, None,
           "no x-square-hmacsha256-signature", code="missing_header"),
    ]


def hubspot() -> list[dict]:
    import hubspot.utils.signature as sig_module
    from hubspot.utils.signature import Signature

    lib = f"{v('hubspot-api-client')} utils.signature.Signature.is_valid (v3)"
    secret = "a3b9c2d1-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
    other = "ffffffff-0000-1111-2222-333333333333"
    url = "https://hooks.example.com/webhooks/hubspot"

    def sign(sec, ts_ms, body, method="POST", url_=url):
        return Signature.get_signature(sec, body, "v3", url_, method, str(ts_ms))

    def mk(name, expect, body, sig, ts_ms, reason, code=None, secrets=None, quirk=None):
        keys = secrets or [secret]
        headers = {}
        if sig is not None:
            headers["X-HubSpot-Signature-v3"] = sig
        if ts_ms is not None:
            headers["X-HubSpot-Request-Timestamp"] = str(ts_ms)
        with frozen_datetime(sig_module, NOW):
            result = any_key(keys, lambda k: Signature.is_valid(
                signature=sig or "", client_secret=k, request_body=body, http_uri=url,
                http_method="POST", signature_version="v3",
                timestamp=None if ts_ms is None else str(ts_ms)))
        return case(name=name, preset="hubspot", secret=None if secrets else secret, secrets=secrets,
                    url=url, method="POST", headers=headers, body=body, tolerance=300, expect=expect,
                    code=code, quirk=quirk, reason=reason, library_results={lib: result})

    ts = (NOW - 5) * 1000
    good = sign(secret, ts, HUBSPOT_EVENTS)
    return [
        mk("accept", "accept", HUBSPOT_EVENTS, good, ts,
           "signed with Signature.get_signature v3: base64(HMAC-SHA256(secret, method + URL + body + timestamp in ms)) "
           "(https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests); contact.creation batch in the documented shape"),
        mk("tampered_body", "reject", HUBSPOT_EVENTS.replace("NEW", "OLD"), good, ts,
           "the accept signature over a changed body", code="mismatch"),
        mk("wrong_method", "reject", HUBSPOT_EVENTS, sign(secret, ts, HUBSPOT_EVENTS, method="PUT"), ts,
           "signed for another HTTP method", code="mismatch"),
        mk("wrong_url", "reject", HUBSPOT_EVENTS, sign(secret, ts, HUBSPOT_EVENTS, url_=url + "/x"), ts,
           "signed for another URL", code="mismatch"),
        mk("wrong_secret", "reject", HUBSPOT_EVENTS, sign(other, ts, HUBSPOT_EVENTS), ts,
           "signed with another client secret", code="mismatch"),
        mk("stale_timestamp", "reject", HUBSPOT_EVENTS, sign(secret, (NOW - 301) * 1000, HUBSPOT_EVENTS),
           (NOW - 301) * 1000, "validly signed 301 s before now; HubSpot allows 5 minutes", code="timestamp_too_old"),
        mk("old_within_window", "accept", HUBSPOT_EVENTS, sign(secret, (NOW - 299) * 1000, HUBSPOT_EVENTS),
           (NOW - 299) * 1000, "validly signed 299 s before now"),
        mk("age_exactly_300", "reject", HUBSPOT_EVENTS, sign(secret, (NOW - 300) * 1000, HUBSPOT_EVENTS),
           (NOW - 300) * 1000,
           "validly signed exactly 300 s before now; the SDK requires an age below 300 s",
           code="timestamp_too_old"),
        mk("age_299_5_truncated", "reject", HUBSPOT_EVENTS, sign(secret, (NOW - 300) * 1000 + 500, HUBSPOT_EVENTS),
           (NOW - 300) * 1000 + 500,
           "validly signed 299.5 s before now; the SDK truncates the timestamp to its second, making the age 300 s",
           code="timestamp_too_old"),
        mk("future_timestamp", "reject", HUBSPOT_EVENTS, sign(secret, (NOW + 301) * 1000, HUBSPOT_EVENTS),
           (NOW + 301) * 1000,
           "validly signed 301 s after now. The SDK checks only the past and accepts; this project bounds both directions",
           code="timestamp_too_new", quirk=True),
        mk("rotation_second_secret", "accept", HUBSPOT_EVENTS, good, ts,
           "two configured secrets; the second one signed", secrets=[other, secret]),
        mk("malformed_signature", "reject", HUBSPOT_EVENTS, "not base64!", ts,
           "the header is not base64", code="malformed_header"),
        mk("malformed_timestamp", "reject", HUBSPOT_EVENTS, good, "soon",
           "the timestamp header is not a number", code="malformed_header"),
        mk("missing_signature_header", "reject", HUBSPOT_EVENTS, None, ts,
           "no X-HubSpot-Signature-v3", code="missing_header"),
        mk("missing_timestamp_header", "reject", HUBSPOT_EVENTS, good, None,
           "no X-HubSpot-Request-Timestamp", code="missing_header"),
    ]


def sendgrid() -> list[dict]:
    from sendgrid.helpers.eventwebhook import EventWebhook

    lib = f"{v('sendgrid')} helpers.eventwebhook.EventWebhook.verify_signature"
    key = ec.derive_private_key(0x5EED5EED5EED5EED5EED5EED5EED5EED5EED5EED5EED5EED5EED5EED5EED5EED, ec.SECP256R1())
    other = ec.derive_private_key(0xC0FFEE, ec.SECP256R1())

    def spki(k):
        der = k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()

    def sign(k, ts, body):
        der = k.sign(f"{ts}{body}".encode(), ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        return base64.b64encode(der).decode()

    public = spki(key)

    def mk(name, expect, body, sig, ts, reason, code=None, quirk=None):
        headers = {}
        if sig is not None:
            headers["X-Twilio-Email-Event-Webhook-Signature"] = sig
        if ts is not None:
            headers["X-Twilio-Email-Event-Webhook-Timestamp"] = str(ts)
        if sig is None or ts is None:
            result = "reject (header absent: the SDK takes both values as arguments)"
        else:
            result = outcome(lambda: EventWebhook(public).verify_signature(body, sig, str(ts)))
        return case(name=name, preset="sendgrid", public_key=public, method="POST", headers=headers,
                    body=body, tolerance=300, expect=expect, code=code, quirk=quirk, reason=reason,
                    library_results={lib: result})

    ts = NOW - 5
    good = sign(key, ts, SENDGRID_EVENTS)
    return [
        mk("accept", "accept", SENDGRID_EVENTS, good, ts,
           "ECDSA P-256/SHA-256 (RFC 6979 deterministic, DER, base64) over timestamp + body, signed with `cryptography` "
           "by a key derived from a fixed scalar; public_key is base64 SPKI DER as SendGrid shows it "
           "(https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features); "
           "two-event batch in the documented shape"),
        mk("tampered_body", "reject", SENDGRID_EVENTS.replace("processed", "dropped"), good, ts,
           "the accept signature over a changed body", code="mismatch"),
        mk("timestamp_signed_differs", "reject", SENDGRID_EVENTS, good, ts + 1,
           "the timestamp header is not the signed one", code="mismatch"),
        mk("wrong_key", "reject", SENDGRID_EVENTS, sign(other, ts, SENDGRID_EVENTS), ts,
           "signed by another key pair", code="mismatch"),
        mk("stale_timestamp", "reject", SENDGRID_EVENTS, sign(key, NOW - 301, SENDGRID_EVENTS), NOW - 301,
           "validly signed 301 s before now. The SDK checks no time; this project bounds five minutes each way",
           code="timestamp_too_old", quirk=True),
        mk("future_timestamp", "reject", SENDGRID_EVENTS, sign(key, NOW + 301, SENDGRID_EVENTS), NOW + 301,
           "validly signed 301 s after now. The SDK checks no time; this project bounds five minutes each way",
           code="timestamp_too_new", quirk=True),
        mk("malformed_signature", "reject", SENDGRID_EVENTS, base64.b64encode(b"not a DER signature").decode(), ts,
           "base64 that is not a DER ECDSA signature"),
        mk("missing_signature_header", "reject", SENDGRID_EVENTS, None, ts,
           "no X-Twilio-Email-Event-Webhook-Signature", code="missing_header"),
        mk("missing_timestamp_header", "reject", SENDGRID_EVENTS, good, None,
           "no X-Twilio-Email-Event-Webhook-Timestamp", code="missing_header"),
    ]


def discord() -> list[dict]:
    from discord_interactions import verify_key

    lib = f"{v('discord-interactions')} verify_key"
    key = SigningKey(bytes(range(32)))
    other = SigningKey(bytes(range(32, 64)))
    public = key.verify_key.encode().hex()

    def sign(k, ts, body):
        return k.sign(f"{ts}{body}".encode()).signature.hex()

    def mk(name, expect, body, sig, ts, reason, code=None, handshake=None, quirk=None):
        headers = {}
        if sig is not None:
            headers["X-Signature-Ed25519"] = sig
        if ts is not None:
            headers["X-Signature-Timestamp"] = str(ts)
        if sig is None or ts is None:
            result = "reject (header absent: the SDK's decorator answers 401 before verify_key)"
        else:
            result = outcome(lambda: verify_key(body.encode(), sig, str(ts), public))
        return case(name=name, preset="discord", public_key=public, method="POST", headers=headers,
                    body=body, tolerance=300, expect=expect, code=code, quirk=quirk, handshake=handshake,
                    reason=reason, library_results={lib: result})

    ts = NOW - 1
    good = sign(key, ts, DISCORD_COMMAND)
    return [
        mk("accept_ping", "accept", DISCORD_PING, sign(key, ts, DISCORD_PING), ts,
           "Ed25519 over timestamp + body with PyNaCl from the fixed seed 00..1f "
           "(https://discord.com/developers/docs/interactions/overview#setting-up-an-endpoint-validating-security-request-headers); PING interaction",
           handshake={"kind": "discord_ping", "response": '{"type":1}'}),
        mk("accept_command", "accept", DISCORD_COMMAND, good, ts,
           "Ed25519 over timestamp + body; slash-command interaction in the documented shape"),
        mk("tampered_body", "reject", DISCORD_COMMAND.replace("animal_dog", "animal_cat"), good, ts,
           "the accept signature over a changed body", code="mismatch"),
        mk("timestamp_signed_differs", "reject", DISCORD_COMMAND, good, ts + 1,
           "the timestamp header is not the signed one", code="mismatch"),
        mk("wrong_key", "reject", DISCORD_COMMAND, sign(other, ts, DISCORD_COMMAND), ts,
           "signed by another key", code="mismatch"),
        mk("stale_timestamp", "reject", DISCORD_COMMAND, sign(key, NOW - 301, DISCORD_COMMAND), NOW - 301,
           "validly signed 301 s before now. verify_key checks no time; this project bounds five minutes each way",
           code="timestamp_too_old", quirk=True),
        mk("future_timestamp", "reject", DISCORD_COMMAND, sign(key, NOW + 301, DISCORD_COMMAND), NOW + 301,
           "validly signed 301 s after now. verify_key checks no time; this project bounds five minutes each way",
           code="timestamp_too_new", quirk=True),
        mk("malformed_signature", "reject", DISCORD_COMMAND, "zz" * 64, ts,
           "the signature is not hex", code="malformed_header"),
        mk("short_signature", "reject", DISCORD_COMMAND, good[:-2], ts,
           "63 bytes instead of 64"),
        mk("missing_signature_header", "reject", DISCORD_COMMAND, None, ts, "no X-Signature-Ed25519", code="missing_header"),
        mk("missing_timestamp_header", "reject", DISCORD_COMMAND, good, None, "no X-Signature-Timestamp", code="missing_header"),
    ]


def standard() -> list[dict]:
    import standardwebhooks.webhooks as sw_module
    from standardwebhooks.webhooks import Webhook as StdWebhook
    from svix.webhooks import Webhook as SvixWebhook

    std_lib = f"{v('standardwebhooks')} Webhook.verify"
    svix_lib = f"{v('svix')} Webhook.verify"
    nacl_lib = f"{v('PyNaCl')} VerifyKey.verify (v1a per the Standard Webhooks specification; 300 s window checked by generate.py)"
    secret = "whsec_" + base64.b64encode(bytes(range(100, 124))).decode()
    other = "whsec_" + base64.b64encode(bytes(range(200, 224))).decode()
    ed = SigningKey(bytes(range(64, 96)))
    whpk = "whpk_" + base64.b64encode(ed.verify_key.encode()).decode()
    msg_id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"

    def v1(sec, ts, body, id_=msg_id):
        return StdWebhook(sec).sign(id_, _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc), body)

    def v1a(ts, body, k=ed, id_=msg_id):
        return "v1a," + base64.b64encode(k.sign(f"{id_}.{ts}.{body}".encode()).signature).decode()

    def hdrs(prefix, sig, ts, id_=msg_id):
        h = {}
        if id_ is not None:
            h[f"{prefix}-id"] = id_
        if ts is not None:
            h[f"{prefix}-timestamp"] = str(ts)
        if sig is not None:
            h[f"{prefix}-signature"] = sig
        return h

    def mk(name, expect, body, headers, reason, code=None, key=None, public_key=None, quirk=None, ed25519=False):
        results = {}
        if ed25519:
            def check():
                ts = headers["webhook-timestamp"]
                if abs(NOW - int(ts)) > 300:
                    raise ValueError("timestamp outside 300 s")
                vk = ed.verify_key.__class__(base64.b64decode(public_key[5:]))
                msg = f"{headers['webhook-id']}.{ts}.{body}".encode()
                for entry in headers["webhook-signature"].split(" "):
                    version_, _, sig = entry.partition(",")
                    if version_ == "v1a":
                        try:
                            vk.verify(msg, base64.b64decode(sig))
                            return True
                        except Exception:
                            continue
                return False
            results[nacl_lib] = outcome(check)
        else:
            with frozen_datetime(sw_module, NOW):
                results[std_lib] = outcome(lambda: StdWebhook(key or secret).verify(body, headers, json_parse=False))
                results[svix_lib] = outcome(lambda: SvixWebhook(key or secret).verify(body, headers))
        return case(name=name, preset="standard", secret=None if public_key else (key or secret),
                    public_key=public_key, method="POST", headers=headers, body=body, tolerance=300,
                    expect=expect, code=code, quirk=quirk, reason=reason, library_results=results)

    ts = NOW - 5
    good = v1(secret, ts, STANDARD_BODY)
    return [
        mk("accept", "accept", STANDARD_BODY, hdrs("webhook", good, ts),
           "signed with standardwebhooks Webhook.sign (v1, HMAC-SHA256 over '{id}.{timestamp}.{body}', "
           "https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md)"),
        mk("accept_svix_headers", "accept", STANDARD_BODY, hdrs("svix", good, ts),
           "the same delivery under svix-* header names, as Svix sends it. The svix SDK reads them; "
           "standardwebhooks reads only webhook-* and answers missing headers; this project accepts both names",
           quirk=True),
        mk("tampered_body", "reject", STANDARD_BODY.replace("user_1", "user_2"), hdrs("webhook", good, ts),
           "the accept signature over a changed body", code="mismatch"),
        mk("tampered_id", "reject", STANDARD_BODY, hdrs("webhook", good, ts, id_="msg_other"),
           "the webhook-id header is not the signed one", code="mismatch"),
        mk("wrong_secret", "reject", STANDARD_BODY, hdrs("webhook", v1(other, ts, STANDARD_BODY), ts),
           "signed with another secret", code="mismatch"),
        mk("stale_timestamp", "reject", STANDARD_BODY, hdrs("webhook", v1(secret, NOW - 301, STANDARD_BODY), NOW - 301),
           "validly signed 301 s before now; the SDKs allow 5 minutes", code="timestamp_too_old"),
        mk("future_timestamp", "reject", STANDARD_BODY, hdrs("webhook", v1(secret, NOW + 301, STANDARD_BODY), NOW + 301),
           "validly signed 301 s after now", code="timestamp_too_new"),
        mk("rotation_several_signatures", "accept", STANDARD_BODY,
           hdrs("webhook", f"{v1(other, ts, STANDARD_BODY)} v2,AAAA {good}", ts),
           "space-separated list during rotation: another secret's v1, an unknown version, then the valid v1"),
        mk("malformed_timestamp", "reject", STANDARD_BODY, hdrs("webhook", good, "yesterday"),
           "the timestamp header is not a number", code="malformed_header"),
        mk("missing_id_header", "reject", STANDARD_BODY, hdrs("webhook", good, ts, id_=None),
           "no webhook-id", code="missing_header"),
        mk("missing_signature_header", "reject", STANDARD_BODY, hdrs("webhook", None, ts),
           "no webhook-signature", code="missing_header"),
        mk("accept_v1a_ed25519", "accept", STANDARD_BODY, hdrs("webhook", v1a(ts, STANDARD_BODY), ts),
           "v1a: Ed25519 over '{id}.{timestamp}.{body}', signed with PyNaCl from the fixed seed 40..5f; the key is "
           "whpk_ + base64(32-byte public key). Neither Python SDK implements v1a, so PyNaCl verified it",
           public_key=whpk, ed25519=True),
        mk("v1a_tampered_body", "reject", STANDARD_BODY.replace("user_1", "user_2"),
           hdrs("webhook", v1a(ts, STANDARD_BODY), ts), "the v1a accept signature over a changed body",
           code="mismatch", public_key=whpk, ed25519=True),
        mk("v1a_rotation_with_v1", "accept", STANDARD_BODY,
           hdrs("webhook", f"{good} {v1a(ts, STANDARD_BODY)}", ts),
           "a v1 entry this key cannot check, then the valid v1a entry", public_key=whpk, ed25519=True),
        mk("v1a_stale_timestamp", "reject", STANDARD_BODY,
           hdrs("webhook", v1a(NOW - 301, STANDARD_BODY), NOW - 301),
           "v1a validly signed 301 s before now", code="timestamp_too_old", public_key=whpk, ed25519=True),
    ]


def github_sdk() -> list[dict]:
    from githubkit.webhooks import sign, verify

    lib = f"{v('githubkit')} webhooks.verify"
    secret = "It's a Secret to Everybody"
    other = "another secret"
    body = (HERE.parent / "payloads" / "github_push.json").read_bytes().decode()

    def mk(name, expect, sig, reason, code=None, body_=body, body_file=None):
        headers = {} if sig is None else {"X-Hub-Signature-256": sig}
        result = "reject (header absent)" if sig is None else outcome(lambda: verify(secret, body_, sig))
        return case(name=name, preset="github", secret=secret, method="POST",
                    headers={**headers, "X-GitHub-Event": "push",
                             "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
                    body=None if body_file else body_, body_file=body_file, expect=expect, code=code,
                    reason=reason, library_results={lib: result})

    good = sign(secret, body)
    return [
        mk("accept_push", "accept", good, "signed with githubkit webhooks.sign; body is payloads/github_push.json",
           body_file="../payloads/github_push.json"),
        mk("docs_example", "accept", sign(secret, "Hello, World!"),
           "GitHub's documented test values (secret and body), signed with githubkit", body_="Hello, World!"),
        mk("tampered_body", "reject", good, "the accept signature over a changed body",
           code="mismatch", body_=body.replace("simple-tag", "simple-tog", 1)),
        mk("wrong_secret", "reject", sign(other, body), "signed with another secret", code="mismatch",
           body_file="../payloads/github_push.json"),
        mk("malformed_signature", "reject", "sha256=xyz", "the sha256= value is not hex",
           code="malformed_header", body_file="../payloads/github_push.json"),
        mk("missing_signature_header", "reject", None, "no X-Hub-Signature-256",
           code="missing_header", body_file="../payloads/github_push.json"),
    ]


# ---------------------------------------------------------------------------------------------
# presets without an SDK on PyPI: computed per the provider's documentation


def zoom() -> list[dict]:
    doc = "https://developers.zoom.us/docs/api/webhooks/#verify-webhook-events"
    secret = "lMeYdbUNRq2lh8xZ5Txuvg"
    other = "kX0dZ8HHQpmLkD7vP3Vk8g"

    def sig(sec, ts, body):
        return "v0=" + hex256(sec, f"v0:{ts}:{body}")

    def mk(name, expect, body, s, ts, reason, code=None, secrets=None, handshake=None):
        headers = {}
        if s is not None:
            headers["x-zm-signature"] = s
        if ts is not None:
            headers["x-zm-request-timestamp"] = str(ts)
        return case(name=name, preset="zoom", secret=None if secrets else secret, secrets=secrets,
                    method="POST", headers=headers, body=body, tolerance=300, expect=expect, code=code,
                    handshake=handshake, reason=reason)

    ts = NOW - 5
    good = sig(secret, ts, ZOOM_EVENT)
    return [
        mk("accept", "accept", ZOOM_EVENT, good, ts,
           f"v0=hex(HMAC-SHA256(secret token, 'v0:{{timestamp}}:{{body}}')) computed with Python's hmac per {doc}; meeting.started body in the documented shape"),
        mk("accept_url_validation", "accept", ZOOM_URL_VALIDATION, sig(secret, ts, ZOOM_URL_VALIDATION), ts,
           f"endpoint.url_validation is signed like an event; the answer is {{plainToken, encryptedToken: hex(HMAC-SHA256(secret token, plainToken))}} per {doc}",
           handshake={"kind": "zoom_url_validation", "token": ZOOM_PLAIN_TOKEN,
                      "response": json.dumps({"plainToken": ZOOM_PLAIN_TOKEN,
                                              "encryptedToken": hex256(secret, ZOOM_PLAIN_TOKEN)},
                                             separators=(",", ":"))}),
        mk("tampered_body", "reject", ZOOM_EVENT.replace("Weekly", "Daily"), good, ts,
           "the accept signature over a changed body", code="mismatch"),
        mk("timestamp_signed_differs", "reject", ZOOM_EVENT, good, ts + 1,
           "the timestamp header is not the signed one", code="mismatch"),
        mk("wrong_secret", "reject", ZOOM_EVENT, sig(other, ts, ZOOM_EVENT), ts, "signed with another secret token", code="mismatch"),
        mk("stale_timestamp", "reject", ZOOM_EVENT, sig(secret, NOW - 301, ZOOM_EVENT), NOW - 301,
           "validly signed 301 s before now. Zoom documents no window; this project bounds five minutes each way",
           code="timestamp_too_old"),
        mk("future_timestamp", "reject", ZOOM_EVENT, sig(secret, NOW + 301, ZOOM_EVENT), NOW + 301,
           "validly signed 301 s after now (this project's five-minute window)", code="timestamp_too_new"),
        mk("rotation_second_secret", "accept", ZOOM_EVENT, good, ts,
           "two configured secret tokens; the second one signed", secrets=[other, secret]),
        mk("malformed_signature", "reject", ZOOM_EVENT, "v0=nothex", ts, "the v0= value is not hex", code="malformed_header"),
        mk("missing_signature_header", "reject", ZOOM_EVENT, None, ts, "no x-zm-signature", code="missing_header"),
        mk("missing_timestamp_header", "reject", ZOOM_EVENT, good, None, "no x-zm-request-timestamp", code="missing_header"),
    ]


def shopify() -> list[dict]:
    doc = "https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-2-validate-the-origin-of-your-webhook-to-ensure-its-coming-from-shopify"
    return hmac_body_preset(
        "shopify", doc, "hush_9f1c6e2a7b3d4c5e8f90a1b2c3d4e5f6", "hush_0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "X-Shopify-Hmac-Sha256", b64_256, "not base64!", SHOPIFY_ORDER,
        "an orders/paid payload in the documented shape",
        {"X-Shopify-Topic": "orders/paid", "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
         "X-Shopify-Shop-Domain": "example.myshopify.com", "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5"},
    )


def gitlab() -> list[dict]:
    doc = "https://docs.gitlab.com/user/project/integrations/webhooks/#validate-requests-with-a-secret-token"
    token = "glwt-9f1c6e2a7b3d4c5e8f90"
    other = "glwt-0a1b2c3d4e5f60718293"
    extra = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e",
             "Idempotency-Key": "f5e5f430-f57b-4e6e-9fac-d9128cd7232f"}

    def mk(name, expect, hdr, reason, code=None, secrets=None, body=GITLAB_PUSH):
        headers = dict(extra)
        if hdr is not None:
            headers["X-Gitlab-Token"] = hdr
        return case(name=name, preset="gitlab", secret=None if secrets else token, secrets=secrets,
                    method="POST", headers=headers, body=body, expect=expect, code=code, reason=reason)

    return [
        mk("accept", "accept", token, f"X-Gitlab-Token equals the configured secret token, per {doc}; push event body in the documented shape"),
        mk("body_not_covered", "accept", token,
           "GitLab's token does not cover the body: a changed body still carries a valid token (TLS is the only protection)",
           body=GITLAB_PUSH.replace("main", "evil")),
        mk("wrong_token", "reject", other, "another token", code="mismatch"),
        mk("token_prefix_only", "reject", token[:-1], "the configured token less its last character", code="mismatch"),
        mk("rotation_second_token", "accept", token, "two configured tokens; the second one sent", secrets=[other, token]),
        mk("missing_token_header", "reject", None, "no X-Gitlab-Token", code="missing_header"),
    ]


def linear() -> list[dict]:
    doc = "https://linear.app/developers/webhooks#securing-webhooks"
    secret = "lin_wh_9f1c6e2a7b3d4c5e8f90a1b2c3d4e5f6a7b8"
    other = "lin_wh_0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1"
    extra = {"Linear-Delivery": "234d1a4e-b617-4388-90fe-adc3633d6b72", "Linear-Event": "Issue"}

    def mk(name, expect, body, sig, reason, code=None, secrets=None):
        headers = dict(extra)
        if sig is not None:
            headers["Linear-Signature"] = sig
        return case(name=name, preset="linear", secret=None if secrets else secret, secrets=secrets,
                    method="POST", headers=headers, body=body, tolerance=60, expect=expect, code=code,
                    reason=reason)

    fresh = linear_issue((NOW - 5) * 1000)
    good = hex256(secret, fresh)
    stale = linear_issue((NOW - 61) * 1000)
    inside = linear_issue((NOW - 59) * 1000)
    future = linear_issue((NOW + 61) * 1000)
    return [
        mk("accept", "accept", fresh, good,
           f"hex(HMAC-SHA256(secret, body)) computed with Python's hmac per {doc}; webhookTimestamp (ms, in the body) 5 s before now; Issue create body in the documented shape"),
        mk("tampered_body", "reject", fresh.replace("Webhook test", "Webhook pest"), good,
           "the accept signature over a changed body", code="mismatch"),
        mk("wrong_secret", "reject", fresh, hex256(other, fresh), "signed with another secret", code="mismatch"),
        mk("stale_timestamp", "reject", stale, hex256(secret, stale),
           "validly signed, webhookTimestamp 61 s before now; Linear's documented window is 60 s", code="timestamp_too_old"),
        mk("old_within_window", "accept", inside, hex256(secret, inside), "validly signed, webhookTimestamp 59 s before now"),
        mk("future_timestamp", "reject", future, hex256(secret, future),
           "validly signed, webhookTimestamp 61 s after now; Linear compares the absolute difference", code="timestamp_too_new"),
        mk("rotation_second_secret", "accept", fresh, good, "two configured secrets; the second one signed", secrets=[other, secret]),
        mk("malformed_signature", "reject", fresh, "g" * 64, "the header is not hex", code="malformed_header"),
        mk("missing_signature_header", "reject", fresh, None, "no Linear-Signature", code="missing_header"),
    ]


def pagerduty() -> list[dict]:
    doc = "https://developer.pagerduty.com/docs/webhooks/webhook-signatures/"
    secret = "pd_9f1c6e2a7b3d4c5e8f90a1b2c3d4e5f6a7b8c9d0e1f2"
    other = "pd_0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5"
    good = "v1=" + hex256(secret, PAGERDUTY_EVENT)
    bad = "v1=" + hex256(other, PAGERDUTY_EVENT)
    extra = {"X-Webhook-Id": "9a1e3c0f-0a1b-4c2d-9e8f-7a6b5c4d3e2f", "X-Webhook-Subscription": "PY1OQ1F"}
    cases = hmac_body_preset(
        "pagerduty", doc, secret, other, "X-PagerDuty-Signature",
        lambda s, b: "v1=" + hex256(s, b), "v1=nothex", PAGERDUTY_EVENT,
        "an incident.triggered V3 event in the documented shape", extra,
        rotation_header=("two_signatures_second_valid", f"{bad},{good}"),
        # In a list, an entry that does not decode may be skipped as not matching.
        malformed_code=None,
    )
    cases.append(case(name="rotation_two_signatures_first_valid", preset="pagerduty", secret=secret, method="POST",
                      headers={"X-PagerDuty-Signature": f"{good},{bad}", **extra}, body=PAGERDUTY_EVENT,
                      expect="accept", reason="comma-separated list, the valid signature first"))
    cases.append(case(name="unknown_version_only", preset="pagerduty", secret=secret, method="POST",
                      headers={"X-PagerDuty-Signature": "v2=" + hex256(secret, PAGERDUTY_EVENT), **extra},
                      body=PAGERDUTY_EVENT, expect="reject",
                      reason="the right MAC under a version PagerDuty does not define"))
    return cases


def mailgun() -> list[dict]:
    doc = "https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks"
    key = "key-9f1c6e2a7b3d4c5e8f90a1b2c3d4e5f6"
    other = "key-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    token = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"

    def body(sig, ts=str(NOW - 5), tok=token, event=MAILGUN_EVENT_DATA, omit=False):
        if omit:
            return '{"event-data":' + event + "}"
        return ('{"signature":{"timestamp":"' + ts + '","token":"' + tok + '","signature":"' + sig + '"},'
                '"event-data":' + event + "}")

    good = hex256(key, str(NOW - 5) + token)

    def mk(name, expect, b, reason, code=None, secrets=None):
        return case(name=name, preset="mailgun", secret=None if secrets else key, secrets=secrets,
                    method="POST", headers={"Content-Type": "application/json"}, body=b, tolerance=300, expect=expect,
                    code=code, reason=reason)

    return [
        mk("accept", "accept", body(good),
           f"signature.signature = hex(HMAC-SHA256(API key, timestamp + token)) computed with Python's hmac per {doc}; delivered event in the documented shape"),
        mk("event_data_not_covered", "accept", body(good, event=MAILGUN_EVENT_DATA.replace("delivered", "failed")),
           "Mailgun signs timestamp + token only: a changed event-data still verifies. The one-time token is the replay guard"),
        mk("tampered_token", "reject", body(good, tok=token[:-1] + "1"), "the token differs from the signed one", code="mismatch"),
        mk("tampered_timestamp", "reject", body(good, ts=str(NOW - 4)), "the timestamp differs from the signed one", code="mismatch"),
        mk("wrong_key", "reject", body(hex256(other, str(NOW - 5) + token)), "signed with another key", code="mismatch"),
        mk("stale_timestamp", "reject", body(hex256(key, str(NOW - 301) + token), ts=str(NOW - 301)),
           "validly signed 301 s before now. Mailgun documents no window; this project bounds five minutes each way",
           code="timestamp_too_old"),
        mk("future_timestamp", "reject", body(hex256(key, str(NOW + 301) + token), ts=str(NOW + 301)),
           "validly signed 301 s after now (this project's five-minute window)", code="timestamp_too_new"),
        mk("rotation_second_key", "accept", body(good), "two configured keys; the second one signed", secrets=[other, key]),
        mk("malformed_signature", "reject", body("z" * 64), "signature.signature is not hex", code="malformed_header"),
        mk("missing_signature_object", "reject", body("", omit=True), "the body has no signature object"),
    ]


def meta() -> list[dict]:
    doc = "https://developers.facebook.com/docs/graph-api/webhooks/getting-started#validate-payloads"
    secret = "3f1c6e2a7b3d4c5e8f90a1b2c3d4e5f6"
    other = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    cases = hmac_body_preset(
        "meta", doc, secret, other, "X-Hub-Signature-256", lambda s, b: "sha256=" + hex256(s, b),
        "sha256=nothex", META_WHATSAPP, "a WhatsApp Cloud API text message notification in the documented shape", {},
    )
    verify_token = "meatyhamhock"
    challenge = "1158201444"
    for name, sent, response, expect in [
        ("handshake_subscribe", verify_token, challenge, "accept"),
        ("handshake_wrong_verify_token", "wrongtoken", None, "reject"),
    ]:
        query = urlencode([("hub.mode", "subscribe"), ("hub.challenge", challenge), ("hub.verify_token", sent)])
        cases.append(case(
            name=name, preset="meta", secret=secret, url=f"https://hooks.example.com/webhooks/meta?{query}", method="GET",
            headers={}, body="", expect=expect,
            handshake={"kind": "meta_subscribe", "verify_token": verify_token, "response": response},
            reason=f"verification request per {doc}; the challenge is echoed only when hub.verify_token equals the configured one"))
    return cases


def bitbucket() -> list[dict]:
    doc = "https://support.atlassian.com/bitbucket-cloud/docs/manage-webhooks/#Secure-webhooks"
    return hmac_body_preset(
        "bitbucket", doc, "bb_9f1c6e2a7b3d4c5e8f90a1b2c3d4e5f6", "bb_0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "X-Hub-Signature", lambda s, b: "sha256=" + hex256(s, b), "sha256=nothex", BITBUCKET_PUSH,
        "a repo:push payload in the documented shape",
        {"X-Event-Key": "repo:push", "X-Request-UUID": "afc6b2b6-24c5-4c8a-9dc8-6f5a3f4e2d1c",
         "X-Hook-UUID": "cb2d8f32-2a3e-4c0e-9a1b-0c2d3e4f5a6b"},
    )


def gitea() -> list[dict]:
    doc = "https://docs.gitea.com/features/webhooks"
    return hmac_body_preset(
        "gitea", doc, "gitea-9f1c6e2a7b3d4c5e8f90", "gitea-0a1b2c3d4e5f60718293",
        "X-Gitea-Signature", hex256, "nothex", GITEA_PUSH, "the push example of the Gitea documentation's shape",
        {"X-Gitea-Event": "push", "X-Gitea-Delivery": "f6266f16-1bf3-46a5-9ea4-602e06ead473"},
    )


def forgejo() -> list[dict]:
    doc = "https://forgejo.org/docs/latest/user/webhooks/"
    return hmac_body_preset(
        "forgejo", doc, "forgejo-9f1c6e2a7b3d4c5e8f90", "forgejo-0a1b2c3d4e5f60718293",
        "X-Forgejo-Signature", hex256, "nothex", GITEA_PUSH, "a push event in the shape Forgejo shares with Gitea",
        {"X-Forgejo-Event": "push", "X-Forgejo-Delivery": "2f9b6e0a-3c4d-4e5f-8a9b-0c1d2e3f4a5b"},
    )


def typeform() -> list[dict]:
    doc = "https://www.typeform.com/developers/webhooks/secure-your-webhooks/"
    return hmac_body_preset(
        "typeform", doc, "tf-9f1c6e2a7b3d4c5e8f90a1b2", "tf-0a1b2c3d4e5f60718293a4b5",
        "Typeform-Signature", lambda s, b: "sha256=" + b64_256(s, b), "sha256=not base64!", TYPEFORM_RESPONSE,
        "a form_response payload in the documented shape", {},
    )


def sentry() -> list[dict]:
    doc = "https://docs.sentry.io/integrations/integration-platform/webhooks/"
    return hmac_body_preset(
        "sentry", doc, "sentry-9f1c6e2a7b3d4c5e8f90a1b2c3d4e5f6", "sentry-0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "Sentry-Hook-Signature", hex256, "nothex", SENTRY_ISSUE, "an issue.created payload in the documented shape",
        {"Sentry-Hook-Resource": "issue", "Sentry-Hook-Timestamp": str(NOW - 5),
         "Request-ID": "a2c3b5f6-7d8e-4f90-a1b2-c3d4e5f6a7b8"},
    )


def vercel() -> list[dict]:
    doc = "https://vercel.com/docs/webhooks/webhooks-api#securing-webhooks"
    return hmac_body_preset(
        "vercel", doc, "vercel-9f1c6e2a7b3d4c5e8f90a1b2", "vercel-0a1b2c3d4e5f60718293a4b5",
        "x-vercel-signature", hex1, "nothex", VERCEL_EVENT, "a deployment.created payload in the documented shape", {},
    )


def calendly() -> list[dict]:
    doc = "https://developer.calendly.com/api-docs/overview/webhooks/webhook-signatures"
    key = "cal-9f1c6e2a7b3d4c5e8f90a1b2c3d4e5f6"
    other = "cal-0a1b2c3d4e5f60718293a4b5c6d7e8f9"

    def sig(k, t, body):
        return hex256(k, f"{t}.{body}")

    def mk(name, expect, body, header, reason, code=None, secrets=None):
        headers = {} if header is None else {"Calendly-Webhook-Signature": header}
        return case(name=name, preset="calendly", secret=None if secrets else key, secrets=secrets,
                    method="POST", headers=headers, body=body, tolerance=180, expect=expect, code=code,
                    reason=reason)

    t = NOW - 5
    good = sig(key, t, CALENDLY_EVENT)
    return [
        mk("accept", "accept", CALENDLY_EVENT, f"t={t},v1={good}",
           f"t=..,v1=hex(HMAC-SHA256(signing key, '{{t}}.{{body}}')) computed with Python's hmac per {doc}; invitee.created body in the documented shape"),
        mk("tampered_body", "reject", CALENDLY_EVENT.replace("John", "Jane"), f"t={t},v1={good}",
           "the accept signature over a changed body", code="mismatch"),
        mk("wrong_key", "reject", CALENDLY_EVENT, f"t={t},v1={sig(other, t, CALENDLY_EVENT)}",
           "signed with another key", code="mismatch"),
        mk("stale_timestamp", "reject", CALENDLY_EVENT, f"t={NOW - 181},v1={sig(key, NOW - 181, CALENDLY_EVENT)}",
           "validly signed 181 s before now; the documented example allows three minutes", code="timestamp_too_old"),
        mk("future_timestamp", "reject", CALENDLY_EVENT, f"t={NOW + 181},v1={sig(key, NOW + 181, CALENDLY_EVENT)}",
           "validly signed 181 s after now; this project bounds both directions", code="timestamp_too_new"),
        mk("rotation_second_key", "accept", CALENDLY_EVENT, f"t={t},v1={good}",
           "two configured keys; the second one signed", secrets=[other, key]),
        mk("rotation_two_v1_second_valid", "accept", CALENDLY_EVENT,
           f"t={t},v1={sig(other, t, CALENDLY_EVENT)},v1={good}",
           "two v1 entries in the header, the second valid"),
        mk("malformed_no_v1", "reject", CALENDLY_EVENT, f"t={t}", "the header has no v1"),
        mk("malformed_signature", "reject", CALENDLY_EVENT, f"t={t},v1=nothex",
           "v1 is not hex (no code: an entry of a list that does not decode may be skipped as not matching)"),
        mk("missing_signature_header", "reject", CALENDLY_EVENT, None, "no Calendly-Webhook-Signature", code="missing_header"),
    ]


def intercom() -> list[dict]:
    doc = "https://developers.intercom.com/intercom-api-reference/v1.0/reference/signed-notifications"
    return hmac_body_preset(
        "intercom", doc, "ic-9f1c6e2a7b3d4c5e8f90a1b2c3d4e5f6", "ic-0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "X-Hub-Signature", lambda s, b: "sha1=" + hex1(s, b), "sha1=nothex", INTERCOM_NOTIFICATION,
        "a conversation.user.created notification in the documented shape", {},
    )


def coinbase() -> list[dict]:
    doc = "https://docs.cdp.coinbase.com/commerce/api-arcitecture/webhooks-security"
    return hmac_body_preset(
        "coinbase", doc, "cb-9f1c6e2a-7b3d-4c5e-8f90-a1b2c3d4e5f6", "cb-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
        "X-CC-Webhook-Signature", hex256, "nothex", COINBASE_EVENT, "a charge:created event in the documented shape", {},
    )


def twitter() -> list[dict]:
    doc = "https://docs.x.com/x-api/webhooks/introduction"
    secret = "tw-consumer-9f1c6e2a7b3d4c5e8f90a1b2c3d4e5f6a7b8c9d0e1f2"
    other = "tw-consumer-0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5"
    cases = hmac_body_preset(
        "twitter", doc, secret, other, "x-twitter-webhooks-signature",
        lambda s, b: "sha256=" + b64_256(s, b), "sha256=not base64!", TWITTER_EVENT,
        "a tweet_create_events activity in the documented shape", {},
    )
    query = urlencode([("crc_token", TWITTER_CRC_TOKEN), ("nonce", "MTc2NzIyNTYwMA")])
    cases.append(case(
        name="handshake_crc", preset="twitter", secret=secret,
        url=f"https://hooks.example.com/webhooks/twitter?{query}", method="GET", headers={}, body="",
        expect="accept",
        handshake={"kind": "twitter_crc", "token": TWITTER_CRC_TOKEN,
                   "response": json.dumps({"response_token": "sha256=" + b64_256(secret, TWITTER_CRC_TOKEN)},
                                          separators=(",", ":"))},
        reason=f"challenge-response check per {doc}; response_token = 'sha256=' + base64(HMAC-SHA256(consumer secret, crc_token))"))
    return cases


def msgraph() -> list[dict]:
    doc = "https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks"

    def mk(name, expect, body, reason, code=None, handshake=None, url=None):
        return case(name=name, preset="msgraph", secret=MSGRAPH_CLIENT_STATE, url=url, method="POST",
                    headers={"Content-Type": "application/json"}, body=body, expect=expect, code=code,
                    handshake=handshake, reason=reason)

    token = "Validation: Testing client application reachability for subscription Request-Id: 1b9e0c9a"
    return [
        mk("accept", "accept", msgraph_notifications(MSGRAPH_CLIENT_STATE),
           f"clientState of the notification equals the configured value, per {doc}; message-created notification in the documented shape"),
        mk("accept_batch", "accept", msgraph_notifications(MSGRAPH_CLIENT_STATE, MSGRAPH_CLIENT_STATE),
           "two notifications in one POST, both with the configured clientState"),
        mk("wrong_client_state", "reject", msgraph_notifications("anotherValue"),
           "clientState differs from the configured value", code="mismatch"),
        mk("one_of_batch_wrong", "reject", msgraph_notifications(MSGRAPH_CLIENT_STATE, "anotherValue"),
           "the second notification of the batch carries another clientState"),
        mk("missing_client_state", "reject", msgraph_notifications(None), "the notification has no clientState"),
        mk("handshake_validation_token", "accept", "",
           f"subscription validation per {doc}; POST ?validationToken=... is answered 200 text/plain with the decoded token",
           url="https://hooks.example.com/webhooks/msgraph?" + urlencode([("validationToken", token)]),
           handshake={"kind": "msgraph_validation", "token": token, "response": token}),
    ]


def dropbox() -> list[dict]:
    doc = "https://www.dropbox.com/developers/reference/webhooks"
    cases = hmac_body_preset(
        "dropbox", doc, "dbx-9f1c6e2a7b3d4c5e", "dbx-0a1b2c3d4e5f6071",
        "X-Dropbox-Signature", hex256, "nothex", DROPBOX_NOTIFICATION,
        "a list_folder notification in the documented shape", {},
    )
    challenge = "ZGJ4LWNoYWxsZW5nZQ"
    cases.append(case(
        name="handshake_challenge", preset="dropbox", secret="dbx-9f1c6e2a7b3d4c5e",
        url=f"https://hooks.example.com/webhooks/dropbox?challenge={challenge}", method="GET", headers={}, body="",
        expect="accept", handshake={"kind": "dropbox_challenge", "token": challenge, "response": challenge},
        reason=f"verification request per {doc}; echo the challenge as text/plain with X-Content-Type-Options: nosniff"))
    return cases


# ---------------------------------------------------------------------------------------------

PRESETS = {
    "slack": slack, "zoom": zoom, "shopify": shopify, "gitlab": gitlab, "linear": linear,
    "paddle": paddle, "twilio": twilio, "square": square, "hubspot": hubspot, "pagerduty": pagerduty,
    "mailgun": mailgun, "meta": meta, "bitbucket": bitbucket, "gitea": gitea, "forgejo": forgejo,
    "typeform": typeform, "sentry": sentry, "vercel": vercel, "calendly": calendly, "intercom": intercom,
    "coinbase": coinbase, "twitter": twitter, "msgraph": msgraph, "dropbox": dropbox, "discord": discord,
    "sendgrid": sendgrid, "standard": standard,
}
# github.json and stripe.json predate this script and stay as they are; the githubkit
# cross-check goes to its own file.
EXTRA = {"github-githubkit": github_sdk}

# Cases the daemon's end-to-end tests replay through the binary: one of each kind per preset.
E2E_NAMES = (
    "accept", "accept_event_callback", "accept_form", "accept_command", "accept_push", "tampered_body",
    "wrong_secret", "wrong_key", "wrong_token", "stale_timestamp", "future_timestamp",
    "accept_svix_headers", "accept_v1a_ed25519", "accept_json_body_sha256", "tampered_form_param",
    "tampered_json_body", "tampered_token", "wrong_client_state", "one_of_batch_wrong",
)


def dump(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> None:
    e2e = []
    for name, build in {**PRESETS, **EXTRA}.items():
        cases = build()
        names = [c["name"] for c in cases]
        assert len(names) == len(set(names)), f"{name}: duplicate case names"
        check_agreement(name, cases)
        dump(OUT / f"{name}.json", cases)
        for c in cases:
            if c["name"] in E2E_NAMES or "handshake" in c:
                e2e.append({"preset": c["preset"], "file": f"signatures/{name}.json", "case": c["name"],
                            "expect": c["expect"]})
        print(f"{name}: {len(cases)} cases", file=sys.stderr)
    dump(E2E, e2e)


if __name__ == "__main__":
    main()
