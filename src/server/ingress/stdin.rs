//! stdin ingress (`serve --stdin`): every line is one message, with the same
//! framing and addressed form as the Unix socket (docs/ingress.md), so
//! `tail -f app.log | wsbroadcaster serve --stdin` streams a log to browsers.
//!
//! stdin may be a pipe, a terminal or a regular file, and epoll cannot watch
//! a regular file, so a thread reads it (blocking) and hands complete lines
//! to the loop through a bounded channel, waking it with a `mio::Waker`. A
//! full channel blocks the reader, which is the back-pressure a pipe wants.

use std::io::{self, BufRead};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::time::Instant;

use log::{error, info, warn};
use mio::Waker;

use crate::server::Server;

/// Lines waiting for the loop before the reader blocks.
const CHANNEL_LINES: usize = 1024;
/// Most lines handled per loop turn, so stdin cannot starve the sockets.
const LINES_PER_TURN: usize = 1024;

/// What the reader thread sends.
#[derive(Debug)]
pub(crate) enum StdinMsg {
    /// One line, without its `\n` (or `\r\n`).
    Line(Vec<u8>),
    /// A line longer than the limit was dropped (its length so far).
    TooLong(usize),
    /// End of input: nothing more will come.
    Eof,
    /// Reading failed: nothing more will come.
    Failed(io::Error),
}

/// The loop's end of the stdin reader.
#[derive(Debug)]
pub(crate) struct StdinSource {
    rx: Receiver<StdinMsg>,
    waker: Arc<Waker>,
}

/// Starts the reader thread on the process's stdin; it wakes the loop with
/// the loop's one `waker` (mio allows one per `Poll`).
pub(crate) fn spawn(waker: Arc<Waker>, max: usize) -> io::Result<StdinSource> {
    let (tx, rx) = sync_channel(CHANNEL_LINES);
    let thread_waker = Arc::clone(&waker);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let stdin = io::stdin().lock();
            read_lines(stdin, max, |m| send(&tx, &thread_waker, m));
        })?;
    Ok(StdinSource { rx, waker })
}

fn send(tx: &SyncSender<StdinMsg>, waker: &Waker, m: StdinMsg) -> bool {
    if tx.send(m).is_err() {
        return false; // the server is gone
    }
    let _ = waker.wake();
    true
}

/// Splits `r` into lines of at most `max` bytes (after removing `\n` and one
/// `\r` before it) and hands each to `emit`, which returns false to stop. A
/// longer line is never held whole: its bytes are skipped up to its `\n`.
/// A final line without `\n` is still a line.
pub(crate) fn read_lines<R: BufRead>(mut r: R, max: usize, mut emit: impl FnMut(StdinMsg) -> bool) {
    let mut line = Vec::new();
    // Bytes of an over-long line seen so far, while skipping it.
    let mut skipping: Option<usize> = None;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                emit(StdinMsg::Failed(e));
                return;
            }
        };
        if buf.is_empty() {
            let last = match skipping {
                Some(n) => Some(StdinMsg::TooLong(n)),
                None if !line.is_empty() => Some(finish(std::mem::take(&mut line), max)),
                None => None,
            };
            if let Some(m) = last {
                if !emit(m) {
                    return;
                }
            }
            emit(StdinMsg::Eof);
            return;
        }
        let newline = buf.iter().position(|&b| b == b'\n');
        let chunk = &buf[..newline.unwrap_or(buf.len())];
        let used = chunk.len() + usize::from(newline.is_some());
        match skipping.as_mut() {
            Some(n) => *n += chunk.len(),
            // One byte of slack for a `\r` that the `\n` will strip.
            None if line.len() + chunk.len() > max + 1 => {
                skipping = Some(line.len() + chunk.len());
                line = Vec::new();
            }
            None => line.extend_from_slice(chunk),
        }
        r.consume(used);
        if newline.is_some() {
            let m = match skipping.take() {
                Some(n) => StdinMsg::TooLong(n),
                None => finish(std::mem::take(&mut line), max),
            };
            if !emit(m) {
                return;
            }
        }
    }
}

fn finish(mut line: Vec<u8>, max: usize) -> StdinMsg {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.len() > max {
        StdinMsg::TooLong(line.len())
    } else {
        StdinMsg::Line(line)
    }
}

impl Server {
    /// Handles the lines the reader thread has sent (woken by its Waker).
    pub(crate) fn on_stdin(&mut self) {
        let Some(src) = self.stdin.take() else {
            return;
        };
        let mut keep = true;
        for _ in 0..LINES_PER_TURN {
            match src.rx.try_recv() {
                Ok(StdinMsg::Line(line)) => {
                    if self.shutdown_deadline.is_none() {
                        self.publish_addressed(&line, "stdin", Instant::now());
                    }
                }
                Ok(StdinMsg::TooLong(n)) => {
                    self.stats.stdin_line_too_long += 1;
                    error!(
                        "stdin: dropped a line of {n}+ bytes, longer than --max-message ({} bytes)",
                        self.cfg.limits.max_message
                    );
                }
                Ok(StdinMsg::Eof) => {
                    info!("stdin: end of input; still serving the other ingresses");
                    keep = false;
                    break;
                }
                Ok(StdinMsg::Failed(e)) => {
                    warn!("stdin: read failed ({e}); no more stdin input, still serving");
                    keep = false;
                    break;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    keep = false;
                    break;
                }
            }
        }
        if keep {
            // A full turn's worth handled: come back for the rest next turn
            // (harmless if the channel happens to be empty by then).
            let _ = src.waker.wake();
            self.stdin = Some(src);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize, cap: usize) -> Vec<String> {
        let r = io::BufReader::with_capacity(cap, input);
        let mut out = Vec::new();
        read_lines(r, max, |m| {
            out.push(match m {
                StdinMsg::Line(l) => format!("line {}", String::from_utf8_lossy(&l)),
                StdinMsg::TooLong(n) => format!("too long {n}"),
                StdinMsg::Eof => "eof".into(),
                StdinMsg::Failed(e) => format!("failed {e}"),
            });
            true
        });
        out
    }

    #[test]
    fn splits_lines_whatever_the_read_size() {
        let input = b"one\ntwo\r\n\nlast";
        for cap in [1, 2, 3, 5, 64] {
            assert_eq!(
                lines(input, 10, cap),
                ["line one", "line two", "line ", "line last", "eof"],
                "buffer of {cap}"
            );
        }
        assert_eq!(lines(b"", 10, 8), ["eof"]);
        assert_eq!(lines(b"a\n", 10, 8), ["line a", "eof"]);
    }

    #[test]
    fn over_long_lines_are_skipped_not_held() {
        for cap in [1, 4, 64] {
            assert_eq!(
                lines(b"12345\n123456\nok\n1234567890\r\n12345\r\n", 5, cap),
                [
                    "line 12345",
                    "too long 6",
                    "line ok",
                    "too long 11",
                    "line 12345",
                    "eof"
                ],
                "buffer of {cap}"
            );
            assert_eq!(
                lines(b"ok\n123456789", 5, cap),
                ["line ok", "too long 9", "eof"],
                "buffer of {cap}"
            );
        }
    }

    #[test]
    fn stops_when_the_receiver_is_gone() {
        let mut n = 0;
        read_lines(&b"a\nb\nc\n"[..], 10, |_| {
            n += 1;
            false
        });
        assert_eq!(n, 1);
    }
}
