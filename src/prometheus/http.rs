//! The agent's `/metrics` endpoint: HTTP/1.1 on the configured address,
//! answering GET (and HEAD) from the [`Registry`] alone.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};
use tracing::{debug, info, warn};

use super::exposition::Format;
use super::registry::Registry;

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("prometheus listen address {addr}: {source}")]
pub struct ListenError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// Connections held open at once. Past it, a new connection displaces the
/// one that has waited longest for a request, so idle sockets (a flood of
/// them, or clients that keep theirs alive) can never queue a real scrape
/// behind them; only when every connection is being answered is the new
/// one closed instead.
const MAX_CONNECTIONS: usize = 64;
/// A request's headers must arrive within this. hyper starts the timer
/// whenever a connection begins waiting for a request, the first or the
/// next one on a kept-alive connection, so this is the idle timeout too:
/// Prometheus scrapes every 15s or more and reconnects as cheaply.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection, keep-alive included, lives longer than this.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Binds `addr` now (so a taken port is an error at start, not later) and
/// returns the task that serves it until aborted. Its connections belong to
/// that task: aborting it closes them too, so an endpoint moved or removed
/// by a reload serves no one any more.
pub async fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ListenError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ListenError { addr, source })?;
    info!(listen = %bound, "serving Prometheus metrics at /metrics");
    let task = tokio::spawn(async move {
        let epoch = Instant::now();
        let mut connections = JoinSet::new();
        let mut open: Vec<Open> = Vec::with_capacity(MAX_CONNECTIONS);
        loop {
            // Accepting comes first, whatever is open: a full table is made
            // room in, never waited on.
            let (stream, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // Out of descriptors and the like: pause, do not spin.
                    debug!(error = %e, "accepting a scrape failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            while connections.try_join_next().is_some() {}
            open.retain(|c| !c.handle.is_finished());
            if open.len() >= MAX_CONNECTIONS {
                match longest_idle(&open) {
                    Some(i) => {
                        debug!(peer = %peer, "too many scrape connections: closing the longest idle");
                        open.swap_remove(i).handle.abort();
                    }
                    None => {
                        debug!(peer = %peer, "every scrape connection is busy: closing the new one");
                        drop(stream);
                        continue;
                    }
                }
            }
            let activity = Arc::new(Activity::new(epoch));
            let watched = Watched {
                stream,
                activity: activity.clone(),
            };
            let registry = registry.clone();
            let handle = connections.spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let registry = registry.clone();
                    async move { Ok::<_, Infallible>(answer(&req, &registry)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(watched), service);
                match tokio::time::timeout(CONNECTION_LIFETIME, conn).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => debug!(peer = %peer, error = %e, "scrape connection ended"),
                    Err(_) => warn!(peer = %peer, "scrape connection closed after 60s"),
                }
            });
            open.push(Open { activity, handle });
        }
    });
    Ok((bound, task))
}

/// One connection as the accept loop sees it.
struct Open {
    activity: Arc<Activity>,
    handle: AbortHandle,
}

/// The open connection that has waited longest for a request with nothing
/// left to send, if any.
fn longest_idle(open: &[Open]) -> Option<usize> {
    open.iter()
        .enumerate()
        .filter_map(|(i, c)| c.activity.idle_since().map(|t| (i, t)))
        .min_by_key(|&(_, t)| t)
        .map(|(i, _)| i)
}

/// Whether a connection waits for a request, told from its socket: hyper
/// reads only when it wants a request (or its body), and writes its answer
/// out before it reads again.
struct Activity {
    epoch: Instant,
    /// Milliseconds after `epoch` (plus one) since when it has been idle;
    /// 0 while a request is read or answered.
    idle_since: AtomicU64,
    /// Written to and not flushed yet: an answer is on its way out.
    writing: AtomicBool,
}

impl Activity {
    /// A connection just accepted waits for its first request.
    fn new(epoch: Instant) -> Activity {
        let activity = Activity {
            epoch,
            idle_since: AtomicU64::new(0),
            writing: AtomicBool::new(false),
        };
        activity.waiting();
        activity
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn idle_since(&self) -> Option<u64> {
        match self.idle_since.load(Ordering::Relaxed) {
            0 => None,
            t => Some(t),
        }
    }

    /// Nothing more to read: idle, unless an answer is still going out.
    /// The first such moment counts, so a long wait is not renewed by
    /// being polled again.
    fn waiting(&self) {
        if !self.writing.load(Ordering::Relaxed) {
            let _ = self.idle_since.compare_exchange(
                0,
                self.now(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    fn busy(&self) {
        self.idle_since.store(0, Ordering::Relaxed);
    }
}

/// A scrape's socket, telling its [`Activity`] what hyper does with it.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        match &polled {
            Poll::Pending => this.activity.waiting(),
            Poll::Ready(Ok(())) if buf.filled().len() > before => this.activity.busy(),
            Poll::Ready(_) => {}
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.activity.writing.store(true, Ordering::Relaxed);
        this.activity.busy();
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.activity.writing.store(true, Ordering::Relaxed);
        this.activity.busy();
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let flushed = Pin::new(&mut this.stream).poll_flush(cx);
        // hyper flushes the socket once its own buffer is written out.
        if let Poll::Ready(Ok(())) = flushed {
            this.activity.writing.store(false, Ordering::Relaxed);
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn answer(req: &Request<Incoming>, registry: &Registry) -> Response<Full<Bytes>> {
    match req.uri().path() {
        "/metrics" => {}
        "/" => return plain(StatusCode::OK, "zkparity agent: metrics at /metrics\n"),
        _ => {
            return plain(
                StatusCode::NOT_FOUND,
                "not found; metrics are at /metrics\n",
            )
        }
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        r.headers_mut()
            .insert(ALLOW, hyper::header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let body = registry.render(format);
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(format.content_type()),
    );
    r
}
