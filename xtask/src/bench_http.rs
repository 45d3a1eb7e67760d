//! `cargo xtask bench-http [SECONDS] [RUNS]`: the HTTP benchmarks. Starts the
//! release `countersign serve` on a fresh SQLite directory (rate limits
//! off: the load comes from one address and one account) and drives it
//! with oha, installed from crates.io into `target/tools` on first use.
//! Each figure is measured beside its floor in the same run, with the same
//! connections, threads and warm-up, in `RUNS` pairs (default 11) of
//! `SECONDS` each (default 3), the floor first in odd pairs and last in
//! even ones; the report gives the median ratio and its spread:
//!
//! - session check `GET /v1/session` (bearer token) against the same
//!   server's empty route `GET /healthz`;
//! - password login `POST /v1/tenants/{t}/login/password` against bare
//!   argon2id at the server's parameters, on as many threads as the server
//!   has hashing slots, each reusing one buffer (the fastest argon2 can
//!   run here);
//! - resident memory at idle (5 s after the first start), and right after
//!   a 60-second flood of logins over 8 connections that follows all the
//!   runs above (`VmRSS` and the peak `VmHWM` from `/proc`; and 5 s
//!   later).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde_json::Value;

use crate::server::Server;
use crate::{Result, cargo, root};

/// The oha release the benchmarks are pinned to.
const OHA: &str = "1.14.0";
/// Connections for the session check and its floor.
const CHECK_CONNECTIONS: u32 = 16;
/// Connections for logins (the flood included).
const LOGIN_CONNECTIONS: u32 = 8;
/// Pairs measured by default; the report gives the median of their
/// ratios and the spread. Odd, so the median is one pair's ratio; the
/// order within a pair alternates from pair to pair, so a host that slows
/// down or speeds up during the runs favours neither side. Many short
/// pairs rather than a few long ones: on a shared host the machine's speed
/// changes within seconds, and the closer in time a floor and its subject
/// run, the more alike the machine they see.
const RUNS: usize = 11;
/// Seconds each side of a pair runs by default.
const SECONDS: u64 = 3;

