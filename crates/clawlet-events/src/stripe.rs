//! Stripe deliveries: the event type and delivery id come from the body (`type`, `id`), the
//! summary from a partial, borrowed view of `data.object`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::ParseError;
use crate::money::format_amount;
use crate::pointer::Str;
use crate::text::{MAX_FIELD, clean};

type S<'a> = Cow<'a, str>;

/// The event's own fields, kept raw so that a field of an unexpected JSON type reads as absent
/// instead of failing the whole body. `data.object` is located in the same pass.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow, rename = "type")]
    event_type: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<Data<'a>>,
}

/// [`Head`] for a body whose `data` is not an object: still an event with a type and an id.
#[derive(Deserialize)]
struct HeadOnly<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow, rename = "type")]
    event_type: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    object: Option<&'a RawValue>,
}

/// What every Stripe object has.
#[derive(Deserialize)]
struct Object<'a> {
    #[serde(borrow)]
    id: Option<S<'a>>,
    #[serde(borrow)]
    object: Option<S<'a>>,
}

#[derive(Deserialize)]
struct Customer<'a> {
    #[serde(borrow)]
    id: Option<S<'a>>,
    #[serde(borrow)]
    email: Option<S<'a>>,
    #[serde(borrow)]
    name: Option<S<'a>>,
}

#[derive(Deserialize)]
struct Details<'a> {
    #[serde(borrow)]
    email: Option<S<'a>>,
    #[serde(borrow)]
    name: Option<S<'a>>,
}

#[derive(Deserialize)]
struct CheckoutSession<'a> {
    #[serde(borrow)]
    id: Option<S<'a>>,
    amount_total: Option<i64>,
    #[serde(borrow)]
    currency: Option<S<'a>>,
    #[serde(borrow)]
    customer: Option<&'a RawValue>,
    #[serde(borrow)]
    customer_details: Option<Details<'a>>,
    #[serde(borrow)]
    customer_email: Option<S<'a>>,
}

#[derive(Deserialize)]
struct PaymentError<'a> {
    #[serde(borrow)]
    message: Option<S<'a>>,
    #[serde(borrow)]
    decline_code: Option<S<'a>>,
    #[serde(borrow)]
    code: Option<S<'a>>,
    #[serde(borrow, rename = "type")]
    kind: Option<S<'a>>,
}

#[derive(Deserialize)]
struct PaymentIntent<'a> {
    #[serde(borrow)]
    id: Option<S<'a>>,
    amount: Option<i64>,
    amount_received: Option<i64>,
    #[serde(borrow)]
    currency: Option<S<'a>>,
    #[serde(borrow)]
    customer: Option<&'a RawValue>,
    #[serde(borrow)]
    receipt_email: Option<S<'a>>,
    #[serde(borrow)]
    last_payment_error: Option<PaymentError<'a>>,
}

#[derive(Deserialize)]
struct Invoice<'a> {
    #[serde(borrow)]
    id: Option<S<'a>>,
    #[serde(borrow)]
    number: Option<S<'a>>,
    amount_paid: Option<i64>,
    amount_due: Option<i64>,
    #[serde(borrow)]
    currency: Option<S<'a>>,
    #[serde(borrow)]
    customer: Option<&'a RawValue>,
    #[serde(borrow)]
    customer_email: Option<S<'a>>,
    #[serde(borrow)]
    customer_name: Option<S<'a>>,
}

/// Stripe's `type`, `id` and the summary of one event body.
pub(crate) struct Described<'a> {
    pub(crate) event_type: Cow<'a, str>,
    pub(crate) delivery_id: Cow<'a, str>,
    pub(crate) summary: String,
}

pub(crate) fn describe(body: &RawValue) -> Result<Described<'_>, ParseError> {
    let (id, event_type, object) = match serde_json::from_str::<Head<'_>>(body.get()) {
        Ok(h) => (h.id, h.event_type, h.data.and_then(|d| d.object)),
        Err(_) => {
            let h: HeadOnly<'_> =
                serde_json::from_str(body.get()).map_err(ParseError::InvalidJson)?;
            (h.id, h.event_type, None)
        }
    };
    let event_type = event_type
        .and_then(string)
        .ok_or(ParseError::MissingEventType)?;
    let delivery_id = id.and_then(string).ok_or(ParseError::MissingDeliveryId)?;
    let summary = object
        .and_then(|o| typed(&event_type, o.get()))
        .unwrap_or_else(|| generic(&event_type, object));
    Ok(Described {
        event_type,
        delivery_id,
        summary,
    })
}

fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Str<'_>>(raw.get()).ok().map(|s| s.0)
}

fn field(value: Option<&S<'_>>) -> Option<String> {
    value.map(|v| clean(v, MAX_FIELD)).filter(|v| !v.is_empty())
}

/// Who paid or was charged, from whatever the object says about its customer.
#[derive(Default)]
struct Party {
    id: Option<String>,
    email: Option<String>,
    name: Option<String>,
}

