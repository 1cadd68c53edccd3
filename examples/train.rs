//! Train a model on a folder of MIDI files and write generated pieces.
//!
//! With no arguments it trains the `tiny` model on the bundled `fixtures/` on the default
//! CPU backend and writes `runs/<name>/`: `config.toml`, `vocab.json`, `model/` (weights with
//! their config and vocabulary), `metrics.jsonl`, `report.json` and `samples/*.mid`.
//!
//! ```text
//! cargo run --release --example train
//! cargo run --release --example train -- --data ~/midi --config configs/small.toml \
//!     --set train.steps=20000 --set train.learning_rate=5e-4 --backend flex
//! ```

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aurl::core::tokenize::{Token, by_name};
use aurl::data::corpus::tokenize_corpus;
use aurl::model::train::{MetricsLog, TokenWindows, train};
use aurl::model::weights::save_model;
use aurl::run::RunConfig;
use aurl::sampling::{GenerationConfig, Generator, Request, write_piece};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// Train a music model and generate from it.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Run configuration (TOML); defaults give the tiny model on `fixtures/`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Folders or files of MIDI to train on (replaces `data.paths`).
    #[arg(long)]
    data: Vec<PathBuf>,
    /// Where run directories are created.
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Run name (default: preset, scheme and seed); an existing run is never overwritten.
    #[arg(long)]
    name: Option<String>,
    /// Optimizer steps (replaces `train.steps`).
    #[arg(long)]
    steps: Option<usize>,
    /// Seed of weights, batch order and sampling (replaces `train.seed`).
    #[arg(long)]
    seed: Option<u64>,
    /// Backend: one of those compiled in (flex by default; ndarray, wgpu, cuda by feature).
    #[arg(long)]
    backend: Option<String>,
    /// Override any config value, e.g. `--set train.learning_rate=3e-4`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut overrides = args.overrides.clone();
    if let Some(steps) = args.steps {
        overrides.push(format!("train.steps={steps}"));
    }
    if let Some(seed) = args.seed {
        overrides.push(format!("train.seed={seed}"));
    }
    let mut config = match &args.config {
        Some(path) => RunConfig::from_file(path, &overrides)?,
        None => RunConfig::from_toml_str("", &overrides)?,
    };
    if !args.data.is_empty() {
        config.data.paths.clone_from(&args.data);
    }
    let device = match &args.backend {
        Some(name) => aurl::backend::device(name)?,
        None => aurl::backend::default_device(),
    };

    let tokenizer = by_name(config.scheme.name(), &config.tokenizer)?;
    let vocab = tokenizer.vocab().clone();
    eprintln!("reading and tokenizing {:?} ...", config.data.paths);
    let corpus = tokenize_corpus(
        &config.data.paths,
        tokenizer.as_ref(),
        config.data.valid_percent,
    );
    if corpus.train.is_empty() {
        return Err(format!(
            "no usable MIDI file under {:?} ({} found, {} failed)",
            config.data.paths,
            corpus.files,
            corpus.failed.len()
        )
        .into());
    }
    let model_config = config.model.resolve(vocab.len());
    let pad = vocab.id(Token::Pad).unwrap_or(0);
    let seq_len = model_config.max_seq_len;
    let stride = if config.data.stride == 0 {
        (seq_len / 2).max(1)
    } else {
        config.data.stride
    };
    let train_windows = TokenWindows::new(&corpus.train, seq_len, stride, pad);
    let valid_windows = TokenWindows::new(&corpus.valid, seq_len, seq_len, pad);
    eprintln!(
        "{} files: {} train ({} tokens, {} windows), {} valid ({} tokens), {} skipped",
        corpus.files,
        corpus.train.len(),
        corpus.train_tokens(),
        train_windows.count(),
        corpus.valid.len(),
        corpus.valid_tokens(),
        corpus.failed.len()
    );

    let dir = run_dir(&args.out, args.name.as_deref(), &config)?;
    std::fs::write(dir.join("config.toml"), config.to_toml()?)?;
    std::fs::write(dir.join("vocab.json"), serde_json::to_vec_pretty(&vocab)?)?;

    let train_device = device.clone().autodiff();
    train_device.seed(config.train.seed);
    let model = model_config.init(&train_device)?;
    eprintln!(
        "model: {} parameters ({:?} preset) on {device:?}; training {} steps of {}×{}",
        burn_params(&model),
        config.model.preset,
        config.train.steps,
        config.train.batch_size,
        seq_len
    );
    let mut metrics = MetricsLog::create(&dir.join("metrics.jsonl"))?;
    let bar = progress(config.train.steps as u64);
    let mut log_error = None;
    let (model, report) = train(model, &config.train, &train_windows, &valid_windows, |m| {
        if let Err(e) = metrics.write(m) {
            log_error.get_or_insert(e);
        }
        bar.set_position(m.step as u64);
        bar.set_message(format!(
            "loss {:.3}, {:.0} tok/s",
            m.loss, m.tokens_per_second
        ));
        if let Some(v) = m.valid_nll {
            bar.println(format!("step {}: valid NLL {v:.3} nats/token", m.step));
        }
    })?;
    bar.finish_and_clear();
    if let Some(e) = log_error {
        return Err(e.into());
    }
    let model = aurl::burn::module::Module::valid(&model);
    save_model(&dir.join("model"), &model, &model_config, &vocab)?;

    let samples_dir = dir.join("samples");
    std::fs::create_dir_all(&samples_dir)?;
    let generator = Generator::new(
        &model,
        &vocab,
        GenerationConfig {
            strategy: config.sample.strategy.clone(),
            constrained: config.sample.constrained,
            batch_size: config.sample.count.max(1),
        },
    )?;
    let requests: Vec<Request> = (0..config.sample.count as u64)
        .map(|i| Request {
            prompt: vec![],
            max_new_tokens: config.sample.tokens,
            seed: config.train.seed.wrapping_add(i),
        })
        .collect();
    let pieces = generator.generate(&requests)?;
    let mut summaries = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let path = samples_dir.join(format!("sample_{i:02}.mid"));
        let summary = write_piece(piece, tokenizer.as_ref(), &path)?;
        eprintln!(
            "wrote {} ({} notes, {:.1} s, {} grammar errors)",
            path.display(),
            summary.notes,
            summary.seconds,
            summary.grammar_errors
        );
        summaries.push(json!({ "file": path, "summary": summary }));
    }
    let report = json!({
        "corpus": {
            "files": corpus.files,
            "failed": corpus.failed.iter().map(|(p, r)| json!({"path": p, "reason": r})).collect::<Vec<_>>(),
            "train_files": corpus.train.len(),
            "valid_files": corpus.valid.len(),
            "train_tokens": corpus.train_tokens(),
            "valid_tokens": corpus.valid_tokens(),
            "train_windows": train_windows.count(),
            "valid_windows": valid_windows.count(),
        },
        "parameters": burn_params(&model),
        "training": report,
        "samples": summaries,
    });
    std::fs::write(dir.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
    eprintln!(
        "done in {:.1} s: final loss {:.3}, valid NLL {}, {:.0} train tok/s → {}",
        report["training"]["seconds"].as_f64().unwrap_or(0.0),
        report["training"]["final_loss"]
            .as_f64()
            .unwrap_or(f64::NAN),
        report["training"]["valid_nll"]
            .as_f64()
            .map_or("n/a".to_owned(), |v| format!("{v:.3}")),
        report["training"]["tokens_per_second"]
            .as_f64()
            .unwrap_or(0.0),
        dir.display()
    );
    Ok(())
}

fn burn_params(model: &aurl::model::Transformer) -> usize {
    aurl::burn::module::Module::num_params(model)
}

/// A fresh run directory: `<out>/<name>`, with `-2`, `-3`, … appended if it exists.
fn run_dir(out: &Path, name: Option<&str>, config: &RunConfig) -> std::io::Result<PathBuf> {
    let base = name.map_or_else(
        || {
            format!(
                "{:?}-{}-seed{}",
                config.model.preset,
                config.scheme.name(),
                config.train.seed
            )
            .to_lowercase()
        },
        str::to_owned,
    );
    std::fs::create_dir_all(out)?;
    let mut n = 1;
    loop {
        let candidate = if n == 1 {
            out.join(&base)
        } else {
            out.join(format!("{base}-{n}"))
        };
        match std::fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(e),
        }
    }
}

fn progress(steps: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps, ETA {eta} — {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
