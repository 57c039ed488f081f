//! Egress through a corporate proxy (DESIGN §3): `https_proxy` / `http_proxy` /
//! `no_proxy` (lower-case first, then upper-case) read as curl does, CONNECT tunnels for
//! https, absolute-form requests for http. Invariant: a destination the rules send to a
//! proxy is only ever reached through it; an unreachable proxy is a connect failure of
//! the target, never a reason to go direct. Proxy credentials never print.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which destinations go through which proxy, fixed at start-up.
#[derive(Default)]
pub struct Egress {
    matcher: Option<Matcher>,
    problems: Vec<String>,
}

impl Egress {
    /// The rules from the process environment.
    pub fn from_env() -> Egress {
        Egress::from_lookup(|name| std::env::var(name).ok())
    }

    /// The rules from any variable lookup (tests pass a map instead of the environment).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Egress {
        let first = |lower: &str| {
            get(lower)
                .or_else(|| get(&lower.to_ascii_uppercase()))
                .unwrap_or_default()
        };
        let (https, http, no) = (first("https_proxy"), first("http_proxy"), first("no_proxy"));
        let problems: Vec<String> = [("https_proxy", &https), ("http_proxy", &http)]
            .into_iter()
            .filter_map(|(name, value)| unusable(name, value))
            .collect();
        if !problems.is_empty() {
            // Never a silent fallback to going direct: start-up refuses instead.
            return Egress {
                matcher: None,
                problems,
            };
        }
        // `*` alone means no proxy for anything; hyper-util's matcher would apply it to
        // host names only, not to IP addresses.
        let nothing = no.split(',').any(|entry| entry.trim() == "*");
        if nothing || (https.trim().is_empty() && http.trim().is_empty()) {
            return Egress::default();
        }
        let matcher = Matcher::builder().https(https).http(http).no(no).build();
        Egress {
            matcher: Some(matcher),
            problems: Vec::new(),
        }
    }

    /// Proxy variables that are set but unusable (start-up fails on them rather than
    /// going around the proxy they meant). The values are not echoed: they may hold
    /// credentials.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The proxy for a destination, if the rules send it through one.
    fn intercept(&self, dst: &Uri) -> Option<Intercept> {
        self.matcher.as_ref()?.intercept(dst)
    }

    /// The `Proxy-Authorization` an absolute-form (http) request carries, if its proxy
    /// URL has credentials. CONNECT tunnels carry theirs on the CONNECT request.
    pub fn forward_auth(&self, dst: &Uri) -> Option<HeaderValue> {
        let intercept = self.intercept(dst).filter(|_| is_http(dst))?;
        intercept.basic_auth().cloned()
    }
}

impl fmt::Debug for Egress {
    /// Only whether a proxy is configured: the matcher holds credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Egress")
            .field("proxied", &self.matcher.is_some())
            .finish()
    }
}

/// Why a proxy variable's value cannot be used, if it cannot: it must be an `http://`
/// URL (or a bare `host:port`) with a host.
fn unusable(name: &str, value: &str) -> Option<String> {
    if value.trim().is_empty() {
        return None;
    }
    let ok = value.trim().parse::<Uri>().ok().is_some_and(|uri| {
        let scheme_ok = matches!(uri.scheme_str(), None | Some("http"));
        scheme_ok && uri.host().is_some_and(|h| !h.is_empty())
    });
    (!ok).then(|| {
        format!(
            "{name} (or its upper-case form) is not an http://[user:password@]host:port proxy URL"
        )
    })
}

fn is_http(uri: &Uri) -> bool {
    uri.scheme_str() == Some("http")
}

/// A connector that reaches each destination directly or through its proxy.
#[derive(Clone)]
pub struct EgressConnector {
    http: HttpConnector,
    egress: Arc<Egress>,
    connect_timeout: Duration,
}

impl EgressConnector {
    /// Wraps a plain TCP connector; `connect_timeout` also bounds the CONNECT exchange,
    /// so a proxy that accepts and then stalls fails like a slow connect.
    pub fn new(http: HttpConnector, egress: Arc<Egress>, connect_timeout: Duration) -> Self {
        EgressConnector {
            http,
            egress,
            connect_timeout,
        }
    }
}

/// Why a proxied connection could not be set up.
#[derive(Debug, thiserror::Error)]
enum EgressError {
    #[error("egress proxy {proxy}: {source}")]
    Proxy {
        proxy: String,
        #[source]
        source: BoxError,
    },
}

