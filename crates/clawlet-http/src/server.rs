//! The accept loop: our own, so that timeouts, TLS and the connection limit are ours to set.
//!
//! Each connection is served by hyper-util's auto builder (HTTP/1.1, and HTTP/2 by prior
//! knowledge or ALPN) with the axum router as the service.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::budget::BodyBudget;
use crate::error::ApiError;
use crate::tls::TlsAcceptorHandle;

/// hyper refuses an HTTP/1 read buffer smaller than this.
const MIN_HTTP1_BUFFER: usize = 8192;

/// Limits that protect the server from slow or hostile clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// How long a client may take to send a request's headers (and, before its first request,
    /// to finish the TLS handshake); also the idle limit between keep-alive requests.
    pub header_read_timeout: Duration,
    /// How long one request may take from its headers to the end of the response, body
    /// upload included; past it the client gets 408.
    pub request_timeout: Duration,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// The largest request head (request line and headers) accepted, in bytes; at least 8 KiB is
    /// used for HTTP/1 whatever is asked.
    pub max_header_bytes: usize,
    /// Bytes of request bodies held at once across all connections, counted as they arrive; a
    /// request whose declared length does not fit in what is free is answered 503 with
    /// `Retry-After` before its body is read, and one whose next frame does not fit is answered
    /// the same way without reading further.
    pub max_inflight_body_bytes: u64,
}

impl Default for ServerLimits {
    /// 10 s to send headers, 60 s per request (a 25 MiB body on a slow link), 1024 connections,
    /// 64 KiB of headers, 256 MiB of bodies in flight (ten bodies of 25 MiB).
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_header_bytes: 64 * 1024,
            max_inflight_body_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting, lets
/// in-flight requests finish and returns once every connection is closed.
///
/// With `tls`, every connection must complete a TLS handshake (HTTP/1.1 or HTTP/2 by ALPN);
/// a plain HTTP request on that port gets no HTTP answer.
///
/// # Errors
/// Only a failure to read the listener's own address; errors on single connections are logged
/// and end that connection only.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptorHandle>,
    router: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let builder = Arc::new(builder(&limits));
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let budget = BodyBudget::new(limits.max_inflight_body_bytes);
    let tracker = TaskTracker::new();
    tracing::debug!(%local, tls = tls.is_some(), "accepting connections");
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    accept_error(&err).await;
                    continue;
                }
            },
        };
        // Small request/response exchanges; Nagle only adds latency here.
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            builder: builder.clone(),
            router: router.clone(),
            budget: budget.clone(),
            limits,
            shutdown: shutdown.clone(),
            peer,
        };
        let tls = tls.clone();
        tracker.spawn(async move {
            conn.run(stream, tls).await;
            drop(permit);
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
    tracing::debug!(%local, "all connections closed");
    Ok(())
}

fn builder(limits: &ServerLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HTTP1_BUFFER));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout);
    builder
}

/// Running out of file descriptors makes `accept` fail at once, again and again; pausing keeps
/// the loop from spinning while connections close and free some.
async fn accept_error(err: &std::io::Error) {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted => {
            tracing::debug!(error = %err, "connection failed before accept");
        }
        _ => {
            tracing::warn!(error = %err, "accept failed; pausing 100 ms");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

struct Conn {
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    budget: BodyBudget,
    limits: ServerLimits,
    shutdown: CancellationToken,
    peer: SocketAddr,
}

impl Conn {
    async fn run(self, stream: TcpStream, tls: Option<TlsAcceptorHandle>) {
        match tls {
            None => self.serve_io(stream).await,
            Some(TlsAcceptorHandle(acceptor)) => {
                let handshake =
                    tokio::time::timeout(self.limits.header_read_timeout, acceptor.accept(stream));
                let stream = tokio::select! {
                    () = self.shutdown.cancelled() => return,
                    done = handshake => match done {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(err)) => {
                            tracing::debug!(peer = %self.peer, error = %err, "TLS handshake failed");
                            return;
                        }
                        Err(_elapsed) => {
                            tracing::debug!(peer = %self.peer, "TLS handshake timed out");
                            return;
                        }
                    },
                };
                self.serve_io(stream).await;
            }
        }
    }

    async fn serve_io<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // hyper's own header timeout covers each HTTP/1 request head, but not the bytes before
        // the protocol is known, nor an HTTP/2 preface; until the first request arrives, this
        // watchdog does.
        let first_request = CancellationToken::new();
        let service = {
            let first_request = first_request.clone();
            let router = self.router.clone();
            let budget = self.budget.clone();
            let peer = self.peer;
            let request_timeout = self.limits.request_timeout;
            hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
                first_request.cancel();
                request.extensions_mut().insert(ConnectInfo(peer));
                request.extensions_mut().insert(budget.clone());
                let router = router.clone();
                async move { Ok::<_, Infallible>(call(router, request, request_timeout, peer).await) }
            })
        };
        let conn = self.builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let watchdog = tokio::time::sleep(self.limits.header_read_timeout);
        tokio::pin!(watchdog);
        let mut waiting_for_first = true;
        let mut draining = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(peer = %self.peer, error = %err, "connection ended with an error");
                    }
                    return;
                }
                () = first_request.cancelled(), if waiting_for_first => waiting_for_first = false,
                () = &mut watchdog, if waiting_for_first => {
                    tracing::debug!(peer = %self.peer, "no request before the header timeout; closing");
                    return;
                }
                () = self.shutdown.cancelled(), if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

async fn call(
    router: Router,
    request: http::Request<Incoming>,
    timeout: Duration,
    peer: SocketAddr,
) -> Response {
    match tokio::time::timeout(timeout, router.oneshot(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_elapsed) => {
            tracing::warn!(%peer, ?timeout, "request timed out");
            ApiError::RequestTimeout.into_response()
        }
    }
}
