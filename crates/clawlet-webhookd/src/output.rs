//! Standard output for the commands whose output is their result (`events`, `send`,
//! `config check`).
//!
//! Rust ignores SIGPIPE, so when the reader goes away (`… | head -1`) a write fails with
//! `BrokenPipe`, and `println!` panics on it. Here that ends the output quietly instead: further
//! lines are dropped, and the command decides whether to stop early, as a Unix tool killed by
//! SIGPIPE would, without a message.

use std::fmt;
use std::io::{self, BufWriter, StdoutLock, Write};

/// Buffered standard output that stops writing once its reader has gone away.
pub(crate) struct Output {
    out: BufWriter<StdoutLock<'static>>,
    closed: bool,
}

/// Returned by a command's loop to stop early because nobody reads its output any more; the
/// command then ends with success (see [`Output`]).
#[derive(Debug)]
pub(crate) struct ReaderGone;

impl fmt::Display for ReaderGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for ReaderGone {}

impl Output {
    pub(crate) fn stdout() -> Self {
        Self {
            out: BufWriter::new(io::stdout().lock()),
            closed: false,
        }
    }

    /// Writes `text` and a newline; nothing once the reader has gone away. Errors other than
    /// that one (a full disk behind a redirection) are returned.
    pub(crate) fn line(&mut self, text: impl fmt::Display) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let written = writeln!(self.out, "{text}");
        self.settle(written)
    }

    /// Writes `text` as it is (the caller ends its lines); nothing once the reader has gone away.
    pub(crate) fn text(&mut self, text: &str) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let written = self.out.write_all(text.as_bytes());
        self.settle(written)
    }

    /// Whether the reader has gone away: a command producing many lines stops.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Flushes what is buffered.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let flushed = self.out.flush();
        self.settle(flushed)
    }

    fn settle(&mut self, result: io::Result<()>) -> io::Result<()> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}
