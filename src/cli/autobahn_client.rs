//! `autobahn-client`: the Autobahn testsuite's client cases, echoed back
//! to its fuzzingserver.

use crate::client::BlockingClient;
use crate::protocol::{Event, Limits};

pub(super) fn autobahn_client(url: Option<String>, agent: Option<String>) -> Result<(), String> {
    let url = url
        .or_else(|| std::env::var("AUTOBAHN_URL").ok())
        .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = agent
        .or_else(|| std::env::var("AUTOBAHN_AGENT").ok())
        .unwrap_or_else(|| "wsbroadcaster".into());
    let limits = Limits {
        max_frame: 64 << 20,
        max_message: 64 << 20,
        max_fragments: 1 << 20,
    };
    let count = {
        let mut c = BlockingClient::connect(&format!("{url}/getCaseCount"), limits)
            .map_err(|e| e.to_string())?;
        let mut n = None;
        while let Some(ev) = c.next_event().map_err(|e| e.to_string())? {
            if let Event::Message { data, .. } = ev {
                n = String::from_utf8_lossy(&data).trim().parse::<u32>().ok();
            }
        }
        n.ok_or("the fuzzingserver sent no case count")?
    };
    eprintln!("autobahn-client: {count} cases against {url} as {agent}");
    for case in 1..=count {
        let case_url = format!("{url}/runCase?case={case}&agent={agent}");
        match BlockingClient::connect_with(&case_url, limits, true) {
            Ok(mut c) => {
                while let Ok(Some(ev)) = c.next_event() {
                    if let Event::Message { kind, data } = ev {
                        let _ = c.send(kind, &data);
                    }
                }
            }
            Err(e) => eprintln!("case {case}: {e}"),
        }
        if case % 50 == 0 {
            eprintln!("autobahn-client: {case}/{count}");
        }
    }
    let mut c = BlockingClient::connect(&format!("{url}/updateReports?agent={agent}"), limits)
        .map_err(|e| e.to_string())?;
    while let Ok(Some(_)) = c.next_event() {}
    Ok(())
}
