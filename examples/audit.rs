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

use aurl::core::tokenize::{SCHEMES, TokenizerConfig};
use aurl::data::audit::{AuditSummary, FileStatus, TokenizerCheck, audit_files, discover};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

/// mimalloc, keeping freed memory for the next step.
#[path = "support/alloc.rs"]
mod alloc;

/// Read every MIDI file under PATHs and report what was found.
#[derive(Parser)]
#[command(version)]
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
    /// Also check a tokenization scheme on every file (round trip, grammar, timings):
    /// a scheme name or `all`. Repeatable.
    #[arg(long)]
    tokenizer: Vec<String>,
    /// Tokenizer configuration (TOML); defaults otherwise.
    #[arg(long)]
    tokenizer_config: Option<PathBuf>,
}

fn tokenizer_checks(args: &Args) -> Result<Vec<TokenizerCheck>, String> {
    let config = match &args.tokenizer_config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            TokenizerConfig::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => TokenizerConfig::default(),
    };
    let mut names: Vec<&str> = Vec::new();
    for t in &args.tokenizer {
        if t == "all" {
            names.extend(SCHEMES);
        } else {
            names.push(t);
        }
    }
    names.sort_unstable();
    names.dedup();
    names
        .iter()
        .map(|n| TokenizerCheck::new(n, &config).map_err(|e| e.to_string()))
        .collect()
}

fn main() -> ExitCode {
    alloc::keep_freed_memory();
    let args = Args::parse();
    let checks = match tokenizer_checks(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
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
    let mut summary = audit_files(&found.files, args.threads, &checks, || bar.inc(1));
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
    println!("  music ok     {:>10}", s.roundtrip_music_ok);
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
    let read = s.files - s.failed;
    for (scheme, t) in &s.tokenizers {
        println!(
            "\n{scheme}: {} tokens, vocabulary {}, round trip exact {}/{read}, grammar-valid {}/{read}, \
             encode {:.1} ms, decode {:.1} ms",
            t.tokens, t.vocab_size, t.roundtrip_exact, t.grammar_valid, t.encode_ms, t.decode_ms
        );
    }
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
