//! Prometheus metrics: requests and latency per route and outcome, logins by outcome, codes
//! sent, lockouts, and (sampled at each scrape) the hashing queue and database pool. One
//! registry per service, so parallel test servers never share counters.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    channel: String,
    message: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: String,
}

/// The service's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    logins: Family<OutcomeLabels, Counter>,
    codes: Family<CodeLabels, Counter>,
    lockouts: Counter,
    hash_queue: Gauge,
    pool: Family<PoolLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tessera");
        let requests = Family::<RouteLabels, Counter>::default();
        // 1 ms to about 16 s: from a JWKS read to a login queued behind the hashing pool.
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.001, 2.0, 15))) as fn() -> Histogram,
        );
        let logins = Family::<OutcomeLabels, Counter>::default();
        let codes = Family::<CodeLabels, Counter>::default();
        let lockouts = Counter::default();
        let hash_queue = Gauge::default();
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register("logins", "Password logins by outcome", logins.clone());
        registry.register("codes_sent", "Codes sent by mail or SMS", codes.clone());
        registry.register(
            "lockouts",
            "Logins refused by an account lockout",
            lockouts.clone(),
        );
        registry.register(
            "hash_queue_depth",
            "Password hashes running or waiting",
            hash_queue.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections by state",
            pool.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            logins,
            codes,
            lockouts,
            hash_queue,
            pool,
        }
    }

    /// One answered request; `route` is the route template, never the concrete path.
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// `success`, `second_factor`, `failure` or `locked`.
    pub fn login(&self, outcome: &str) {
        self.logins
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// A message with a code went out (`mail` or `sms`; the template name).
    pub fn code_sent(&self, channel: &str, message: &str) {
        self.codes
            .get_or_create(&CodeLabels {
                channel: channel.to_owned(),
                message: message.to_owned(),
            })
            .inc();
    }

    pub fn lockout(&self) {
        self.lockouts.inc();
    }

    /// The text exposition, with the sampled gauges set first.
    pub fn render(&self, hash_queue: usize, pool_size: u32, pool_idle: usize) -> String {
        self.hash_queue
            .set(i64::try_from(hash_queue).unwrap_or(i64::MAX));
        let idle = i64::try_from(pool_idle).unwrap_or(i64::MAX);
        let size = i64::from(pool_size);
        for (state, n) in [("idle", idle), ("in_use", (size - idle).max(0))] {
            self.pool
                .get_or_create(&PoolLabels {
                    state: state.to_owned(),
                })
                .set(n);
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
