//! HTTPS with a certificate generated in the test, plain HTTP refused, reload on request.

use std::path::Path;
use std::time::Duration;

use clawlet_http::{App, HttpError, ServerLimits, TlsReloader, TlsSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{clock, memory_bus, open_handler, runtime, start};

const PATIENCE: Duration = Duration::from_secs(20);

/// Writes a fresh self-signed certificate for `localhost`; returns its PEM for clients to trust.
fn write_cert(dir: &Path) -> (TlsSpec, String) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let spec = TlsSpec {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    let cert_pem = generated.cert.pem();
    std::fs::write(&spec.cert, &cert_pem).unwrap();
    std::fs::write(&spec.key, generated.signing_key.serialize_pem()).unwrap();
    (spec, cert_pem)
}

fn client(trusting: &str, addr: std::net::SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(trusting.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .build()
        .unwrap()
}

#[tokio::test]
async fn https_is_served_plain_http_is_refused_and_the_certificate_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, first_pem) = write_cert(dir.path());
    let reloader = TlsReloader::new(spec).unwrap();
    let app = App::new(
        runtime(vec![open_handler("tls")]),
        memory_bus(10).await,
        clock(),
    )
    .unwrap();
    let server = start(app, ServerLimits::default(), Some(reloader.acceptor())).await;
    let url = format!("https://localhost:{}/webhook/tls", server.addr.port());

    let first = client(&first_pem, server.addr);
    let response = first
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"event_type":"user.created"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains(r#""status":"accepted""#)
    );

    // Plain HTTP on the TLS port gets no HTTP answer: the handshake fails and the connection
    // closes.
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, plain.read_to_end(&mut seen))
        .await
        .expect("plain HTTP connection left open");
    assert!(
        !seen.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&seen)
    );

    // A new certificate on disk, then reload: new handshakes get it.
    let (_, second_pem) = write_cert(dir.path());
    reloader.reload().unwrap();
    let second = client(&second_pem, server.addr);
    let health = format!("https://localhost:{}/health", server.addr.port());
    assert_eq!(second.get(&health).send().await.unwrap().status(), 200);
    // A client that trusts only the old certificate cannot open a new connection.
    let stranger = client(&first_pem, server.addr);
    assert!(stranger.get(&health).send().await.is_err());

    // A broken file is refused and the served certificate stays.
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    assert!(matches!(reloader.reload(), Err(HttpError::Tls { .. })));
    let third = client(&second_pem, server.addr);
    assert_eq!(third.get(&health).send().await.unwrap().status(), 200);

    server.shutdown.cancel();
    server.task.await.unwrap().unwrap();
}

#[test]
fn missing_or_mismatched_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = TlsReloader::new(TlsSpec {
        cert: dir.path().join("nope.pem"),
        key: dir.path().join("nope.key"),
    })
    .unwrap_err();
    assert!(matches!(missing, HttpError::TlsFile { .. }));
    assert!(
        missing.to_string().contains("nope.pem: cannot read"),
        "{missing}"
    );

    // The key of one certificate with another certificate.
    let (spec, _) = write_cert(dir.path());
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let (other_spec, _) = write_cert(&other);
    let mismatched = TlsReloader::new(TlsSpec {
        cert: spec.cert,
        key: other_spec.key,
    })
    .unwrap_err();
    assert!(matches!(mismatched, HttpError::Tls { .. }), "{mismatched}");
}

async fn h2_health<I>(io: I, authority: &str) -> (http::StatusCode, http::Version)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(io),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(format!("{authority}/health"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    (response.status(), response.version())
}

#[tokio::test]
async fn http2_by_alpn_over_tls_and_by_prior_knowledge_in_plain() {
    use std::sync::Arc;

    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName};

    let dir = tempfile::tempdir().unwrap();
    let (spec, pem) = write_cert(dir.path());
    let reloader = TlsReloader::new(spec).unwrap();
    let app = App::new(
        runtime(vec![open_handler("h2")]),
        memory_bus(10).await,
        clock(),
    )
    .unwrap();
    let tls_server = start(
        app.clone(),
        ServerLimits::default(),
        Some(reloader.acceptor()),
    )
    .await;
    let plain_server = start(app, ServerLimits::default(), None).await;

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(tls_server.addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let authority = format!("https://localhost:{}", tls_server.addr.port());
    assert_eq!(
        h2_health(tls, &authority).await,
        (http::StatusCode::OK, http::Version::HTTP_2)
    );

    let tcp = TcpStream::connect(plain_server.addr).await.unwrap();
    let authority = format!("http://{}", plain_server.addr);
    assert_eq!(
        h2_health(tcp, &authority).await,
        (http::StatusCode::OK, http::Version::HTTP_2)
    );

    for server in [tls_server, plain_server] {
        server.shutdown.cancel();
        tokio::time::timeout(PATIENCE, server.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}
