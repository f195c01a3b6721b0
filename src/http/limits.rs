//! Who is calling (the client address: the socket's, or from `X-Forwarded-For` when the socket
//! is a trusted proxy) and per-address rate limits. Limits live in this node's memory (the
//! per-account budgets that must hold across nodes are in the database: login lockout, code
//! attempts, mail and SMS sends).

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{WireError, problem};
use crate::domain::{CLIENT_IP, Error};

/// The client address of a request, as resolved by [`guard`].
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// Rate-limit and proxy settings.
#[derive(Debug, Clone, Default)]
pub struct LimitSettings {
    /// Per minute and address on sensitive CosyncJWT routes; 0 = off.
    pub sensitive_per_min: u32,
    /// Per minute and address on other public routes; 0 = off.
    pub public_per_min: u32,
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// The limiters of one node.
pub struct Limits {
    sensitive: Option<DefaultKeyedRateLimiter<IpAddr>>,
    public: Option<DefaultKeyedRateLimiter<IpAddr>>,
    trusted: Vec<ipnet::IpNet>,
    checks: AtomicU64,
}

/// CosyncJWT routes anyone may call, or that send mail or SMS.
const SENSITIVE: &[&str] = &[
    "/api/appuser/login",
    "/api/appuser/loginAnonymous",
    "/api/appuser/signup",
    "/api/appuser/completeSignup",
    "/api/appuser/register",
    "/api/appuser/forgotPassword",
    "/api/appuser/resetPassword",
    "/api/appuser/loginComplete",
    "/api/appuser/invite",
    "/api/appuser/setPhone",
    "/api/appuser/verifyPhone",
    "/api/appuser/setTwoFactorGoogleVerification",
    "/api/appuser/setTwoFactorPhoneVerification",
];

fn limiter(per_min: u32) -> Option<DefaultKeyedRateLimiter<IpAddr>> {
    // A burst of a sixth of the minute's allowance: a page that fires a few calls at once
    // passes, a script that fires hundreds does not.
    let rate = NonZeroU32::new(per_min)?;
    let burst = NonZeroU32::new((per_min / 6).max(1)).unwrap_or(NonZeroU32::MIN);
    Some(DefaultKeyedRateLimiter::keyed(
        Quota::per_minute(rate).allow_burst(burst),
    ))
}

impl Limits {
    pub fn new(s: &LimitSettings) -> Self {
        Self {
            sensitive: limiter(s.sensitive_per_min),
            public: limiter(s.public_per_min),
            trusted: s.trusted_proxies.clone(),
            checks: AtomicU64::new(0),
        }
    }

    /// The client: the socket peer, unless it is a trusted proxy, in which case the nearest
    /// address in `X-Forwarded-For` that is not itself a trusted proxy.
    fn client(&self, req: &Request) -> Option<IpAddr> {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>()?.0.ip();
        let trusted = |ip: &IpAddr| self.trusted.iter().any(|n| n.contains(ip));
        if !trusted(&peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        Some(
            forwarded
                .into_iter()
                .rev()
                .find(|ip| !trusted(ip))
                .unwrap_or(peer),
        )
    }

    /// Seconds to wait if `ip` is over its limit for `path`.
    fn over_limit(&self, path: &str, ip: IpAddr) -> Option<u64> {
        let limiter = if SENSITIVE.contains(&path) {
            self.sensitive.as_ref()
        } else if path.starts_with("/admin/") {
            None
        } else {
            self.public.as_ref()
        }?;
        // Forget idle addresses now and then, so the map does not grow without bound.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            for l in [&self.sensitive, &self.public].into_iter().flatten() {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
        limiter.check_key(&ip).err().map(|not_until| {
            not_until
                .wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ))
                .as_secs()
                .max(1)
        })
    }
}

/// Resolves the client address, applies the limits, and serves the request with the address
/// known to the audit log.
pub async fn guard(State(limits): State<Arc<Limits>>, mut req: Request, next: Next) -> Response {
    let ip = limits.client(&req);
    if let Some(ip) = ip {
        req.extensions_mut().insert(ClientIp(ip));
        // Paths are normalised before routing; a doubled slash still counts as the route.
        let path = req.uri().path().to_owned();
        if let Some(wait) = limits.over_limit(&path, ip) {
            tracing::warn!(path, "rate limit reached; refusing");
            let mut res = if path.starts_with("/api/appuser/") {
                // The protocol has no "slow down": the route's usual refusal (spec §11).
                let e = if path.ends_with("/login") || path.ends_with("/loginComplete") {
                    Error::InvalidCredentials
                } else {
                    Error::InvalidData
                };
                WireError(e).into_response()
            } else {
                problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many requests; try again later",
                )
            };
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return res;
        }
    }
    CLIENT_IP.scope(ip, next.run(req)).await
}
