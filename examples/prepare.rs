//! Build or refresh the on-disk token cache of a MIDI corpus and print a corpus report.
//!
//! ```text
//! cargo run --release --example prepare -- ~/midi --cache ~/aurl-cache
//! cargo run --release --example prepare -- ~/midi --cache ~/aurl-cache --scheme all --json
//! cargo run --release --example prepare -- ~/midi --cache c --config configs/small.toml
//! ```
//!
//! The tokenizer, preprocessing, split and window length come from `--config` (a run
//! config, as `train` takes), with `--scheme`, `--seq-len` and `--stride` overriding it.
//! Files already cached (same bytes, same tokenizer and preprocessing) are not read again.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use aurl::core::tokenize::{SCHEMES, by_name};
use aurl::data::cache::{CacheOptions, CachedCorpus, build_cache};
use aurl::data::windows::TokenWindows;
use aurl::run::RunConfig;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// mimalloc, keeping freed memory for the next step.
#[path = "support/alloc.rs"]
mod alloc;

/// Tokenize a corpus into the token cache and report on it.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Files or folders of MIDI files (folders are walked recursively).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The cache root (created if missing).
    #[arg(long)]
    cache: PathBuf,
    /// A run config (tokenizer, preprocessing, split table, model context).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Tokenization scheme, or `all` (default: the config's). Repeatable.
    #[arg(long)]
    scheme: Vec<String>,
    /// Window length in tokens (default: the config's model context).
    #[arg(long)]
    seq_len: Option<usize>,
    /// Tokens between window starts (default: the config's, or half the window).
    #[arg(long)]
    stride: Option<usize>,
    /// Files per shard.
    #[arg(long, default_value_t = 1024)]
    shard_files: usize,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    alloc::keep_freed_memory();
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = match &args.config {
        Some(path) => RunConfig::from_file(path, &[])?,
        None => RunConfig::default(),
    };
    let mut schemes: Vec<String> = Vec::new();
    for s in &args.scheme {
        if s == "all" {
            schemes.extend(SCHEMES.iter().map(|s| (*s).to_owned()));
        } else {
            schemes.push(s.clone());
        }
    }
    if schemes.is_empty() {
        schemes.push(config.scheme.name().to_owned());
    }
    schemes.dedup();
    let rule = config.data.split_rule()?;
    let seq_len = args.seq_len.unwrap_or(config.model.seq_len()).max(1);
    let stride = match (args.stride, config.data.stride) {
        (Some(s), _) => s,
        (None, 0) => seq_len / 2,
        (None, s) => s,
    }
    .max(1);
    let options = CacheOptions {
        shard_files: args.shard_files.max(1),
        ..CacheOptions::new(&args.cache)
    };
    let mut reports = serde_json::Map::new();
    for scheme in &schemes {
        let tokenizer = by_name(scheme, &config.tokenizer)?;
        let files = aurl::data::audit::discover(&args.paths).files.len();
        let bar = progress(files as u64, scheme);
        let cached = build_cache(
            &args.paths,
            &rule,
            tokenizer.as_ref(),
            Some(&config.preprocess),
            &options,
            |done| bar.set_position(done as u64),
        )?;
        bar.finish_and_clear();
        let summary = summarize(&cached, seq_len, stride, tokenizer.vocab().len());
        if !args.json {
            print_report(scheme, &summary);
        }
        reports.insert(scheme.clone(), summary);
    }
    if args.json {
        let out = json!({
            "paths": args.paths,
            "cache": args.cache,
            "seq_len": seq_len,
            "stride": stride,
            "schemes": reports,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

/// The report of one scheme's cache as JSON: the build's figures plus windows and
/// truncation, from each file's length and bar starts (the tokens are not read).
fn summarize(
    cached: &CachedCorpus,
    seq_len: usize,
    stride: usize,
    vocab_size: usize,
) -> serde_json::Value {
    let r = &cached.report;
    let (mut windows, mut beyond, mut longest) = (0usize, 0usize, 0usize);
    for f in &cached.files {
        let Some((tokens, bars)) = f.key.and_then(|k| cached.cache.bars(k)) else {
            continue;
        };
        windows += TokenWindows::count_for(tokens, &bars, seq_len, stride);
        beyond += tokens.saturating_sub(seq_len + 1);
        longest = longest.max(tokens);
    }
    json!({
        "cache_dir": r.cache_dir,
        "vocab_size": vocab_size,
        "files": r.files,
        "cached": r.cached,
        "tokenized": r.tokenized,
        "shards_written": r.shards_written,
        "shards": r.shards,
        "damaged_shards": r.damaged_shards.iter().map(|(p, why)| json!({"path": p, "reason": why})).collect::<Vec<_>>(),
        "failed": r.failed.iter().map(|(p, why)| json!({"path": p, "reason": why})).collect::<Vec<_>>(),
        "train_files": r.train_files,
        "valid_files": r.valid_files,
        "notes": r.notes,
        "tokens": r.tokens,
        "tokens_per_note": r.tokens_per_note(),
        "longest_sequence": longest,
        "windows": windows,
        // Share of tokens a single window of seq_len per piece would cut off (the strided
        // windows above keep them all).
        "truncation_loss": if r.tokens == 0 { 0.0 } else { beyond as f64 / r.tokens as f64 },
        "seconds": r.seconds,
    })
}

fn print_report(scheme: &str, s: &serde_json::Value) {
    let n = |k: &str| s[k].as_u64().unwrap_or(0);
    let f = |k: &str| s[k].as_f64().unwrap_or(0.0);
    println!("{scheme} → {}", s["cache_dir"].as_str().unwrap_or(""));
    println!(
        "  files {} ({} cached, {} tokenized, {} failed); {} train / {} valid",
        n("files"),
        n("cached"),
        n("tokenized"),
        s["failed"].as_array().map_or(0, Vec::len),
        n("train_files"),
        n("valid_files")
    );
    println!(
        "  {} notes, {} tokens ({:.2} per note, longest piece {}), vocabulary {}",
        n("notes"),
        n("tokens"),
        f("tokens_per_note"),
        n("longest_sequence"),
        n("vocab_size")
    );
    println!(
        "  {} windows; one window per piece would cut {:.1}% of the tokens",
        n("windows"),
        100.0 * f("truncation_loss")
    );
    println!(
        "  {} shards ({} new, {} damaged and rebuilt) in {:.2} s",
        n("shards"),
        n("shards_written"),
        s["damaged_shards"].as_array().map_or(0, Vec::len),
        f("seconds")
    );
    if let Some(failed) = s["failed"].as_array() {
        for item in failed.iter().take(20) {
            println!(
                "  failed: {}: {}",
                item["path"].as_str().unwrap_or("?"),
                item["reason"].as_str().unwrap_or("?")
            );
        }
        if failed.len() > 20 {
            println!("  … and {} more (see --json)", failed.len() - 20);
        }
    }
}

fn progress(files: u64, scheme: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(files);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} files, ETA {eta} — {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(scheme.to_owned());
    bar
}
