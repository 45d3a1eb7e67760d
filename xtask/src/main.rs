//! `cargo xtask`: the project's automation, one subcommand per job.
//!
//! - `cargo xtask test`: every test of the workspace, Postgres included
//!   (starting the local PostgreSQL cluster first when it is down).
//! - `cargo xtask ci`: formatting, clippy with warnings denied, the docs
//!   with warnings denied, every test, and `cargo deny` (installing
//!   cargo-deny when missing). `.ci/run` is exactly this command.
//! - `cargo xtask bench [FILTER]`: the benchmarks, release build.
//! - `cargo xtask bench-http [SECONDS] [RUNS]`: the HTTP benchmarks against the
//!   release server, each beside its floor (see `bench_http.rs`).
//! - `cargo xtask fuzz [SECONDS]`: schemathesis over the OpenAPI document
//!   against a live `countersign serve` (part of `ci`, bounded in time).

use std::env;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

mod bench_http;
mod fuzz;
mod server;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("ci") => ci(),
        Some("bench") => bench(args.get(1..).unwrap_or_default()),
        Some("bench-http") => bench_http::bench_http(args.get(1..).unwrap_or_default()),
        Some("deny") => deny(),
        Some("fuzz") => fuzz::fuzz(args.get(1..).unwrap_or_default()),
        _ => {
            eprintln!(
                "usage: cargo xtask <test|ci|bench [filter]|bench-http [seconds] [runs]|deny|fuzz [seconds]>"
            );
            Err("unknown command".into())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result = std::result::Result<(), String>;

/// The workspace root.
fn root() -> PathBuf {
    let xtask = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().map(PathBuf::from).unwrap_or(xtask)
}

fn run(program: &str, args: &[&str]) -> Result {
    let mut command = Command::new(program);
    command.args(args);
    status(command, program, args)
}

fn status(mut command: Command, program: &str, args: &[&str]) -> Result {
    eprintln!("$ {program} {}", args.join(" "));
    let status = command
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} {} failed ({status})", args.join(" ")))
    }
}

/// Cargo, with the environment the caller's shell gave `cargo xtask`:
/// what `cargo run` adds for the xtask binary itself (its package's
/// `CARGO_PKG_*` and `CARGO_MANIFEST_*`, and the target directory's
/// library paths in front of `LD_LIBRARY_PATH`) is taken out again, so a
/// build made here is the same build a plain `cargo build` makes, and
/// neither invalidates the other.
fn cargo(args: &[&str]) -> Result {
    cargo_with(args, &[])
}

/// [`cargo`] with extra environment variables.
fn cargo_with(args: &[&str], vars: &[(&str, &str)]) -> Result {
    let program = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&program);
    command.args(args);
    scrub_run_env(&mut command);
    for (key, value) in vars {
        command.env(key, value);
        eprint!("{key}=\"{value}\" ");
    }
    status(command, &program, args)
}

/// Undo, for a child process, what `cargo run` put in this process's
/// environment.
fn scrub_run_env(command: &mut Command) {
    const SET_BY_RUN: [&str; 6] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_RUSTC_CURRENT_DIR",
    ];
    for (key, _) in env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("CARGO_PKG_") || SET_BY_RUN.contains(&name.as_ref()) {
            command.env_remove(&key);
        }
    }
    // `cargo run` prepends the target directory's and the toolchain's
    // library directories; keep only what was there before.
    if let Some(paths) = env::var_os("LD_LIBRARY_PATH") {
        let target = root().join("target");
        let kept: Vec<PathBuf> = env::split_paths(&paths)
            .filter(|p| {
                !p.starts_with(&target) && !p.components().any(|c| c.as_os_str() == ".rustup")
            })
            .collect();
        match env::join_paths(&kept) {
            Ok(joined) if !kept.is_empty() => {
                command.env("LD_LIBRARY_PATH", joined);
            }
            _ => {
                command.env_remove("LD_LIBRARY_PATH");
            }
        }
    }
}

fn test() -> Result {
    ensure_postgres()?;
    cargo(&["test", "--workspace", "--all-targets"])?;
    cargo(&["test", "--workspace", "--doc"])
}

/// The Postgres tests need a server: `DATABASE_URL`, or by default the
/// local one at 127.0.0.1:5432. If that is down and the machine has a
/// Debian-style cluster, start it. A server that stays unreachable is an
/// error: the Postgres tests never skip.
fn ensure_postgres() -> Result {
    if env::var_os("DATABASE_URL").is_some() {
        return Ok(());
    }
    let up = || {
        std::net::TcpStream::connect_timeout(
            &([127, 0, 0, 1], 5432).into(),
            std::time::Duration::from_secs(1),
        )
        .is_ok()
    };
    if up() {
        return Ok(());
    }
    if Command::new("pg_ctlcluster")
        .arg("--help")
        .output()
        .is_err()
    {
        // A fresh Debian machine: install the server (it starts a cluster).
        eprintln!("xtask: PostgreSQL is not installed; installing it");
        run("apt-get", &["update", "-qq"])?;
        run("apt-get", &["install", "-y", "-qq", "postgresql"])?;
    }
    let versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for v in &versions {
        eprintln!("xtask: starting PostgreSQL {v} (cluster main)");
        let _ = run(
            "pg_ctlcluster",
            &["--skip-systemctl-redirect", v, "main", "start"],
        );
    }
    for _ in 0..30 {
        if up() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    Err(
        "PostgreSQL is not reachable at 127.0.0.1:5432 and could not be started; \
         install it (Debian: apt-get install postgresql) or set DATABASE_URL"
            .into(),
    )
}

fn ci() -> Result {
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    docs()?;
    test()?;
    fuzz::fuzz(&["180".to_owned()])?;
    deny()
}

/// The API docs with warnings denied: a broken intra-doc link fails CI.
fn docs() -> Result {
    cargo_with(
        &["doc", "--no-deps", "--workspace"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )
}

fn deny() -> Result {
    let have = Command::new("cargo")
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        cargo(&["install", "cargo-deny", "--locked"])?;
    }
    cargo(&[
        "deny",
        "--all-features",
        "check",
        "licenses",
        "bans",
        "sources",
    ])?;
    // The advisory database is cloned from the network. Where it cannot be
    // reached the check is reported as not run; an advisory that is found
    // always fails.
    eprintln!("$ cargo deny --all-features check advisories");
    let out = Command::new("cargo")
        .args(["deny", "--all-features", "check", "advisories"])
        .output()
        .map_err(|e| format!("cannot run cargo deny: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    if out.status.success() {
        Ok(())
    } else if stderr.contains("failed to fetch advisory database") {
        eprintln!("xtask: advisory database unreachable from this machine: advisories NOT checked");
        Ok(())
    } else {
        Err("cargo deny found advisories".into())
    }
}

fn bench(filter: &[String]) -> Result {
    ensure_postgres()?;
    let mut args = vec!["bench", "--workspace"];
    if let Some(f) = filter.first() {
        args.push("--");
        args.push(f);
    }
    cargo(&args)
}