impl Party {
    /// `customer` is an id string, or the customer object when the webhook expands it.
    fn from_customer(customer: Option<&RawValue>) -> Self {
        let Some(raw) = customer else {
            return Self::default();
        };
        if let Some(id) = string(raw) {
            return Self {
                id: field(Some(&id)),
                ..Self::default()
            };
        }
        match serde_json::from_str::<Customer<'_>>(raw.get()) {
            Ok(c) => Self {
                id: field(c.id.as_ref()),
                email: field(c.email.as_ref()),
                name: field(c.name.as_ref()),
            },
            Err(_) => Self::default(),
        }
    }

    fn or_email(mut self, email: Option<&S<'_>>) -> Self {
        self.email = self.email.or_else(|| field(email));
        self
    }

    fn or_name(mut self, name: Option<&S<'_>>) -> Self {
        self.name = self.name.or_else(|| field(name));
        self
    }

    /// "customer jane@example.com (cus_123)", or `None` when nothing is known.
    fn label(&self) -> Option<String> {
        let who = self.email.as_ref().or(self.name.as_ref());
        match (who, &self.id) {
            (Some(who), Some(id)) => Some(format!("customer {who} ({id})")),
            (Some(who), None) => Some(format!("customer {who}")),
            (None, Some(id)) => Some(format!("customer {id}")),
            (None, None) => None,
        }
    }
}

fn amount(minor: Option<i64>, currency: Option<&S<'_>>) -> String {
    match (minor, currency) {
        (Some(minor), Some(currency)) => format_amount(minor, currency),
        (Some(minor), None) => format!("{minor} minor units"),
        (None, _) => "an unknown amount".to_owned(),
    }
}

fn typed(event_type: &str, object: &str) -> Option<String> {
    Some(match event_type {
        "checkout.session.completed" => {
            let s: CheckoutSession<'_> = serde_json::from_str(object).ok()?;
            let id = field(s.id.as_ref()).unwrap_or_else(|| "session".to_owned());
            let details = s.customer_details.as_ref();
            let party = Party::from_customer(s.customer)
                .or_email(
                    details
                        .and_then(|d| d.email.as_ref())
                        .or(s.customer_email.as_ref()),
                )
                .or_name(details.and_then(|d| d.name.as_ref()));
            let by = party
                .label()
                .map(|p| format!(" by {p}"))
                .unwrap_or_default();
            match s.amount_total {
                Some(_) => format!(
                    "Checkout {id} completed: {} paid{by}",
                    amount(s.amount_total, s.currency.as_ref())
                ),
                None => format!("Checkout {id} completed{by}"),
            }
        }
        "payment_intent.succeeded" | "payment_intent.payment_failed" => {
            let p: PaymentIntent<'_> = serde_json::from_str(object).ok()?;
            let party = Party::from_customer(p.customer).or_email(p.receipt_email.as_ref());
            let id = field(p.id.as_ref()).unwrap_or_else(|| "payment intent".to_owned());
            if event_type == "payment_intent.succeeded" {
                let minor = p.amount_received.filter(|a| *a > 0).or(p.amount);
                let how_much = amount(minor, p.currency.as_ref());
                match party.label() {
                    Some(who) => format!("Payment of {how_much} received from {who}"),
                    None => format!("Payment of {how_much} received ({id})"),
                }
            } else {
                let how_much = amount(p.amount, p.currency.as_ref());
                let who = party.label().unwrap_or(id);
                let reason = p
                    .last_payment_error
                    .as_ref()
                    .and_then(|e| {
                        field(e.message.as_ref())
                            .or_else(|| field(e.decline_code.as_ref()))
                            .or_else(|| field(e.code.as_ref()))
                            .or_else(|| field(e.kind.as_ref()))
                    })
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                format!("Payment of {how_much} failed for {who}{reason}")
            }
        }
        "invoice.paid" | "invoice.payment_failed" => {
            let i: Invoice<'_> = serde_json::from_str(object).ok()?;
            let name = field(i.number.as_ref())
                .or_else(|| field(i.id.as_ref()))
                .unwrap_or_else(|| "(unnumbered)".to_owned());
            let party = Party::from_customer(i.customer)
                .or_email(i.customer_email.as_ref())
                .or_name(i.customer_name.as_ref());
            if event_type == "invoice.paid" {
                let from = party
                    .label()
                    .map(|p| format!(" from {p}"))
                    .unwrap_or_default();
                format!(
                    "Invoice {name} paid: {}{from}",
                    amount(i.amount_paid, i.currency.as_ref())
                )
            } else {
                let of = party
                    .label()
                    .map(|p| format!(" of {p}"))
                    .unwrap_or_default();
                format!(
                    "Payment of {} failed for invoice {name}{of}",
                    amount(i.amount_due, i.currency.as_ref())
                )
            }
        }
        "customer.created" | "customer.updated" => {
            let c: Customer<'_> = serde_json::from_str(object).ok()?;
            let id = field(c.id.as_ref());
            let who = field(c.email.as_ref()).or_else(|| field(c.name.as_ref()));
            let what = match (who, id) {
                (Some(who), Some(id)) => format!("{who} ({id})"),
                (Some(x), None) | (None, Some(x)) => x,
                (None, None) => "(unknown)".to_owned(),
            };
            if event_type == "customer.created" {
                format!("New customer {what} created")
            } else {
                format!("Customer {what} updated")
            }
        }
        _ => return None,
    })
}

/// Every other event type: the type, and which object it is about when the body says.
fn generic(event_type: &str, object: Option<&RawValue>) -> String {
    let event_type = clean(event_type, MAX_FIELD);
    let object = object.and_then(|o| serde_json::from_str::<Object<'_>>(o.get()).ok());
    match object
        .as_ref()
        .map(|o| (field(o.object.as_ref()), field(o.id.as_ref())))
    {
        Some((Some(kind), Some(id))) => format!("Stripe event {event_type} for {kind} {id}"),
        Some((None, Some(id))) => format!("Stripe event {event_type} for {id}"),
        _ => format!("Stripe event {event_type}"),
    }
}

#[cfg(test)]
mod tests;
