//! Records the commit the binary is built from, so that `clawlet-webhookd --version` can name it.
//!
//! Outside a git work tree (a source tarball) the commit is `unknown`: the build must never fail
//! for want of git.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=CLAWLET_COMMIT={commit}");
    println!("cargo:rerun-if-changed=build.rs");
    // A new commit moves the branch's ref (loose, or in packed-refs after a gc); a checkout of
    // another branch or commit rewrites HEAD. A path that does not exist would make cargo run
    // this script on every build, so only existing ones are named.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(head_ref);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]).map(PathBuf::from)
            && path.exists()
        {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// The trimmed output of a git command, or `None` when git is missing or fails.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}
