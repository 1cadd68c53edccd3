//! Audit a MIDI corpus: read every `.mid`/`.midi`/`.kar`/`.rmi` file under the given paths
//! (leniently, in parallel) and report what was read, what had to be repaired, and what failed.
//!
//! ```text
//! cargo run --release --example audit -- fixtures/
//! cargo run --release --example audit -- ~/midi --json --per-file --threads 1
//! ```

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use aurl::data::audit::{AuditSummary, FileStatus, audit_files, discover};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

/// Read every MIDI file under PATHs and report what was found.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Files or folders to audit (folders are walked recursively).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// With --json, include a per-file array.
    #[arg(long)]
    per_file: bool,
    /// Worker threads (0 = all cores; 1 for single-thread measurements).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let found = discover(&args.paths);
    for (path, why) in &found.unreadable {
        eprintln!("warning: cannot list {}: {why}", path.display());
    }
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(found.files.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} files {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut summary = audit_files(&found.files, args.threads, || bar.inc(1));
    bar.finish_and_clear();
    if !args.per_file {
        summary.per_file = None;
    }
    if args.json {
        match serde_json::to_string(&summary) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("error: cannot encode the report: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print_table(&summary);
    }
    ExitCode::SUCCESS
}

fn print_table(s: &AuditSummary) {
    println!("files          {:>10}", s.files);
    println!("  strict ok    {:>10}", s.strict_ok);
    println!("  repaired     {:>10}", s.repaired);
    println!("  failed       {:>10}", s.failed);
    println!("notes          {:>10}", s.notes);
    println!("tracks         {:>10}", s.tracks);
    println!("hours          {:>10.2}", s.seconds / 3600.0);
    println!("round trip ok  {:>10}", s.roundtrip_ok);
    let per_file_us = if s.files > 0 {
        s.parse_ms * 1e3 / s.files as f64
    } else {
        0.0
    };
    println!(
        "parse time     {:>10.1} ms ({per_file_us:.1} µs per file)",
        s.parse_ms
    );
    println!("wall time      {:>10.1} ms", s.elapsed_ms);
    if !s.repairs.is_empty() {
        println!("\nrepairs:");
        for (kind, n) in &s.repairs {
            println!("  {kind:<32} {n:>8}");
        }
    }
    if let Some(files) = &s.per_file {
        let repaired: Vec<_> = files
            .iter()
            .filter(|f| f.status == FileStatus::Repaired)
            .collect();
        if !repaired.is_empty() {
            println!("\nrepaired files:");
            for f in repaired {
                println!("  {}: {:?}", f.file, f.repairs);
            }
        }
    }
    if !s.errors.is_empty() {
        println!("\nfailures:");
        for e in &s.errors {
            println!("  {}: {}", e.file, e.error);
        }
    }
}
