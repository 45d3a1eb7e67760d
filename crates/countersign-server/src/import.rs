//! `countersign users import`: users brought in with the password hashes
//! they had elsewhere (PHC argon2, bcrypt, scrypt, PBKDF2: see
//! [`LegacyHash::parse`]), from CSV or JSON lines.
//!
//! Each row has `identifier` and, optionally, `email`, `display_name` and
//! `password_hash`. Rows are imported one by one, each in its own
//! transaction and idempotent by identifier
//! ([`AuthnService::import_user`]): a row whose identifier exists is
//! skipped unchanged. Every `checkpoint` rows the number of rows done is
//! saved to `<file>.progress`, so `--resume` starts after the last saved
//! row (rows done since are found existing, never duplicated). Refused
//! rows go to `<file>.rejected.jsonl`, one JSON object each with the line
//! and the reason (never the hash).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use countersign_axum::ApiStore;
use countersign_core::{
    AuthnService, ClientInfo, ErrorKind, ImportOutcome, ImportUser, LegacyHash, TenantId,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::cli::{ImportArgs, ImportFormat};
use crate::commands::say;
use crate::config::Settings;
use crate::error::{Context, Failure, fail};
use crate::{files, services, store, with_store};

/// One row of an import file. `Debug` leaves the hash out.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// The login identifier.
    pub identifier: String,
    /// An email address.
    #[serde(default)]
    pub email: Option<String>,
    /// A display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The password hash from the old system.
    #[serde(default)]
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Row")
            .field("identifier", &self.identifier)
            .field("email", &self.email)
            .field("display_name", &self.display_name)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The columns a CSV file may have.
const COLUMNS: &[&str] = &["identifier", "email", "display_name", "password_hash"];

/// What to import, and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The file.
    pub file: PathBuf,
    /// Its format.
    pub format: ImportFormat,
    /// Continue after the rows a previous run saved as done.
    pub resume: bool,
    /// Stop after this many rows of this run.
    pub limit: Option<u64>,
    /// Save progress every this many rows.
    pub checkpoint: u64,
    /// Show a progress bar.
    pub progress: bool,
}

/// What an import did (this run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Rows skipped because a previous run did them.
    pub resumed_after: u64,
    /// Users created.
    pub imported: u64,
    /// Rows whose identifier existed (nothing changed).
    pub existing: u64,
    /// Rows refused (see the rejected file).
    pub refused: u64,
    /// Whether the run stopped at its limit before the end of the file.
    pub stopped_at_limit: bool,
}

/// The saved progress: rows done (1-based count of data rows).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Progress {
    rows_done: u64,
}

/// `<file><suffix>`.
pub fn beside(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// One row as read: its line in the file, and the row or why it could
/// not be read.
type ReadRow = (u64, Result<Row, String>);

/// Every row of `file`, in order.
fn read_rows(file: &Path, format: ImportFormat) -> Result<Vec<ReadRow>, Failure> {
    let what = format!("reading {}", file.display());
    match format {
        ImportFormat::Jsonl => {
            let reader = std::io::BufReader::new(std::fs::File::open(file).context(&what)?);
            let mut rows = Vec::new();
            for (i, line) in reader.lines().enumerate() {
                let line = line.context(&what)?;
                if line.trim().is_empty() {
                    continue;
                }
                let n = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1);
                rows.push((
                    n,
                    serde_json::from_str::<Row>(&line).map_err(|e| e.to_string()),
                ));
            }
            Ok(rows)
        }
        ImportFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .flexible(false)
                .trim(csv::Trim::All)
                .from_path(file)
                .context(&what)?;
            let headers = reader.headers().context(&what)?.clone();
            if let Some(bad) = headers.iter().find(|h| !COLUMNS.contains(h)) {
                return Err(Failure::Failed(format!(
                    "{}: unknown column `{bad}` (columns: {})",
                    file.display(),
                    COLUMNS.join(", ")
                )));
            }
            if !headers.iter().any(|h| h == "identifier") {
                return Err(Failure::Failed(format!(
                    "{}: no `identifier` column",
                    file.display()
                )));
            }
            let mut rows = Vec::new();
            for (i, record) in reader.records().enumerate() {
                let fallback = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(2);
                match record {
                    Ok(r) => {
                        let line = r.position().map_or(fallback, csv::Position::line);
                        let row = r
                            .deserialize::<Row>(Some(&headers))
                            .map(blank_is_none)
                            .map_err(|e| e.to_string());
                        rows.push((line, row));
                    }
                    Err(e) => {
                        let line = e.position().map_or(fallback, csv::Position::line);
                        rows.push((line, Err(e.to_string())));
                    }
                }
            }
            Ok(rows)
        }
    }
}

/// Empty CSV cells are absent values.
fn blank_is_none(mut row: Row) -> Row {
    for v in [
        &mut row.email,
        &mut row.display_name,
        &mut row.password_hash,
    ] {
        if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
            *v = None;
        }
    }
    row
}

/// The core input for `row`, or why it is refused.
fn to_import(row: Row) -> Result<ImportUser, String> {
    let password = row
        .password_hash
        .as_deref()
        .map(LegacyHash::parse)
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok(ImportUser {
        password,
        email: row.email,
        display_name: row.display_name,
        ..ImportUser::new(&row.identifier)
    })
}