pub fn bench_http(args: &[String]) -> Result {
    let seconds: u64 = match args.first() {
        Some(s) => s
            .parse()
            .map_err(|_| format!("not a number of seconds: `{s}`"))?,
        None => SECONDS,
    };
    let runs: usize = match args.get(1) {
        Some(s) => s
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("not a number of runs: `{s}`"))?,
        None => RUNS,
    };
    let flood_seconds = 60;
    let root = root();
    let work = root.join("target").join("bench-http");
    let oha = install_oha(&root)?;
    cargo(&["build", "--release", "-q", "-p", "countersign-server"])?;
    let binary = root.join("target/release/countersign");
    let (params, slots) = server_hashing(&binary, &work)?;
    let server = Server::start_with(
        &binary,
        &work,
        &[
            ("COUNTERSIGN_RATE_LIMIT_IP", "0"),
            ("COUNTERSIGN_RATE_LIMIT_ACCOUNT", "0"),
        ],
    )?;
    // Idle: the bootstrap's hashing buffer is given back after the
    // hasher's idle release (2 s).
    std::thread::sleep(Duration::from_secs(5));
    let idle = memory(server.pid())?;
    let token = server.admin_token()?;
    let base = format!("http://{}", server.addr);
    let auth = format!("Authorization: Bearer {token}");
    let health = [format!("{base}/healthz")];
    let check = ["-H".to_owned(), auth.clone(), format!("{base}/v1/session")];
    let login_body =
        serde_json::json!({"identifier": server.admin.0, "password": server.admin.1}).to_string();
    let login = [
        "-m".to_owned(),
        "POST".to_owned(),
        "-T".to_owned(),
        "application/json".to_owned(),
        "-d".to_owned(),
        login_body,
        format!("{base}/v1/tenants/{}/login/password", server.tenant),
    ];

    let pid = server.pid();
    eprintln!("xtask: warming up");
    oha_run(&oha, pid, CHECK_CONNECTIONS, 3, &health)?;
    oha_run(&oha, pid, CHECK_CONNECTIONS, 3, &check)?;
    oha_run(&oha, pid, LOGIN_CONNECTIONS, 3, &login)?;
    bare_argon2(&params, slots, Duration::from_secs(2))?;

    // Throughput pairs (subject, floor), and CPU pairs: the floor's CPU
    // per operation and the subject's (the server's for HTTP, this
    // process's for bare argon2), whose ratio does not depend on how much
    // of the machine the host left us during the run.
    let (mut checks, mut check_cpu) = (Vec::new(), Vec::new());
    let (mut logins, mut login_cpu) = (Vec::new(), Vec::new());
    for i in 1..=runs {
        let floor_first = i % 2 == 1;
        let (floor, subject) = pair(
            floor_first,
            || oha_run(&oha, pid, CHECK_CONNECTIONS, seconds, &health),
            || oha_run(&oha, pid, CHECK_CONNECTIONS, seconds, &check),
        )?;
        eprintln!(
            "run {i}: GET /healthz {:.0} req/s ({:.1} us CPU each), GET /v1/session {:.0} req/s ({:.1} us) ({:.1}%)",
            floor.per_second,
            1e6 * floor.cpu_per_op(),
            subject.per_second,
            1e6 * subject.cpu_per_op(),
            100.0 * subject.per_second / floor.per_second
        );
        checks.push((subject.per_second, floor.per_second));
        check_cpu.push((floor.cpu_per_op(), subject.cpu_per_op()));
        let (floor, subject) = pair(
            floor_first,
            || bare_argon2(&params, slots, Duration::from_secs(seconds)),
            || oha_run(&oha, pid, LOGIN_CONNECTIONS, seconds, &login),
        )?;
        eprintln!(
            "run {i}: bare argon2 {:.1} hashes/s ({:.1} ms CPU each), login {:.1} req/s ({:.1} ms) ({:.2}x)",
            floor.per_second,
            1e3 * floor.cpu_per_op(),
            subject.per_second,
            1e3 * subject.cpu_per_op(),
            subject.per_second / floor.per_second
        );
        logins.push((subject.per_second, floor.per_second));
        login_cpu.push((floor.cpu_per_op(), subject.cpu_per_op()));
    }

    eprintln!("xtask: login flood, {flood_seconds} s over {LOGIN_CONNECTIONS} connections");
    let flood = oha_run(&oha, pid, LOGIN_CONNECTIONS, flood_seconds, &login)?.per_second;
    let after = memory(server.pid())?;
    std::thread::sleep(Duration::from_secs(5));
    let settled = memory(server.pid())?;

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!();
    println!(
        "`cargo xtask bench-http {seconds} {runs}` on {cores} cores ({cpu}); {runs} pairs of {seconds} s runs"
    );
    println!();
    println!("| figure | measured | floor (same run) | ratio: median (min-max) | target |");
    println!("|---|---|---|---|---|");
    let (m, lo, hi) = spread(&checks);
    println!(
        "| session check `GET /v1/session`, {CHECK_CONNECTIONS} connections | {} req/s | `GET /healthz` {} req/s | {:.1}% ({:.1}-{:.1}%) | >= 80% |",
        list(&checks, |c| c.0, 0),
        list(&checks, |c| c.1, 0),
        100.0 * m,
        100.0 * lo,
        100.0 * hi
    );
    let (m, lo, hi) = spread(&logins);
    println!(
        "| password login `POST .../login/password`, {LOGIN_CONNECTIONS} connections | {} logins/s | bare argon2id m={} KiB t={} p={}, {slots} threads: {} hashes/s | {m:.2}x ({lo:.2}-{hi:.2}x) | >= 0.9x |",
        list(&logins, |c| c.0, 1),
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        list(&logins, |c| c.1, 1),
    );
    let (m, lo, hi) = spread(&check_cpu);
    println!(
        "| server CPU per session check (CPU ratio: the floor's CPU per request over the check's) | {} us | `GET /healthz` {} us | {:.1}% ({:.1}-{:.1}%) | |",
        list(&check_cpu, |c| 1e6 * c.1, 1),
        list(&check_cpu, |c| 1e6 * c.0, 1),
        100.0 * m,
        100.0 * lo,
        100.0 * hi
    );
    let (m, lo, hi) = spread(&login_cpu);
    println!(
        "| server CPU per login (CPU ratio: a bare hash's CPU over a login's) | {} ms | bare argon2id {} ms | {m:.2}x ({lo:.2}-{hi:.2}x) | |",
        list(&login_cpu, |c| 1e3 * c.1, 2),
        list(&login_cpu, |c| 1e3 * c.0, 2),
    );
    println!(
        "| resident memory at idle (5 s after the first start) | {:.1} MB | | | <= 25 MB |",
        idle.0
    );
    println!(
        "| resident memory after a {flood_seconds} s login flood ({flood:.1} logins/s) | {:.1} MB (peak {:.1} MB; {:.1} MB 5 s later) | | | <= 100 MB |",
        after.0, after.1, settled.0
    );
    Ok(())
}