impl tower_service::Service<Uri> for EgressConnector {
    type Response = EgressStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<EgressStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut http = self.http.clone();
        let timeout = self.connect_timeout;
        let Some(intercept) = self.egress.intercept(&dst) else {
            return Box::pin(async move {
                let io = tower_service::Service::call(&mut http, dst).await?;
                Ok(EgressStream::new(io, false))
            });
        };
        // Uri's Display never has user info: Intercept keeps credentials apart.
        let proxy = intercept.uri().clone();
        let name = proxy.to_string();
        let failed = move |source: BoxError| -> BoxError {
            EgressError::Proxy {
                proxy: name.clone(),
                source,
            }
            .into()
        };
        if is_http(&dst) {
            // Absolute-form: the connection is to the proxy, marked so hyper writes the
            // full URL in the request line.
            return Box::pin(async move {
                let io = tower_service::Service::call(&mut http, proxy)
                    .await
                    .map_err(|e| failed(e.into()))?;
                Ok(EgressStream::new(io, true))
            });
        }
        let mut tunnel = Tunnel::new(proxy, http);
        if let Some(auth) = intercept.basic_auth() {
            tunnel = tunnel.with_auth(auth.clone());
        }
        Box::pin(async move {
            let connecting = tower_service::Service::call(&mut tunnel, dst);
            match tokio::time::timeout(timeout, connecting).await {
                Ok(Ok(io)) => Ok(EgressStream::new(io, false)),
                Ok(Err(e)) => Err(failed(e.into())),
                Err(_) => Err(failed(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no CONNECT answer within the connect timeout",
                )))),
            }
        })
    }
}

/// A TCP stream to a destination or its proxy; says which to hyper's pool.
pub struct EgressStream {
    io: TokioIo<TcpStream>,
    to_http_proxy: bool,
}

impl EgressStream {
    fn new(io: TokioIo<TcpStream>, to_http_proxy: bool) -> Self {
        EgressStream { io, to_http_proxy }
    }
}

impl Connection for EgressStream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.to_http_proxy)
    }
}

impl Read for EgressStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for EgressStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn egress(vars: &[(&str, &str)]) -> Egress {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Egress::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    fn proxied(e: &Egress, url: &str) -> Option<String> {
        e.intercept(&url.parse().unwrap())
            .map(|i| i.uri().authority().unwrap().to_string())
    }

    #[test]
    fn lower_case_wins_and_loopback_is_proxied() {
        let e = egress(&[
            ("https_proxy", "http://lower:1"),
            ("HTTPS_PROXY", "http://upper:2"),
        ]);
        assert_eq!(
            proxied(&e, "https://127.0.0.1/").as_deref(),
            Some("lower:1")
        );
        assert_eq!(
            proxied(&e, "https://localhost/").as_deref(),
            Some("lower:1")
        );
        assert_eq!(proxied(&e, "http://api.example.com/"), None);
    }

    #[test]
    fn no_proxy_takes_hosts_suffixes_ips_cidrs_and_star() {
        let rules = "internal.corp, .example.com, 10.1.2.3, 192.168.0.0/16, localhost";
        let e = egress(&[("HTTPS_PROXY", "http://p:3128"), ("NO_PROXY", rules)]);
        for direct in [
            "https://internal.corp/",
            "https://a.internal.corp/",
            "https://api.example.com/",
            "https://10.1.2.3/",
            "https://192.168.4.5/",
            "https://localhost/",
        ] {
            assert_eq!(proxied(&e, direct), None, "{direct}");
        }
        for via in [
            "https://notinternal.corp/",
            "https://10.1.2.4/",
            "https://127.0.0.1/",
        ] {
            assert!(proxied(&e, via).is_some(), "{via}");
        }
        let all = egress(&[("https_proxy", "http://p:3128"), ("no_proxy", "*")]);
        assert_eq!(proxied(&all, "https://anything/"), None);
        assert_eq!(proxied(&all, "https://10.0.0.1/"), None);
    }

    #[test]
    fn unusable_proxy_urls_are_problems_not_a_way_around() {
        let e = egress(&[("https_proxy", "socks5://u:pw@p:1080")]);
        assert_eq!(e.problems().len(), 1);
        assert!(!e.problems()[0].contains("pw"));
        assert!(egress(&[("http_proxy", "http://")]).problems().len() == 1);
        assert!(egress(&[("http_proxy", "p:3128")]).problems().is_empty());
    }

    #[test]
    fn credentials_go_to_the_header_and_never_print() {
        let e = egress(&[("http_proxy", "http://user:s3cret@p:3128")]);
        let auth = e.forward_auth(&"http://api/".parse().unwrap()).unwrap();
        assert!(auth.is_sensitive());
        assert_eq!(auth, "Basic dXNlcjpzM2NyZXQ=");
        assert!(!format!("{e:?}").contains("s3cret"));
        assert_eq!(proxied(&e, "http://api/").as_deref(), Some("p:3128"));
        assert_eq!(e.forward_auth(&"https://api/".parse().unwrap()), None);
    }
}
