//! The command line: `clawlet-webhookd [serve] …`, `config check`, `events …`, `send …`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Receives webhooks from GitHub, Stripe and custom senders, verifies them, stores them durably and
/// hands them to your agent.
#[derive(Debug, Parser)]
#[command(
    name = "clawlet-webhookd",
    version,
    propagate_version = true,
    args_conflicts_with_subcommands = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,

    /// Options for `serve`, which runs when no command is given.
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the webhook server (the default command).
    Serve(ServeArgs),
    /// Run the webhook server, spelled as `clawlet agent --webhooks`.
    Agent(AgentArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// List, show, replay and purge journalled events; works while the daemon runs.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Sign and send a sample delivery exactly as the provider would, and print the response.
    Send(SendArgs),
}

/// Where the configuration comes from, and the flags that override it.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ConfigArgs {
    /// Configuration file [default: $CLAWLET_CONFIG, else ~/.clawlet/config.yaml].
    #[arg(long, short = 'c', value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
    /// Address to listen on, overriding `webhooks.host`.
    #[arg(long, value_name = "HOST")]
    pub(crate) host: Option<String>,
    /// Port to listen on, overriding `webhooks.port`.
    #[arg(long, value_name = "PORT")]
    pub(crate) webhook_port: Option<u16>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct AgentArgs {
    /// Enable the webhook server (the only service this binary runs; accepted for compatibility).
    #[arg(long)]
    pub(crate) webhooks: bool,
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the effective configuration with secrets redacted, or every error (exit code 2).
    Check(ConfigArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// List journalled events, newest first.
    List(ListArgs),
    /// Show one event with its delivery status.
    Show {
        /// The event id.
        id: String,
        #[command(flatten)]
        journal: JournalArgs,
    },
    /// Queue events for delivery again.
    Replay(ReplayArgs),
    /// Delete events older than an age.
    Purge {
        /// Age such as `7d` or `12h`.
        #[arg(long, value_parser = parse_duration, value_name = "AGE")]
        older_than: Duration,
        #[command(flatten)]
        journal: JournalArgs,
    },
}

/// Which journal to open: the configured one, or a file named directly.
#[derive(Debug, Clone, Args)]
pub(crate) struct JournalArgs {
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
    /// Journal file, overriding `webhooks.queue.path`.
    #[arg(long, value_name = "PATH")]
    pub(crate) journal: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only events received by this handler.
    #[arg(long)]
    pub(crate) handler: Option<String>,
    /// Only events of this type.
    #[arg(long = "type", value_name = "TYPE")]
    pub(crate) event_type: Option<String>,
    /// Only events in this delivery state.
    #[arg(long, value_enum)]
    pub(crate) status: Option<StatusArg>,
    /// Only events received within this age, such as `1h`.
    #[arg(long, value_parser = parse_duration, value_name = "AGE")]
    pub(crate) since: Option<Duration>,
    /// At most this many events.
    #[arg(long, default_value_t = 100)]
    pub(crate) limit: usize,
    /// One JSON object per line: the envelope plus its delivery status.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) journal: JournalArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum StatusArg {
    /// Not yet delivered to every routed agent.
    Pending,
    /// Delivered to every routed agent.
    Delivered,
    /// Given up on after the last retry.
    Dead,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["id", "dead", "since"])))]
