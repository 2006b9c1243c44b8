//! Scenario `deliver`: what an attached agent costs the intake, and whether delivery keeps up.
//!
//! Each round runs the sqlite daemon three times under the same load: with only the built-in log
//! agent (the baseline), with every event routed to a fast local HTTP agent (`clawlet-natsbench
//! sink`, answering 204 at once), and with every event routed to an exec agent (`/bin/cat`, which
//! reads the envelope and exits). The agent's successes are read from the daemon's `/metrics` when
//! the load stops and then until every accepted event is delivered or the drain time is up.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{
    Backend, Bench, Load, OursConfig, Row, Server, Sink, load_average, load_run, median,
    next_run_id, opt, start,
};

/// How long the backlog may take to drain after the load before it counts as not delivered.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
/// How often `/metrics` is read while the backlog drains.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// The HTTP agent's concurrency, as in the nats scenario.
const HTTP_CONCURRENCY: u32 = 64;
/// The exec agent's concurrency: one process at a time per core is what two cores can start.
const EXEC_CONCURRENCY: u32 = 4;

/// One run's intake and delivery.
struct Delivered {
    round: u32,
    case: &'static str,
    row: Row,
    /// Agent successes when the load stopped, and the time the load took.
    during: Option<(u64, f64)>,
    /// Seconds from the start of the load until every accepted event was delivered, or the
    /// successes counted when the drain time ran out.
    drained: Option<Result<f64, u64>>,
}

