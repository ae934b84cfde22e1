//! Reading what a client gets: the next text message, nothing more, and a
//! recovering client's envelopes stream by stream.

use std::time::Duration;

use crate::common::json::field;
use crate::common::{Client, Got, Srv};

/// The next message, which must be text (within 10 s).
pub fn next_text(c: &mut Client) -> String {
    match c.next_message(Duration::from_secs(10)) {
        Got::Text(t) => t,
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// A client whose envelopes are read per stream: streams a node answers
/// from its own ring come at once, those it asks Redis about when Redis
/// answers, so only the order within a stream is promised.
pub struct Inbox {
    pub c: Client,
    stash: std::collections::VecDeque<String>,
}

impl Inbox {
    pub fn connect(url: &str) -> Inbox {
        Inbox {
            c: Client::connect(url),
            stash: Default::default(),
        }
    }

    /// The next envelope of stream `ch` (others are kept for later).
    pub fn next_on(&mut self, ch: &str) -> String {
        if let Some(i) = self.stash.iter().position(|e| field(e, "ch") == Some(ch)) {
            return self.stash.remove(i).unwrap();
        }
        loop {
            let e = next_text(&mut self.c);
            if field(&e, "ch") == Some(ch) {
                return e;
            }
            self.stash.push_back(e);
        }
    }

    pub fn nothing_more(&mut self, quiet: Duration) -> Option<String> {
        self.stash
            .pop_front()
            .or_else(|| nothing_more(&mut self.c, quiet))
    }
}

/// The next text message, or `None` if nothing arrives for `quiet`.
pub fn nothing_more(c: &mut Client, quiet: Duration) -> Option<String> {
    match c.next(quiet) {
        Got::Timeout => None,
        Got::Text(t) => Some(t),
        other => panic!("unexpected {other:?}"),
    }
}

/// The position envelope of `stream` a client of `node` gets with `since`.
pub fn position_with(node: &Srv, stream: &str, since: &str) -> (String, Inbox) {
    let mut c = Inbox::connect(&node.url(&format!(
        "recover=1&channel={stream}&since={stream}:{since}"
    )));
    loop {
        let e = c.next_on(stream);
        if field(&e, "data").is_none() {
            return (e, c);
        }
    }
}