/// oha, installed into `target/tools` when it is not there yet.
fn install_oha(root: &Path) -> std::result::Result<PathBuf, String> {
    let tools = root.join("target").join("tools");
    let bin = tools.join("bin").join("oha");
    if bin.exists() {
        return Ok(bin);
    }
    cargo(&[
        "install",
        "oha",
        "--version",
        OHA,
        "--locked",
        "--root",
        &tools.to_string_lossy(),
    ])?;
    Ok(bin)
}

/// The server's argon2 parameters and hashing slots, as its own
/// `hash calibrate` reports them.
fn server_hashing(binary: &Path, work: &Path) -> std::result::Result<(Params, usize), String> {
    std::fs::create_dir_all(work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let out = Command::new(binary)
        .args(["hash", "calibrate", "--rounds", "3", "--data-dir"])
        .arg(work.join("calibrate"))
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprint!("{text}");
    if !out.status.success() {
        return Err(format!(
            "hash calibrate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let number = |key: &str| -> std::result::Result<u32, String> {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no `{key}` in the calibration report: {text}"))
    };
    let params = Params::new(number("m=")?, number("t=")?, number("p=")?, Some(32))
        .map_err(|e| format!("argon2 parameters: {e}"))?;
    let slots = text
        .split(" hashing slots")
        .next()
        .and_then(|s| s.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no hashing slots in the calibration report: {text}"))?;
    Ok((params, slots))
}

/// Requests per second of one oha run of `seconds` over `connections`;
/// an error unless every answer was a 200.
fn oha_run(
    oha: &Path,
    server: u32,
    connections: u32,
    seconds: u64,
    request: &[String],
) -> std::result::Result<Rate, String> {
    let mut args = vec![
        "--no-tui".to_owned(),
        "--output-format".to_owned(),
        "json".to_owned(),
        "-c".to_owned(),
        connections.to_string(),
        "-z".to_owned(),
        format!("{seconds}s"),
        // Requests still in flight at the deadline are answered and
        // counted, not aborted: an aborted login's hash would be work the
        // server did and the count left out.
        "-w".to_owned(),
    ];
    args.extend(request.iter().cloned());
    let cpu_before = cpu_seconds(&server.to_string())?;
    let out = Command::new(oha)
        .args(&args)
        .output()
        .map_err(|e| format!("cannot run oha: {e}"))?;
    let cpu = cpu_seconds(&server.to_string())? - cpu_before;
    if !out.status.success() {
        return Err(format!(
            "oha failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let json: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "oha's report: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    let codes = json["statusCodeDistribution"]
        .as_object()
        .ok_or("no status codes in oha's report")?;
    let other: Vec<_> = codes.iter().filter(|(code, _)| *code != "200").collect();
    if !other.is_empty() || codes.is_empty() {
        return Err(format!("answers other than 200: {codes:?}"));
    }
    let ok: f64 = codes.values().filter_map(Value::as_f64).sum();
    let took = json["summary"]["total"]
        .as_f64()
        .ok_or("no total time in oha's report")?;
    Ok(Rate {
        per_second: ok / took.max(1e-9),
        ops: ok,
        cpu,
    })
}

/// One measured run: operations per second, operations, and the CPU
/// seconds the process doing them used meanwhile.
#[derive(Clone, Copy)]
struct Rate {
    per_second: f64,
    ops: f64,
    cpu: f64,
}

impl Rate {
    /// CPU seconds per operation.
    fn cpu_per_op(self) -> f64 {
        self.cpu / self.ops.max(1.0)
    }
}

/// User plus system CPU seconds a process has used (`/proc/<pid>/stat`,
/// in clock ticks of 1/100 s, Linux's `USER_HZ`); `self` for this one.
fn cpu_seconds(pid: &str) -> std::result::Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("reading /proc/{pid}/stat: {e}"))?;
    // The fields after the command name (which may hold spaces): state
    // is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> std::result::Result<f64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .ok_or_else(|| format!("no CPU time in /proc/{pid}/stat"))
    };
    Ok((tick(11)? + tick(12)?) / 100.0)
}

/// Bare argon2id hashes per second at `params` on `threads` threads, each
/// with one buffer allocated before the clock starts.
fn bare_argon2(
    params: &Params,
    threads: usize,
    time: Duration,
) -> std::result::Result<Rate, String> {
    let cpu_before = cpu_seconds("self")?;
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (params, done, stop) = (params.clone(), done.clone(), stop.clone());
            std::thread::spawn(move || -> std::result::Result<(), String> {
                let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
                let mut blocks = vec![Block::default(); params.block_count()];
                let mut out = [0u8; 32];
                while !stop.load(Ordering::Relaxed) {
                    argon
                        .hash_password_into_with_memory(
                            b"correct horse battery staple",
                            b"a sixteen b salt",
                            &mut out,
                            &mut blocks,
                        )
                        .map_err(|e| format!("argon2: {e}"))?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(time);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().map_err(|_| "an argon2 thread panicked")??;
    }
    // Hashes finished by the time the last thread stopped, over the whole
    // time: a hash begun before `stop` counts, as a login in flight does.
    let ops = done.load(Ordering::Relaxed) as f64;
    Ok(Rate {
        per_second: ops / start.elapsed().as_secs_f64(),
        ops,
        cpu: cpu_seconds("self")? - cpu_before,
    })
}

/// `VmRSS` and `VmHWM` of a process, in MB.
fn memory(pid: u32) -> std::result::Result<(f64, f64), String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("reading /proc/{pid}/status: {e}"))?;
    let field = |name: &str| -> std::result::Result<f64, String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Measure a floor and its subject one after the other, the floor first
/// or last as `floor_first` says; both results, floor first.
fn pair(
    floor_first: bool,
    floor: impl FnOnce() -> std::result::Result<Rate, String>,
    subject: impl FnOnce() -> std::result::Result<Rate, String>,
) -> std::result::Result<(Rate, Rate), String> {
    if floor_first {
        let f = floor()?;
        Ok((f, subject()?))
    } else {
        let s = subject()?;
        Ok((floor()?, s))
    }
}

/// Median, min and max of subject/floor ratios.
fn spread(pairs: &[(f64, f64)]) -> (f64, f64, f64) {
    let mut r: Vec<f64> = pairs.iter().map(|(s, f)| s / f.max(1e-9)).collect();
    r.sort_by(f64::total_cmp);
    let median = r.get(r.len() / 2).copied().unwrap_or(0.0);
    let (lo, hi) = (
        r.first().copied().unwrap_or(0.0),
        r.last().copied().unwrap_or(0.0),
    );
    (median, lo, hi)
}

/// The runs' values, joined.
fn list(pairs: &[(f64, f64)], pick: impl Fn(&(f64, f64)) -> f64, digits: usize) -> String {
    pairs
        .iter()
        .map(|p| format!("{:.*}", digits, pick(p)))
        .collect::<Vec<_>>()
        .join(" / ")
}
