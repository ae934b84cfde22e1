//! `client URL`: an interactive client, stdin lines out, messages in.

use std::io::{BufRead, Write};
use std::time::Duration;

use crate::client::{BlockingClient, ClientError};
use crate::protocol::{CloseCode, Event, Limits, MessageKind};

pub(super) fn client(url: &str, tls_ca: Option<&std::path::Path>) -> Result<(), String> {
    let tls = if url.starts_with("wss://") {
        Some(crate::client_tls::client_config(tls_ca)?)
    } else {
        None
    };
    let mut c = BlockingClient::connect_tls(url, Limits::default(), false, tls)
        .map_err(|e| format!("{url}: {e}"))?;
    c.stream()
        .set_read_timeout(Some(Duration::from_millis(20)))
        .map_err(|e| e.to_string())?;
    let (tx, rx) = std::sync::mpsc::channel::<Option<String>>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) => {
                    if tx.send(Some(l)).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = tx.send(None);
    });
    let mut stdout = std::io::stdout();
    let mut closing = false;
    loop {
        while let Ok(line) = rx.try_recv() {
            match line {
                Some(l) => c
                    .send(MessageKind::Text, l.as_bytes())
                    .map_err(|e| e.to_string())?,
                None if !closing => {
                    closing = true;
                    c.close(CloseCode::NORMAL, "").map_err(|e| e.to_string())?;
                }
                None => {}
            }
        }
        match c.next_event() {
            Ok(Some(Event::Message { data, .. })) => {
                stdout
                    .write_all(&data)
                    .and_then(|_| stdout.write_all(b"\n"))
                    .map_err(|e| e.to_string())?;
                stdout.flush().map_err(|e| e.to_string())?;
            }
            Ok(Some(Event::Closed { code, reason })) => {
                eprintln!("closed: {} {reason}", code.map_or(1005, |c| c.0));
            }
            Ok(Some(Event::Failed(e))) => return Err(format!("protocol error from server: {e}")),
            Ok(Some(_)) => {}
            Ok(None) => return Ok(()),
            Err(ClientError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}
