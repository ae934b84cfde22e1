//! Test certificates made for the run (rcgen): a CA and leaf certificates
//! it signs for `localhost` and 127.0.0.1, written as PEM files into a
//! fresh directory that is removed on drop.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, PublicKeyData,
};

/// A test CA and the directory holding its files.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// The directory (removed on drop).
    pub dir: PathBuf,
    /// The CA certificate, PEM: what clients trust for the run.
    pub ca_pem: PathBuf,
}

/// A leaf certificate and key the CA signed.
pub struct Leaf {
    /// PEM certificate file.
    pub cert: PathBuf,
    /// PEM private key file.
    pub key: PathBuf,
    /// The certificate, DER (to recognise it in a handshake).
    pub der: Vec<u8>,
    /// base64(SHA-256(SubjectPublicKeyInfo)): Chromium's
    /// `--ignore-certificate-errors-spki-list` value.
    pub spki_sha256_b64: String,
}

impl TestCa {
    /// A fresh CA in a fresh directory under the temp dir.
    pub fn new(tag: &str) -> TestCa {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wsb-tls-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the certificate directory");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "wsbroadcaster test CA");
        let key = KeyPair::generate().expect("CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        let ca_pem = dir.join("ca.pem");
        std::fs::write(&ca_pem, issuer.pem()).expect("write ca.pem");
        TestCa {
            issuer,
            dir,
            ca_pem,
        }
    }

    /// A leaf for `localhost` and 127.0.0.1 with common name `cn`, written
    /// as `<name>.pem` and `<name>.key`.
    pub fn leaf(&self, name: &str, cn: &str) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign the leaf");
        let cert_path = self.dir.join(format!("{name}.pem"));
        let key_path = self.dir.join(format!("{name}.key"));
        std::fs::write(&cert_path, cert.pem()).expect("write the certificate");
        std::fs::write(&key_path, key.serialize_pem()).expect("write the key");
        Leaf {
            cert: cert_path,
            key: key_path,
            der: cert.der().to_vec(),
            spki_sha256_b64: spki_hash(&key.subject_public_key_info()),
        }
    }

    /// A client configuration that trusts this CA.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        wsbroadcaster::client_tls::client_config(Some(&self.ca_pem)).expect("client config")
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spki_hash(spki: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(spki))
}

/// Replaces `to` with `from` in one rename, as a certificate renewal does.
pub fn install(from: &Path, to: &Path) {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).expect("copy");
    std::fs::rename(&tmp, to).expect("rename");
}
