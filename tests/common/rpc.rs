//! MessagePack-RPC calls to a [`Srv`] started with `--rpc 127.0.0.1:0`, on
//! a fresh TCP connection each, with a bounded read.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use rmpv::Value;

use super::Srv;

/// One MessagePack-RPC call; the result (panics on an error response).
pub fn rpc(n: &Srv, method: &str, params: Vec<Value>) -> Value {
    let addr = n.rpc.expect("started with --rpc");
    let mut s = TcpStream::connect(addr).expect("connect to the RPC port");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = Value::Array(vec![
        0.into(),
        1.into(),
        method.into(),
        Value::Array(params),
    ]);
    let mut buf = Vec::new();
    rmpv::encode::write_value(&mut buf, &req).unwrap();
    s.write_all(&buf).expect("send the RPC request");
    let resp = rmpv::decode::read_value(&mut s).expect("read the RPC response");
    let Value::Array(items) = resp else {
        panic!("not a response: {resp}");
    };
    assert_eq!(items[2], Value::Nil, "RPC {method} failed: {}", items[2]);
    items[3].clone()
}

/// The value of key `name` in a MessagePack map; panics when it is missing.
pub fn field(map: &Value, name: &str) -> Value {
    let Value::Map(entries) = map else {
        panic!("not a map: {map}");
    };
    entries
        .iter()
        .find(|(k, _)| k.as_str() == Some(name))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {name} in {map}"))
}

/// One counter from the node's `stats()`.
pub fn stat(n: &Srv, name: &str) -> u64 {
    field(&rpc(n, "stats", vec![]), name)
        .as_u64()
        .unwrap_or_else(|| panic!("{name} is not a number"))
}
