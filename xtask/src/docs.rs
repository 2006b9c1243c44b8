//! Shell completions and man pages, rendered from the daemon's own clap definition.
//!
//! The definition is compiled in here from its one source file rather than through a hidden
//! subcommand of the daemon, so that the daemon does not carry the renderers, and the two can
//! never describe different command lines.

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

#[path = "../../crates/clawlet-webhookd/src/cli.rs"]
#[allow(
    dead_code,
    reason = "only the definition is rendered here; the daemon reads the parsed values"
)]
mod cli;

/// The daemon's name: the binary, the completion command and the first man page.
pub(crate) const BIN: &str = "clawlet-webhookd";

/// The shells a completion script is rendered for, with the file name each one looks for.
pub(crate) const SHELLS: &[(Shell, &str)] = &[
    (Shell::Bash, "clawlet-webhookd"),
    (Shell::Zsh, "_clawlet-webhookd"),
    (Shell::Fish, "clawlet-webhookd.fish"),
];

/// What gets installed beside the binary.
#[derive(Debug)]
pub(crate) struct Docs {
    /// One script per entry of [`SHELLS`], in that order.
    pub(crate) completions: Vec<(Shell, String, Vec<u8>)>,
    /// `(file name, roff source)`: `clawlet-webhookd.1`, then one page per subcommand
    /// (`clawlet-webhookd-events-list.1`), as git names its pages.
    pub(crate) man_pages: Vec<(String, Vec<u8>)>,
}

/// Renders every completion script and man page. `version` is what `--version` prints after the
/// name (`0.1.0 (abc1234)`): the definition alone knows only the package version of the crate that
/// compiles it.
pub(crate) fn render(version: &str) -> Result<Docs> {
    // clap keeps borrowed strings unless built with its `string` feature; xtask runs once and exits.
    let version: &'static str = version.to_owned().leak();
    let command = || cli::Cli::command().name(BIN).version(version);
    let mut completions = Vec::new();
    for &(shell, file) in SHELLS {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut command(), BIN, &mut out);
        completions.push((shell, file.to_owned(), out));
    }
    let mut root = command().disable_help_subcommand(true);
    root.build();
    let mut man_pages = Vec::new();
    man_pages_of(&root, version, &mut man_pages).context("rendering the man pages")?;
    Ok(Docs {
        completions,
        man_pages,
    })
}

/// The page of `cmd`, then the pages of its visible subcommands, depth first.
fn man_pages_of(
    cmd: &clap::Command,
    version: &str,
    pages: &mut Vec<(String, Vec<u8>)>,
) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("{BIN} {version}"))
        .manual("clawlet-webhooks");
    let mut roff = Vec::new();
    man.render(&mut roff)?;
    pages.push((man.get_filename(), roff));
    for sub in cmd.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        man_pages_of(sub, version, pages)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_has_a_man_page_and_completions_name_them() {
        let docs = render("9.9.9 (abcdef0)").unwrap();
        let names: Vec<&str> = docs.man_pages.iter().map(|(n, _)| n.as_str()).collect();
        for page in [
            "clawlet-webhookd.1",
            "clawlet-webhookd-serve.1",
            "clawlet-webhookd-config-check.1",
            "clawlet-webhookd-events-list.1",
            "clawlet-webhookd-events-replay.1",
            "clawlet-webhookd-send.1",
        ] {
            assert!(names.contains(&page), "{page} missing from {names:?}");
        }
        let (_, main) = &docs.man_pages[0];
        let main = String::from_utf8_lossy(main);
        assert!(main.contains("clawlet-webhookd 9.9.9 (abcdef0)"), "{main}");
        // The environment variable `send` reads its secret from is documented.
        let (_, send) = docs
            .man_pages
            .iter()
            .find(|(n, _)| n == "clawlet-webhookd-send.1")
            .unwrap();
        assert!(String::from_utf8_lossy(send).contains("CLAWLET_SEND_SECRET"));
        for (shell, _, script) in &docs.completions {
            let script = String::from_utf8_lossy(script);
            for word in ["events", "replay", "older-than", "github"] {
                assert!(script.contains(word), "{shell}: {word} missing");
            }
        }
    }
}
