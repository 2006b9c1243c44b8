//! The one meaning of an `events:` list, shared by handlers (which events are queued) and routes
//! (which agents receive them), so that the same entry selects the same events in both places.

/// Whether an `events:` list selects an event of `event_type` with GitHub's `action`.
///
/// An empty list selects every event. An entry selects an event when it is the event type
/// (`pull_request`, Stripe's `invoice.paid`) or the type, a dot and the action
/// (`pull_request.opened`).
///
/// ```
/// use clawlet_events::selects;
///
/// let events = ["push".to_owned(), "pull_request.opened".to_owned()];
/// assert!(selects(&events, "pull_request", Some("opened")));
/// assert!(!selects(&events, "pull_request", Some("closed")));
/// assert!(selects(&[], "anything", None));
/// ```
pub fn selects(events: &[String], event_type: &str, action: Option<&str>) -> bool {
    events.is_empty()
        || events
            .iter()
            .any(|entry| entry_selects(entry, event_type, action))
}

/// Whether one entry of an `events:` list selects the event; see [`selects`].
pub fn entry_selects(entry: &str, event_type: &str, action: Option<&str>) -> bool {
    entry == event_type
        || action.is_some_and(|action| {
            entry
                .strip_prefix(event_type)
                .and_then(|rest| rest.strip_prefix('.'))
                == Some(action)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_for_handlers_and_routes() {
        fn check(events: &[&str], event_type: &str, action: Option<&str>, expected: bool) {
            let events: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
            assert_eq!(
                selects(&events, event_type, action),
                expected,
                "{events:?} {event_type} {action:?}"
            );
        }
        check(&[], "push", None, true);
        check(&[], "pull_request", Some("opened"), true);
        check(&["push"], "push", None, true);
        check(&["push"], "pull_request", Some("opened"), false);
        check(&["pull_request"], "pull_request", Some("opened"), true);
        check(
            &["pull_request.opened"],
            "pull_request",
            Some("opened"),
            true,
        );
        check(
            &["pull_request.opened"],
            "pull_request",
            Some("closed"),
            false,
        );
        check(&["pull_request.opened"], "pull_request", None, false);
        check(
            &["pull_request.opene"],
            "pull_request",
            Some("opened"),
            false,
        );
        check(
            &["pull_request.opened.x"],
            "pull_request",
            Some("opened"),
            false,
        );
        check(
            &["pull_requestopened"],
            "pull_request",
            Some("opened"),
            false,
        );
        check(
            &["pull_requestXopened"],
            "pull_request",
            Some("opened"),
            false,
        );
        check(&["pull"], "pull_request", Some("opened"), false);
        // Stripe's types hold dots themselves and carry no action.
        check(&["invoice.paid"], "invoice.paid", None, true);
        check(&["invoice"], "invoice.paid", None, false);
        check(&["invoice.paid"], "invoice", None, false);
        check(&["push", "issues.closed"], "issues", Some("closed"), true);
        check(&["push", "invoice.paid"], "invoice.paid", None, true);
        check(&["Push"], "push", None, false);
    }
}