/// Import `options.file` into `tenant` through `authn`.
pub async fn import<S: ApiStore>(
    authn: &AuthnService<S>,
    tenant: TenantId,
    options: &ImportOptions,
) -> Result<Summary, Failure> {
    let progress_path = beside(&options.file, ".progress");
    let rejected_path = beside(&options.file, ".rejected.jsonl");
    let start = if options.resume {
        read_progress(&progress_path)?.rows_done
    } else {
        0
    };
    let rows = read_rows(&options.file, options.format)?;
    let mut rejected = open_rejected(&rejected_path, options.resume)?;
    let total = u64::try_from(rows.len()).unwrap_or(u64::MAX);
    let bar = progress_bar(options.progress, total, start);
    let client = ClientInfo::default();
    let mut summary = Summary {
        resumed_after: start,
        ..Summary::default()
    };
    let mut done = start;
    let mut this_run = 0u64;
    for (index, (line, row)) in (1u64..).zip(rows) {
        if index <= start {
            continue;
        }
        if options.limit.is_some_and(|limit| this_run >= limit) {
            summary.stopped_at_limit = true;
            break;
        }
        let identifier = row.as_ref().map(|r| r.identifier.clone()).ok();
        let outcome = match row.and_then(to_import) {
            Err(reason) => Err(reason),
            Ok(user) => match authn.import_user(tenant, user, &client).await {
                Ok(ImportOutcome::Created(_)) => Ok(true),
                Ok(ImportOutcome::AlreadyExists(_)) => Ok(false),
                Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Conflict) => {
                    Err(e.to_string())
                }
                Err(e) => {
                    // Not the row's fault: keep what is done, stop here.
                    save_progress(&progress_path, done)?;
                    bar.abandon();
                    return Err(fail(&format!("importing line {line}"), e));
                }
            },
        };
        match outcome {
            Ok(true) => summary.imported += 1,
            Ok(false) => summary.existing += 1,
            Err(reason) => {
                summary.refused += 1;
                let entry = serde_json::json!({
                    "line": line,
                    "identifier": identifier,
                    "reason": reason,
                });
                writeln!(rejected, "{entry}").context("writing the rejected rows")?;
            }
        }
        done = index;
        this_run += 1;
        bar.inc(1);
        if this_run.is_multiple_of(options.checkpoint) {
            rejected.flush().context("writing the rejected rows")?;
            save_progress(&progress_path, done)?;
        }
    }
    rejected.flush().context("writing the rejected rows")?;
    save_progress(&progress_path, done)?;
    bar.finish_and_clear();
    Ok(summary)
}

fn progress_bar(show: bool, total: u64, start: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} rows ({per_sec}, {eta})")
    {
        bar.set_style(style);
    }
    bar.set_position(start.min(total));
    bar
}

fn read_progress(path: &Path) -> Result<Progress, Failure> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            serde_json::from_str(&text).map_err(|e| fail(&format!("reading {}", path.display()), e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Progress::default()),
        Err(e) => Err(fail(&format!("reading {}", path.display()), e)),
    }
}

fn save_progress(path: &Path, rows_done: u64) -> Result<(), Failure> {
    let text = serde_json::to_string(&Progress { rows_done }).context("progress")?;
    files::write_private(path, text.as_bytes()).context(&format!("writing {}", path.display()))
}

fn open_rejected(path: &Path, append: bool) -> Result<std::io::BufWriter<std::fs::File>, Failure> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options
        .open(path)
        .context(&format!("opening {}", path.display()))?;
    Ok(std::io::BufWriter::new(file))
}

/// The format of `file`: `format` if given, else from its extension.
fn format_of(file: &Path, format: Option<ImportFormat>) -> Result<ImportFormat, Failure> {
    if let Some(f) = format {
        return Ok(f);
    }
    match file.extension().and_then(|e| e.to_str()) {
        Some("csv") => Ok(ImportFormat::Csv),
        Some("jsonl" | "ndjson") => Ok(ImportFormat::Jsonl),
        _ => Err(Failure::Failed(format!(
            "{}: cannot tell the format from the extension; pass --format csv or jsonl",
            file.display()
        ))),
    }
}

/// `countersign users import`.
pub async fn command(settings: &Settings, args: &ImportArgs) -> Result<ExitCode, Failure> {
    let options = ImportOptions {
        file: args.file.clone(),
        format: format_of(&args.file, args.format)?,
        resume: args.resume,
        limit: args.limit,
        checkpoint: args.checkpoint,
        progress: std::io::stdout().is_terminal(),
    };
    let backend = store::open(settings, true).await?;
    let summary = with_store!(backend, s => {
        let svc = services::start(s, settings)?;
        let tenant = svc
            .authn
            .tenant_by_slug(&args.tenant)
            .await
            .map_err(|e| fail(&format!("tenant `{}`", args.tenant), e))?;
        import(&svc.authn, tenant.id, &options).await?
    });
    let mut report = format!(
        "imported {}, skipped {} existing, refused {}",
        summary.imported, summary.existing, summary.refused
    );
    if summary.resumed_after > 0 {
        report.push_str(&format!(" (resumed after row {})", summary.resumed_after));
    }
    if summary.refused > 0 {
        report.push_str(&format!(
            "\nrefused rows: {}",
            beside(&options.file, ".rejected.jsonl").display()
        ));
    }
    if summary.stopped_at_limit {
        report.push_str("\nstopped at --limit: continue with --resume");
    }
    say(&report)?;
    Ok(ExitCode::SUCCESS)
}
