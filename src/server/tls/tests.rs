//! The TLS driver against a rustls client over an in-memory socket.

use std::collections::VecDeque;
use std::rc::Rc;

use super::*;
use crate::server::outbound::Chunk;

/// A socket in memory: the client's bytes to read, and what the server
/// wrote, at most `budget` bytes until it is raised (then WouldBlock).
#[derive(Default)]
struct Pipe {
    inbound: VecDeque<u8>,
    outbound: Vec<u8>,
    budget: usize,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inbound.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.inbound.read(buf)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.budget == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.budget);
        self.outbound.extend_from_slice(&buf[..n]);
        self.budget -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Certs {
    dir: PathBuf,
    files: TlsFiles,
    ca: PathBuf,
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn certs(tag: &str) -> Certs {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let dir = std::env::temp_dir().join(format!("wsb-tls-unit-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, leaf.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    Certs {
        ca: dir.join("ca.pem"),
        dir,
        files,
    }
}

fn client(c: &Certs) -> rustls::ClientConnection {
    let config = crate::client_tls::client_config(Some(&c.ca)).unwrap();
    let name = crate::client_tls::server_name("localhost").unwrap();
    rustls::ClientConnection::new(config, name).unwrap()
}

/// Moves bytes both ways until the client's handshake is done.
fn handshake(server: &mut TlsSession, client: &mut rustls::ClientConnection, pipe: &mut Pipe) {
    let mut out = Outbound::default();
    let mut buf = [0u8; 1024];
    for _ in 0..20 {
        while client.wants_write() {
            let mut v = Vec::new();
            client.write_tls(&mut v).unwrap();
            pipe.inbound.extend(v);
        }
        match server.read(pipe, &mut buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => panic!("no plaintext expected during the handshake: {other:?}"),
        }
        pipe.budget = usize::MAX;
        assert!(server.write_from(pipe, &mut out).unwrap());
        let mut sent = &pipe.outbound[..];
        while !sent.is_empty() {
            client.read_tls(&mut sent).unwrap();
        }
        pipe.outbound.clear();
        client.process_new_packets().unwrap();
        if !client.is_handshaking() && !client.wants_write() {
            return;
        }
    }
    panic!("handshake did not finish");
}

/// Shared frames go out encrypted, in order, through a socket that takes
/// a few hundred bytes at a time: the queue and rustls' record buffer
/// both stop at WouldBlock and resume, and `write_from` says drained
/// only when both are empty.
#[test]
fn queued_frames_survive_partial_writes() {
    let c = certs("partial");
    let acceptor = Acceptor::new(c.files.clone()).unwrap();
    let mut server = acceptor.session().unwrap();
    let mut client = client(&c);
    let mut pipe = Pipe::default();
    handshake(&mut server, &mut client, &mut pipe);

    let frame = Rc::new(
        (0..100_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let mut out = Outbound::default();
    let mut want = Vec::new();
    for i in 0..3u8 {
        out.push(Chunk::Shared(Rc::clone(&frame)));
        out.push(Chunk::Owned(vec![i; 10]));
        want.extend_from_slice(&frame);
        want.extend_from_slice(&[i; 10]);
    }
    let mut got = Vec::new();
    let mut rounds = 0;
    loop {
        pipe.budget = 700;
        let drained = server.write_from(&mut pipe, &mut out).unwrap();
        let mut sent = &pipe.outbound[..];
        while !sent.is_empty() {
            client.read_tls(&mut sent).unwrap();
            client.process_new_packets().unwrap();
        }
        pipe.outbound.clear();
        let mut buf = [0u8; 65536];
        loop {
            match client.reader().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        rounds += 1;
        if drained {
            break;
        }
        assert!(server.wants_write() || !out.is_empty());
        assert!(rounds < 10_000, "no progress");
    }
    assert!(
        rounds > 100,
        "the socket really was the bottleneck ({rounds} rounds)"
    );
    assert!(out.is_empty() && !server.wants_write());
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the plaintext arrives intact and in order");
}

#[test]
fn plain_http_and_garbage_are_told_apart() {
    let c = certs("sniff");
    let acceptor = Acceptor::new(c.files.clone()).unwrap();
    let mut buf = [0u8; 256];

    let mut s = acceptor.session().unwrap();
    let mut pipe = Pipe::default();
    pipe.inbound.extend(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let e = s.read(&mut pipe, &mut buf).unwrap_err();
    assert!(is_plain_http(&e), "{e}");

    let mut s = acceptor.session().unwrap();
    let mut pipe = Pipe {
        budget: usize::MAX,
        ..Pipe::default()
    };
    pipe.inbound.extend([0u8, 1, 2, 3, 4, 5, 6, 7]);
    let e = s.read(&mut pipe, &mut buf).unwrap_err();
    assert!(!is_plain_http(&e));
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert_eq!(
        pipe.outbound.first(),
        Some(&21),
        "a TLS alert record was sent"
    );

    // Nothing yet, then the end of the stream.
    let mut s = acceptor.session().unwrap();
    let mut pipe = Pipe::default();
    assert_eq!(
        s.read(&mut pipe, &mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    let mut eof: &[u8] = &[];
    assert_eq!(s.read(&mut eof_socket(&mut eof), &mut buf).unwrap(), 0);
}

/// A socket at its end: reads return 0.
fn eof_socket<'a>(r: &'a mut &'a [u8]) -> impl Read + Write + 'a {
    struct Eof<'a>(&'a mut &'a [u8]);
    impl Read for Eof<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }
    impl Write for Eof<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    Eof(r)
}

#[test]
fn reload_keeps_the_old_config_on_failure() {
    let c = certs("reload");
    let mut acceptor = Acceptor::new(c.files.clone()).unwrap();
    let before = Arc::clone(&acceptor.config);
    std::fs::write(&c.files.key, "not a key").unwrap();
    let e = acceptor.reload().unwrap_err();
    assert!(matches!(e, TlsError::NoKey(_)), "{e}");
    assert!(
        Arc::ptr_eq(&before, &acceptor.config),
        "the old config stays"
    );
}
