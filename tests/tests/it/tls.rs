//! TLS end to end: the service over HTTPS with rustls, partners' client
//! certificates optional or required, and the partner HTTP client trusting a
//! private CA and presenting its own certificate. Certificates are made here
//! (rcgen): a CA, the server's for 127.0.0.1, a court's signed by the CA, and
//! a stranger's signed by another CA.

use std::path::{Path, PathBuf};

use chrono::TimeDelta;
use connectors::fetch::{ClientTls, build_client};
use domain::PartnerKind;
use gateway::court::signature::sign;
use gateway::tls::{TlsFiles, server_config};
use gateway::{AppState, Application};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use store::testing::TestDatabase;

use crate::support::{Order, start_time};

struct Pki {
    dir: PathBuf,
    ca_pem: String,
    court_identity: String,
    stranger_identity: String,
}

fn issuer(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

fn leaf(names: &[&str], cn: &str, ca: &CertifiedIssuer<'static, KeyPair>) -> (String, String) {
    let mut params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, ca).expect("sign");
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("wangban_test_tls_{name}_{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ca = issuer("衡阳市不动产登记中心 测试 CA");
        let (server_cert, server_key) = leaf(&["127.0.0.1", "localhost"], "wangban", &ca);
        std::fs::write(dir.join("server.pem"), server_cert).expect("write");
        std::fs::write(dir.join("server.key"), server_key).expect("write");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write");
        let (court_cert, court_key) = leaf(&[], "court-0405", &ca);
        let (stranger_cert, stranger_key) = leaf(&[], "court-0405", &issuer("someone else's CA"));
        Self {
            dir,
            ca_pem: ca.pem(),
            court_identity: court_cert + &court_key,
            stranger_identity: stranger_cert + &stranger_key,
        }
    }

    fn files(&self, client_ca: bool, require: bool) -> TlsFiles {
        TlsFiles {
            cert_file: self.dir.join("server.pem"),
            key_file: self.dir.join("server.key"),
            client_ca_file: client_ca.then(|| self.dir.join("ca.pem")),
            require_client_cert: require,
        }
    }

    fn client(&self, identity: Option<&str>) -> reqwest::Client {
        build_client(&ClientTls {
            ca_pem: Some(self.ca_pem.clone().into_bytes()),
            identity_pem: identity.map(|i| i.as_bytes().to_vec()),
        })
        .expect("client")
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn serve(db: &TestDatabase, files: &TlsFiles) -> (String, tokio::sync::oneshot::Sender<()>) {
    let config = server_config(files).expect("TLS config");
    let app = Application::build("127.0.0.1:0".parse().expect("addr"), AppState::new(db.store.clone()))
        .await
        .expect("bind")
        .with_tls(config);
    assert_eq!(app.scheme(), "https");
    let addr = app.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    (format!("https://{addr}"), stop)
}

async fn healthz(client: &reqwest::Client, base: &str) -> Result<u16, reqwest::Error> {
    Ok(client.get(format!("{base}/healthz")).send().await?.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_required_client_certificates() {
    let pki = Pki::new("required");
    let db = TestDatabase::sqlite().await.expect("sqlite");
    let secret = "s3cret-for-tests-0123456789abcdef";
    db.store
        .create_partner("court-0405", PartnerKind::Court, "珠晖区人民法院", secret, start_time() - TimeDelta::days(1))
        .await
        .expect("partner");
    let (base, stop) = serve(&db, &pki.files(true, true)).await;

    // The court with its certificate pushes an order over mutual TLS.
    let court = pki.client(Some(&pki.court_identity));
    assert_eq!(healthz(&court, &base).await.expect("healthz"), 200);
    let body = Order { order_no: "TLS-1", ..Order::default() }.document();
    let now = chrono::Utc::now().timestamp();
    let answer = court
        .post(format!("{base}/api/court/v1/orders"))
        .header("content-type", "application/xml")
        .header("x-partner-id", "court-0405")
        .header("x-signature", sign(secret, now, body.as_bytes(), false))
        .body(body)
        .send()
        .await
        .expect("push over mTLS");
    let status = answer.status().as_u16();
    let text = answer.text().await.expect("receipt");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("TLS-1"), "a receipt for the order: {text}");

    // No certificate, or one from another CA: no connection at all.
    assert!(healthz(&pki.client(None), &base).await.is_err(), "a client without a certificate is refused");
    assert!(healthz(&pki.client(Some(&pki.stranger_identity)), &base).await.is_err(), "a foreign CA is refused");
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new().get(base.replace("https://", "http://") + "/healthz").send().await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status().as_u16() != 200));
    // A client that does not trust the private CA refuses the server.
    let untrusting = build_client(&ClientTls::default()).expect("client");
    assert!(healthz(&untrusting, &base).await.is_err(), "the server's certificate is not publicly trusted");
    let _ = stop.send(());
    db.drop_database().await.expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_optional_client_certificates_and_bad_files() {
    let pki = Pki::new("optional");
    let db = TestDatabase::sqlite().await.expect("sqlite");
    let (base, stop) = serve(&db, &pki.files(true, false)).await;
    assert_eq!(healthz(&pki.client(None), &base).await.expect("no certificate is fine"), 200);
    assert_eq!(healthz(&pki.client(Some(&pki.court_identity)), &base).await.expect("a good one too"), 200);
    assert!(
        healthz(&pki.client(Some(&pki.stranger_identity)), &base).await.is_err(),
        "a presented certificate must verify"
    );
    let _ = stop.send(());

    // Bad settings are errors that name the file, not panics.
    let missing = TlsFiles { cert_file: Path::new("/nonexistent/cert.pem").into(), ..pki.files(false, false) };
    let err = server_config(&missing).expect_err("missing file");
    assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    let swapped = TlsFiles { key_file: pki.dir.join("ca.pem"), ..pki.files(false, false) };
    assert!(server_config(&swapped).is_err(), "a certificate is not a key");
    let no_ca = pki.files(false, true);
    assert!(server_config(&no_ca).expect_err("needs a CA").to_string().contains("client_ca_file"));
    assert!(build_client(&ClientTls { ca_pem: Some(b"not pem".to_vec()), identity_pem: None }).is_err());
    db.drop_database().await.expect("drop");
}
