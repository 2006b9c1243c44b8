//! Logging and tracing: `tracing` to stderr (human or JSON), and OpenTelemetry spans over OTLP/gRPC
//! when an endpoint is configured.

use std::collections::HashMap;
use std::io::IsTerminal as _;

use anyhow::{Context as _, Result};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How the daemon logs and traces, taken from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct TelemetrySpec {
    /// `logging.level`, such as `INFO` or `debug`; `RUST_LOG` wins when it is set.
    pub(crate) level: String,
    /// `logging.format: json`.
    pub(crate) json: bool,
    /// `telemetry.otlp.endpoint`, such as `http://127.0.0.1:4317`.
    pub(crate) otlp_endpoint: Option<String>,
    /// `telemetry.otlp.service_name`.
    pub(crate) service_name: String,
}

/// Keeps the span exporter alive; dropping it flushes the spans still buffered.
pub(crate) struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Failing to flush at exit must not turn a clean shutdown into an error.
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber. Call once, inside the tokio runtime (the gRPC exporter needs it).
pub(crate) fn init(spec: &TelemetrySpec) -> Result<Telemetry> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(&directives)
            .with_context(|| format!("RUST_LOG={directives:?} is not a valid filter"))?,
        _ => EnvFilter::try_new(spec.level.to_ascii_lowercase()).with_context(|| {
            format!("webhooks.logging.level: {:?} is not a level (use ERROR, WARN, INFO, DEBUG or TRACE)", spec.level)
        })?,
    };
    let fmt = if spec.json {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .boxed()
    };

    let provider = match &spec.otlp_endpoint {
        Some(endpoint) => Some(otlp_provider(endpoint, &spec.service_name)?),
        None => None,
    };
    let otel = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer("clawlet-webhookd"))
    });

    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .context("a global tracing subscriber was already installed")?;
    Ok(Telemetry { provider })
}

fn otlp_provider(endpoint: &str, service_name: &str) -> Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .with_context(|| format!("telemetry.otlp.endpoint: cannot export to {endpoint}"))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build())
}

/// The W3C `traceparent` of the current span, when spans are being exported.
pub(crate) fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}
