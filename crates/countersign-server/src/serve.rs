//! `countersign serve`: bootstrap, the cleanup job, and the HTTP server
//! with a graceful shutdown.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use countersign_axum::ApiStore;
use countersign_core::{Env, SessionService};
use tokio::sync::watch;

use crate::config::Settings;
use crate::error::{Context, Failure, fail};
use crate::{bootstrap, http, keys, services, telemetry};

/// The rate-limit key that elects the node running a cleanup.
pub const CLEANUP_KEY: &str = "countersign:cleanup";

/// Serve the API over `store` until SIGINT or SIGTERM.
pub async fn run<S: ApiStore>(store: S, settings: Settings) -> Result<(), Failure> {
    let env = Env::system();
    let keys = keys::resolve(&settings, &env)?;
    let services = services::build(store.clone(), &settings, &keys, &env)?;
    // Bound before the bootstrap, so the credentials file names the
    // address actually listened on (a port of 0 picks one).
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .context(&format!("listening on {}", settings.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    bootstrap::run(&services, &settings, addr, &env).await?;
    let sessions = services.sessions.clone();
    let mail = services.mail.clone();
    let api = services::api(services, &settings);
    let metrics = telemetry::metrics();
    if let Some(handle) = metrics.clone() {
        tokio::spawn(telemetry::upkeep(handle));
    }
    let app = http::router(api, &settings, metrics);
    announce(addr)?;
    tracing::info!(%addr, issuer = %settings.issuer, "listening");

    let (stop_tx, stop_rx) = watch::channel(false);
    let cleanup = tokio::spawn(cleanup_loop(
        store,
        sessions,
        settings.cleanup_interval,
        stop_rx.clone(),
    ));
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop_tx.send(true);
    });

    let mut graceful = stop_rx.clone();
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = graceful.wait_for(|stop| *stop).await;
        tracing::info!("shutting down: finishing in-flight requests");
    });
    let mut deadline = stop_rx;
    let timeout = settings.shutdown_timeout;
    let result = tokio::select! {
        r = server => r.context("serving"),
        () = async move {
            let _ = deadline.wait_for(|stop| *stop).await;
            tokio::time::sleep(timeout).await;
        } => {
            tracing::warn!(seconds = timeout.as_secs(), "shutdown timed out; dropping open connections");
            Ok(())
        }
    };
    cleanup.abort();
    // Mail queued by the requests that finished is delivered before the
    // process exits, within the same grace period.
    if !mail.finish(timeout).await {
        tracing::warn!(
            seconds = timeout.as_secs(),
            "mail delivery did not finish in time; queued messages dropped"
        );
    }
    tracing::info!("stopped");
    result
}

/// Print the one line that tells the address (tests and scripts read it).
fn announce(addr: SocketAddr) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "countersign listening on http://{addr}")
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

/// Wait for SIGINT or SIGTERM (Ctrl-C elsewhere).
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot listen for signals; stop the process by other means");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Every `interval`, clean up expired flows, sessions, keys,
/// verifications and rate-limit windows, on one node only: a hit on
/// [`CLEANUP_KEY`] with a limit of 1 per `interval` is allowed for exactly
/// one caller per window across every node sharing the store.
async fn cleanup_loop<S: ApiStore>(
    store: S,
    sessions: SessionService<S>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match cleanup_once(&store, &sessions, interval).await {
            Ok(Some(done)) => tracing::info!(
                flows = done.flows,
                sessions = done.sessions,
                keys = done.keys,
                verifications = done.verifications,
                rate_limits = done.rate_limits,
                "cleanup done"
            ),
            Ok(None) => tracing::debug!("cleanup: another node has this window"),
            Err(e) => tracing::warn!(error = %e, "cleanup failed"),
        }
    }
}

/// One cleanup if this node wins the window; `None` when another did.
pub async fn cleanup_once<S: ApiStore>(
    store: &S,
    sessions: &SessionService<S>,
    interval: Duration,
) -> Result<Option<countersign_core::Cleanup>, Failure> {
    let now = Env::system().now();
    let decision = store
        .hit(CLEANUP_KEY, 1, interval, now)
        .await
        .map_err(|e| fail("electing the cleanup node", e))?;
    if !decision.allowed {
        return Ok(None);
    }
    sessions.cleanup().await.context("cleaning up").map(Some)
}