pub(super) fn deliver(bench: &Bench) -> Result<String> {
    let sink = Sink::start(bench)?;
    let load = Load::signed(bench.options.connections, &bench.push_body);
    // Far above what a run can queue, so that intake is measured and not back-pressure.
    let unbounded = Some(10_000_000);
    let cases: [(&'static str, OursConfig, Option<&str>); 3] = [
        (
            "log agent only (no agent attached)",
            OursConfig::plain(Backend::Sqlite),
            None,
        ),
        (
            "fast HTTP agent, concurrency 64",
            OursConfig {
                http_agent: Some((sink.url.clone(), HTTP_CONCURRENCY)),
                max_pending: unbounded,
                ..OursConfig::plain(Backend::Sqlite)
            },
            Some("fast"),
        ),
        (
            "exec agent /bin/cat, concurrency 4",
            OursConfig {
                exec_agent: Some(("/bin/cat".to_owned(), EXEC_CONCURRENCY)),
                max_pending: unbounded,
                ..OursConfig::plain(Backend::Sqlite)
            },
            Some("exec"),
        ),
    ];
    let mut runs = Vec::new();
    let mut load_averages = Vec::new();
    for round in 1..=bench.options.rounds {
        for (case, config, agent) in &cases {
            let mut running = start(bench, &Server::Ours(config.clone()), next_run_id())?;
            let began = Instant::now();
            let row = load_run(
                bench,
                std::slice::from_ref(&running),
                &load,
                case,
                "clawlet-webhookd",
            )?;
            let load_s = began.elapsed().as_secs_f64();
            let accepted = row.measured.ok;
            let (during, drained) = match agent {
                Some(agent) => {
                    let at_end = successes(running.port, agent)?;
                    let drained = drain(running.port, agent, accepted, began)?;
                    (Some((at_end, load_s)), Some(drained))
                }
                None => (None, None),
            };
            running.stop();
            runs.push(Delivered {
                round,
                case,
                row,
                during,
                drained,
            });
        }
        load_averages.push(format!("{round}: {}", load_average()));
    }
    drop(sink);
    Ok(report(&runs, &load_averages))
}

/// Reads the agent's successes until they reach `accepted` or the drain time is up: the seconds
/// since `began` when they did, or the count reached.
fn drain(port: u16, agent: &str, accepted: u64, began: Instant) -> Result<Result<f64, u64>> {
    let deadline = Instant::now() + DRAIN_LIMIT;
    loop {
        let delivered = successes(port, agent)?;
        if delivered >= accepted {
            return Ok(Ok(began.elapsed().as_secs_f64()));
        }
        if Instant::now() > deadline {
            return Ok(Err(delivered));
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// `clawlet_delivery_successes_total{agent="…"}` from the daemon's `/metrics` (0 before the first).
fn successes(port: u16, agent: &str) -> Result<u64> {
    let text = super::http_get_body(port, "/metrics")
        .with_context(|| format!("reading /metrics on port {port}"))?;
    Ok(metric(&text, "clawlet_delivery_successes_total", agent).unwrap_or(0))
}

/// The value of `name{agent="agent"}` in OpenMetrics text.
fn metric(text: &str, name: &str, agent: &str) -> Option<u64> {
    let wanted = format!("{name}{{agent=\"{agent}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&wanted))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|v| v.max(0.0).round() as u64)
}

fn report(runs: &[Delivered], load_averages: &[String]) -> String {
    let mut out = String::from(
        "### Delivery under load: sqlite backend, an agent attached\n\n\
         The same signed 7.3 KB pushes; every event routed to the agent. Delivered counts the \
         agent's successes (`clawlet_delivery_successes_total`); the drain is timed from the start \
         of the load until every accepted event was delivered.\n\n\
         | round | agent | req/s | p99 ms | server CPU µs/req | accepted | delivered when the load stopped | delivery events/s during the load | all delivered after s | intake / no agent |\n\
         |--:|---|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    let baseline = |round: u32| {
        runs.iter()
            .find(|r| r.round == round && r.during.is_none())
            .map(|r| r.row.measured.rps)
    };
    for run in runs {
        let m = &run.row.measured;
        let (delivered, rate) = match run.during {
            Some((n, secs)) => (n.to_string(), format!("{:.0}", n as f64 / secs.max(1e-3))),
            None => ("n/a".to_owned(), "n/a".to_owned()),
        };
        let drained = match run.drained {
            Some(Ok(secs)) => format!("{secs:.1}"),
            Some(Err(n)) => format!(
                "not within {} s after the load: {n} of {}",
                DRAIN_LIMIT.as_secs(),
                m.ok
            ),
            None => "n/a".to_owned(),
        };
        let ratio = baseline(run.round)
            .filter(|_| run.during.is_some())
            .map(|b| m.rps / b);
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {} | {} | {delivered} | {rate} | {drained} | {} |",
            run.round,
            run.case,
            m.rps,
            f64::from(m.p99_us) / 1000.0,
            opt(m.cpu_us_per_request, 1),
            m.ok,
            opt(ratio, 2),
        );
    }
    let _ = writeln!(
        out,
        "\nLoad average after each round: {}.\n",
        load_averages.join("; ")
    );
    for (case, label) in [
        ("fast HTTP agent, concurrency 64", "HTTP agent"),
        ("exec agent /bin/cat, concurrency 4", "exec agent"),
    ] {
        let ratios: Vec<f64> = runs
            .iter()
            .filter(|r| r.case == case)
            .filter_map(|r| baseline(r.round).map(|b| r.row.measured.rps / b))
            .collect();
        let all_delivered = runs
            .iter()
            .filter(|r| r.case == case)
            .all(|r| matches!(r.drained, Some(Ok(_))));
        if let Some(ratio) = median(&ratios) {
            let verdict = if ratio >= 0.8 && all_delivered {
                "met"
            } else {
                "missed"
            };
            let _ = writeln!(
                out,
                "- intake with the {label} over intake without: **{ratio:.2}x** (median of {} rounds); \
                 every event delivered in every run: {}; target ≥ 0.8x and all delivered: {verdict}",
                ratios.len(),
                if all_delivered { "yes" } else { "no" },
            );
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_agents_successes_are_read_by_label() {
        let text = "# TYPE clawlet_delivery_successes counter\n\
                    clawlet_delivery_successes_total{agent=\"fast\"} 1234\n\
                    clawlet_delivery_successes_total{agent=\"exec\"} 7\n\
                    clawlet_delivery_attempts_total{agent=\"fast\",outcome=\"ok\"} 99\n";
        let check = |agent: &str, expected: Option<u64>| {
            assert_eq!(
                super::metric(text, "clawlet_delivery_successes_total", agent),
                expected,
                "{agent}"
            );
        };
        check("fast", Some(1234));
        check("exec", Some(7));
        check("fas", None);
        check("slow", None);
    }
}