pub(crate) struct ReplayArgs {
    /// The event to replay.
    pub(crate) id: Option<String>,
    /// Every dead-lettered event.
    #[arg(long)]
    pub(crate) dead: bool,
    /// Every event received within this age.
    #[arg(long, value_parser = parse_duration, value_name = "AGE")]
    pub(crate) since: Option<Duration>,
    #[command(flatten)]
    pub(crate) journal: JournalArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Provider {
    /// `X-Hub-Signature-256`, `X-GitHub-Event`, `X-GitHub-Delivery`.
    Github,
    /// `Stripe-Signature` with a timestamp.
    Stripe,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    Standard,
    /// `X-Signature: sha256=<hex>` over the body.
    Custom,
    /// Slack (`--handshake`: `url_verification`).
    Slack,
    /// Zoom (`--handshake`: `endpoint.url_validation`).
    Zoom,
    /// Shopify.
    Shopify,
    /// GitLab (`--secret` is the token).
    Gitlab,
    /// Linear.
    Linear,
    /// Paddle Billing.
    Paddle,
    /// Twilio, a form-encoded status callback signed over `--public-url`.
    Twilio,
    /// Square, signed over `--public-url`.
    Square,
    /// HubSpot v3, signed over `--public-url`.
    Hubspot,
    /// PagerDuty v3.
    Pagerduty,
    /// Mailgun, signed in the body.
    Mailgun,
    /// Meta (`--handshake`: the subscribe `GET`, with `--verify-token`).
    Meta,
    /// Bitbucket Cloud.
    Bitbucket,
    /// Gitea.
    Gitea,
    /// Forgejo.
    Forgejo,
    /// Typeform.
    Typeform,
    /// Sentry.
    Sentry,
    /// Vercel.
    Vercel,
    /// Calendly.
    Calendly,
    /// Intercom.
    Intercom,
    /// Coinbase Commerce.
    Coinbase,
    /// X (Twitter) Account Activity (`--handshake`: the CRC `GET`).
    Twitter,
    /// Microsoft Graph (`--secret` is the clientState; `--handshake`: `validationToken`).
    Msgraph,
    /// Dropbox (`--handshake`: the `challenge` `GET`).
    Dropbox,
    /// Discord, Ed25519 with `--private-key` (`--handshake`: PING).
    Discord,
    /// SendGrid, ECDSA P-256 with `--private-key`.
    Sendgrid,
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The sender to imitate.
    #[arg(value_enum)]
    pub(crate) provider: Provider,
    /// The endpoint, such as http://127.0.0.1:8080/webhook/github.
    #[arg(long)]
    pub(crate) url: String,
    /// The shared secret (Stripe `whsec_…`, Standard Webhooks `whsec_<base64>`, GitLab's token,
    /// Microsoft Graph's clientState); not used by Discord and SendGrid, which sign with
    /// `--private-key`.
    #[arg(
        long,
        env = "CLAWLET_SEND_SECRET",
        hide_env_values = true,
        default_value = ""
    )]
    pub(crate) secret: String,
    /// Discord: the Ed25519 private key as the hex of its 32-byte seed; SendGrid: the P-256
    /// private key as the hex of its 32-byte scalar. The handler's `public_key` must be the
    /// matching public key, which `send` prints to standard error.
    #[arg(long, env = "CLAWLET_SEND_PRIVATE_KEY", hide_env_values = true)]
    pub(crate) private_key: Option<String>,
    /// The URL the handler's `public_url` names, for senders that sign it (Twilio, Square,
    /// HubSpot); `--url` by default.
    #[arg(long)]
    pub(crate) public_url: Option<String>,
    /// Meta's subscribe handshake: the handler's `verify_token`.
    #[arg(long, env = "CLAWLET_SEND_VERIFY_TOKEN", hide_env_values = true)]
    pub(crate) verify_token: Option<String>,
    /// Send the provider's registration handshake instead of an event, and check the answer as
    /// the provider would.
    #[arg(long)]
    pub(crate) handshake: bool,
    /// Event type; a built-in sample payload is used for the spec's events.
    #[arg(long)]
    pub(crate) event: Option<String>,
    /// Send this file's bytes as the body instead of a sample.
    #[arg(long, value_name = "FILE")]
    pub(crate) payload: Option<PathBuf>,
    /// Delivery id to send (a fresh one by default); repeat it to test dedup.
    #[arg(long)]
    pub(crate) delivery_id: Option<String>,
}

/// Parses ages such as `90s`, `1h`, `7d`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|err| format!("{err} (try 30s, 1h or 7d)"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_command_means_serve_with_its_flags() {
        let cli = Cli::try_parse_from([
            "clawlet-webhookd",
            "--config",
            "x.yaml",
            "--webhook-port",
            "9000",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.webhook_port, Some(9000));
        assert_eq!(cli.serve.config.config, Some(PathBuf::from("x.yaml")));
    }

    #[test]
    fn the_spec_spelling_parses() {
        let cli = Cli::try_parse_from([
            "clawlet-webhookd",
            "agent",
            "--webhooks",
            "--webhook-port",
            "8080",
        ])
        .unwrap();
        let Some(Command::Agent(agent)) = cli.command else {
            panic!("expected agent")
        };
        assert!(agent.webhooks);
        assert_eq!(agent.serve.webhook_port, Some(8080));
    }

    #[test]
    fn replay_needs_a_selector() {
        assert!(Cli::try_parse_from(["clawlet-webhookd", "events", "replay"]).is_err());
        assert!(Cli::try_parse_from(["clawlet-webhookd", "events", "replay", "--dead"]).is_ok());
    }
}
