//! A client of the control socket (`--control`): text and `json` commands,
//! and the `events` stream, with a read timeout.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// A control-socket connection with a read timeout.
pub(crate) struct Control {
    pub(crate) w: UnixStream,
    pub(crate) r: BufReader<UnixStream>,
}

impl Control {
    pub(crate) fn connect(path: &Path) -> Control {
        let w = UnixStream::connect(path).expect("connect to the control socket");
        w.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Control { w, r }
    }

    pub(crate) fn send(&mut self, line: &str) {
        self.w.write_all(line.as_bytes()).unwrap();
        self.w.write_all(b"\n").unwrap();
    }

    /// The next line (without its newline); panics on EOF or timeout.
    pub(crate) fn line(&mut self) -> String {
        let mut l = String::new();
        let n = self
            .r
            .read_line(&mut l)
            .expect("a line from the control socket");
        assert!(n > 0, "the control socket closed");
        l.trim_end_matches('\n').to_owned()
    }

    /// A `json` command's one-line answer.
    pub(crate) fn json(&mut self, cmd: &str) -> String {
        self.send(&format!("json {cmd}"));
        self.line()
    }

    /// A text command's answer: the lines up to the empty one.
    pub(crate) fn text(&mut self, cmd: &str) -> Vec<String> {
        self.send(cmd);
        let mut lines = Vec::new();
        loop {
            let l = self.line();
            if l.is_empty() {
                return lines;
            }
            lines.push(l);
        }
    }
}
