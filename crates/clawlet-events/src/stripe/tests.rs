use serde_json::value::RawValue;

use super::describe;

fn check(event_type: &str, object: &str, summary: &str) {
    let body = format!(r#"{{"id":"evt_1","type":"{event_type}","data":{{"object":{object}}}}}"#);
    let raw: Box<RawValue> = serde_json::from_str(&body).unwrap();
    let d = describe(&raw).unwrap();
    assert_eq!(d.event_type, event_type);
    assert_eq!(d.delivery_id, "evt_1");
    assert_eq!(d.summary, summary, "{body}");
}

#[test]
fn summarises_payments_in_their_currency() {
    let pi = |amount: i64, currency: &str, rest: &str| {
        format!(r#"{{"id":"pi_1","amount":{amount},"currency":"{currency}"{rest}}}"#)
    };
    let ok = "payment_intent.succeeded";
    check(
        ok,
        &pi(2999, "usd", r#","customer":"cus_123""#),
        "Payment of $29.99 received from customer cus_123",
    );
    check(
        ok,
        &pi(2999, "eur", r#","customer":"cus_123""#),
        "Payment of €29.99 received from customer cus_123",
    );
    check(
        ok,
        &pi(5000, "jpy", r#","customer":"cus_123""#),
        "Payment of ¥5,000 received from customer cus_123",
    );
    check(
        ok,
        &pi(12500, "bhd", r#","customer":"cus_123""#),
        "Payment of 12.500 BHD received from customer cus_123",
    );
    check(
        ok,
        &pi(2999, "zzz", r#","customer":"cus_123""#),
        "Payment of 29.99 ZZZ received from customer cus_123",
    );
    check(
        ok,
        &pi(2999, "usd", r#","amount_received":1500"#),
        "Payment of $15.00 received (pi_1)",
    );
    check(
        ok,
        &pi(2999, "usd", r#","amount_received":0"#),
        "Payment of $29.99 received (pi_1)",
    );
    check(
        ok,
        &pi(2999, "usd", r#","receipt_email":"a@b.c""#),
        "Payment of $29.99 received from customer a@b.c",
    );
    check(
        ok,
        &pi(
            2999,
            "usd",
            r#","customer":{"id":"cus_9","email":"jane@example.com","name":"Jane"}"#,
        ),
        "Payment of $29.99 received from customer jane@example.com (cus_9)",
    );
    check(
        ok,
        &pi(2999, "usd", r#","customer":{"id":"cus_9","name":"Jane"}"#),
        "Payment of $29.99 received from customer Jane (cus_9)",
    );
    check(
        ok,
        r#"{"id":"pi_1"}"#,
        "Payment of an unknown amount received (pi_1)",
    );
    let failed = "payment_intent.payment_failed";
    check(
        failed,
        &pi(
            1099,
            "usd",
            r#","customer":"cus_1","last_payment_error":{"message":"Your card was declined.","code":"card_declined"}"#,
        ),
        "Payment of $10.99 failed for customer cus_1: Your card was declined.",
    );
    check(
        failed,
        &pi(
            1099,
            "usd",
            r#","last_payment_error":{"type":"card_error"}"#,
        ),
        "Payment of $10.99 failed for pi_1: card_error",
    );
    check(
        failed,
        &pi(1099, "usd", ""),
        "Payment of $10.99 failed for pi_1",
    );
}

#[test]
fn summarises_checkout_invoices_and_customers() {
    check(
        "checkout.session.completed",
        r#"{"id":"cs_1","amount_total":4200,"currency":"gbp","customer_details":{"email":"x@y.z"}}"#,
        "Checkout cs_1 completed: £42.00 paid by customer x@y.z",
    );
    check(
        "checkout.session.completed",
        r#"{"id":"cs_1","customer":"cus_2"}"#,
        "Checkout cs_1 completed by customer cus_2",
    );
    check(
        "checkout.session.completed",
        r#"{"id":"cs_1"}"#,
        "Checkout cs_1 completed",
    );
    check(
        "invoice.paid",
        r#"{"id":"in_1","number":"ABC-0001","amount_paid":1000,"currency":"usd","customer":"cus_1","customer_email":"p@q.r"}"#,
        "Invoice ABC-0001 paid: $10.00 from customer p@q.r (cus_1)",
    );
    check(
        "invoice.paid",
        r#"{"id":"in_1","amount_paid":1000,"currency":"krw"}"#,
        "Invoice in_1 paid: ₩1,000",
    );
    check(
        "invoice.payment_failed",
        r#"{"id":"in_1","amount_due":2500,"currency":"omr","customer":"cus_1"}"#,
        "Payment of 2.500 OMR failed for invoice in_1 of customer cus_1",
    );
    check(
        "customer.created",
        r#"{"id":"cus_1","email":"new@example.com"}"#,
        "New customer new@example.com (cus_1) created",
    );
    check(
        "customer.created",
        r#"{"id":"cus_1","email":null,"name":null}"#,
        "New customer cus_1 created",
    );
    check(
        "customer.updated",
        r#"{"id":"cus_1","name":"Ada"}"#,
        "Customer Ada (cus_1) updated",
    );
    check("customer.updated", r#"{}"#, "Customer (unknown) updated");
}

#[test]
fn passes_other_types_through() {
    check(
        "charge.refunded",
        r#"{"id":"ch_1","object":"charge"}"#,
        "Stripe event charge.refunded for charge ch_1",
    );
    check(
        "charge.refunded",
        r#"{"id":"ch_1"}"#,
        "Stripe event charge.refunded for ch_1",
    );
    check("charge.refunded", r#"[]"#, "Stripe event charge.refunded");
    // A known type whose object has an unexpected shape falls back to the generic summary.
    check(
        "invoice.paid",
        r#"{"id":"in_1","object":"invoice","amount_paid":"lots"}"#,
        "Stripe event invoice.paid for invoice in_1",
    );
}

#[test]
fn requires_type_and_id() {
    for (body, code) in [
        (r#"{"id":"evt_1"}"#, "missing_event_type"),
        (r#"{"id":"evt_1","type":7}"#, "missing_event_type"),
        (r#"{"type":"invoice.paid"}"#, "missing_delivery_id"),
        (
            r#"{"type":"invoice.paid","id":null}"#,
            "missing_delivery_id",
        ),
        (r#"{"type":"a","type":"b","id":"evt_1"}"#, "invalid_json"),
    ] {
        let raw: Box<RawValue> = serde_json::from_str(body).unwrap();
        let err = describe(&raw).err().map(|e| e.code());
        assert_eq!(err, Some(code), "{body}");
    }
}

#[test]
fn tolerates_data_that_is_not_an_object() {
    for body in [
        r#"{"id":"evt_1","type":"invoice.paid","data":5}"#,
        r#"{"id":"evt_1","type":"invoice.paid"}"#,
    ] {
        let raw: Box<RawValue> = serde_json::from_str(body).unwrap();
        let d = describe(&raw).unwrap();
        assert_eq!(d.summary, "Stripe event invoice.paid", "{body}");
    }
}
