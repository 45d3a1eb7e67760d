//! Logs (tracing-subscriber: text or JSON lines on stderr) and metrics
//! (a Prometheus recorder behind the `metrics` facade, rendered on
//! `/metrics`).

use std::io::IsTerminal;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};

/// The HTTP request counter (labels: method, route, status).
pub const HTTP_REQUESTS: &str = "http_requests_total";
/// The HTTP latency histogram, in seconds (labels as the counter).
pub const HTTP_DURATION: &str = "http_request_duration_seconds";

/// Sessions live now, of every tenant (a gauge read at scrape time).
pub const ACTIVE_SESSIONS: &str = "countersign_active_sessions";
/// Password hashes running now (at most the hashing slots).
pub const HASHING_RUNNING: &str = "countersign_hashing_running";
/// Callers waiting for a hashing slot: the hashing queue's depth.
pub const HASHING_QUEUED: &str = "countersign_hashing_queue_depth";

/// Latency buckets, in seconds: 1 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Start logging to stderr: the filter from the `log` setting
/// (`COUNTERSIGN_LOG`), else `RUST_LOG`, else `default`; text or JSON
/// lines. A second call (tests) changes nothing.
pub fn init_logs(settings: Option<&Settings>, default: &str) {
    let filter = settings
        .and_then(|s| s.log.clone())
        .or_else(|| {
            std::env::var("RUST_LOG")
                .ok()
                .filter(|v| !v.trim().is_empty())
        })
        .unwrap_or_else(|| default.to_owned());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let format = settings.map_or(LogFormat::Text, |s| s.log_format);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// How often the recorder's histograms are drained.
const UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Drain the recorder's histogram samples every 5 s, forever: the
/// recorder keeps every sample until then, so without this a server that
/// nobody scrapes would grow by every request it answers.
pub async fn upkeep(handle: PrometheusHandle) {
    let mut ticks = tokio::time::interval(UPKEEP);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        handle.run_upkeep();
    }
}

/// The process's Prometheus recorder, installed on first call. `None` if
/// another recorder was installed first.
pub fn metrics() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), BUCKETS)
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests answered");
            metrics::describe_histogram!(
                HTTP_DURATION,
                metrics::Unit::Seconds,
                "HTTP request latency"
            );
            metrics::describe_gauge!(ACTIVE_SESSIONS, "sessions live now, of every tenant");
            metrics::describe_gauge!(HASHING_RUNNING, "password hashes running now");
            metrics::describe_gauge!(HASHING_QUEUED, "password hashes waiting for a hashing slot");
            Some(handle)
        })
        .clone()
}
