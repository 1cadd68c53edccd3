//! Train a model on a folder of MIDI files and write generated pieces.
//!
//! With no arguments it trains the `small` model on the bundled Bach chorales (`corpus/`,
//! found from the `aurl` package's directory, so any working directory will do) for about
//! five minutes (`--minutes N` to change it) with the config of `configs/chorales.toml`, and
//! writes `runs/<name>/`: `config.toml`, `vocab.json`, `model/` (weights with their config
//! and vocabulary), `metrics.jsonl`, `loss.png`, `report.json`, and per sample a MIDI file,
//! a piano roll (`.png`) and, when a General MIDI SoundFont is installed, a WAV rendering.
//!
//! A run writes a checkpoint every `train.checkpoint_every` steps; `--resume runs/<name>`
//! continues a killed run exactly where its latest checkpoint left it.
//!
//! `model.mode = "vae"` (see `configs/vae.toml`) trains a transformer VAE instead: same
//! loop, checkpoints and files, samples decoded from codes drawn from its prior.
//!
//! ```text
//! cargo run --release --example train
//! cargo run --release --example train -- --minutes 30
//! cargo run --release --example train -- --data ~/midi --config configs/small.toml \
//!     --set train.steps=20000 --set train.learning_rate=5e-4 --backend flex
//! ```

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aurl::data::audio::{SOUNDFONT_HINT, SoundFont};
use aurl::model::train::StepMetrics;
use aurl::model::train::distributed::Collective;
use aurl::run::{Job, RunConfig, RunDir};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

/// mimalloc, keeping freed memory for the next step.
#[path = "support/alloc.rs"]
mod alloc;

/// Train a music model and generate from it.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Run configuration (TOML); by default `configs/chorales.toml` (compiled in): the
    /// small model with voices kept apart, on the bundled chorales.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Folders or files of MIDI to train on (replaces `data.paths`; by default, with no
    /// `--config`, the bundled chorales and their split).
    #[arg(long)]
    data: Vec<PathBuf>,
    /// Time budget in minutes, from start to the last file written: `train.steps` is planned
    /// from the speed of a few probe steps (the learning-rate schedule follows it) and
    /// training stops at the budget. 5 by default when neither `--config`, `--resume`,
    /// `--steps` nor `--epochs` is given; otherwise the config's steps rule.
    #[arg(long, conflicts_with_all = ["steps", "epochs", "resume"])]
    minutes: Option<f64>,
    /// SoundFont (.sf2) the samples are rendered with (default: `AURL_SOUNDFONT`, then the
    /// usual system files); without one, no WAV is written.
    #[arg(long)]
    soundfont: Option<PathBuf>,
    /// Where run directories are created.
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Run name (default: preset, scheme and seed); an existing run is never overwritten.
    #[arg(long)]
    name: Option<String>,
    /// Optimizer steps (replaces `train.steps`).
    #[arg(long, conflicts_with = "epochs")]
    steps: Option<usize>,
    /// Train this many passes over the training windows instead (sets `train.steps` from
    /// the window count, the batch size and gradient accumulation; with augmentation, from
    /// the unaugmented count).
    #[arg(long)]
    epochs: Option<f64>,
    /// Seed of weights, batch order and sampling (replaces `train.seed`).
    #[arg(long)]
    seed: Option<u64>,
    /// Backend: one of those compiled in (flex by default; ndarray, wgpu, cuda by feature).
    #[arg(long)]
    backend: Option<String>,
    /// Continue the run in this directory from its latest checkpoint (its `config.toml` is
    /// used, with any `--set`/`--steps` applied, e.g. to train longer).
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["config", "name"])]
    resume: Option<PathBuf>,
    /// Override any config value, e.g. `--set train.learning_rate=3e-4`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
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

/// The main job's default time budget in minutes.
const DEFAULT_MINUTES: f64 = 5.0;

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    // The main job: no config file of the user's (the compiled-in chorales config).
    let main_job = args.config.is_none() && args.resume.is_none();
    let minutes = args.minutes.or_else(|| {
        (main_job && args.steps.is_none() && args.epochs.is_none()).then_some(DEFAULT_MINUTES)
    });
    if let Some(m) = minutes
        && !(m.is_finite() && m > 0.0)
    {
        return Err(format!("--minutes {m}: must be a positive number").into());
    }
    let device = match &args.backend {
        Some(name) => aurl::backend::device(name)?,
        None => aurl::backend::default_device(),
    };
    let config = config(args)?;
    // Under `mpirun` (feature `mpi`) this process is one rank; rank 0 alone writes.
    #[cfg(feature = "mpi")]
    let mpi = aurl::mpi::Mpi::init(Duration::from_secs_f64(config.train.distributed.timeout_s))?;
    #[cfg(feature = "mpi")]
    let ranks: Option<&dyn Collective> = Some(&mpi);
    #[cfg(not(feature = "mpi"))]
    let ranks: Option<&dyn Collective> = None;
    let rank = ranks.map_or(0, Collective::rank);
    if rank == 0 {
        eprintln!("reading and tokenizing {:?} ...", config.data.paths);
        if ranks.is_some_and(|r| r.world() > 1) && config.data.cache.is_none() {
            eprintln!(
                "note: without data.cache every rank tokenizes the whole corpus; with it the \
                 ranks share the work and the memory-mapped tokens"
            );
        }
    }
    let mut job = Job::load_on(config, device, ranks)?;
    if rank == 0 {
        eprintln!("{}", job.describe_data());
    }
    if let Some(epochs) = args.epochs {
        let steps = job.set_epochs(epochs)?;
        eprintln!(
            "{epochs} epochs of {} windows: {steps} steps",
            job.train.count()
        );
    }
    if let Some(minutes) = minutes {
        let deadline = started + Duration::from_secs_f64(minutes * 60.0);
        let left = deadline.saturating_duration_since(Instant::now());
        let (plan, step) = job.plan_minutes(left.as_secs_f64())?;
        if let Some(ranks) = ranks {
            // Every rank runs rank 0's plan (its clock also decides when time is up).
            let mut steps = [job.config.train.steps as f32];
            ranks.broadcast_f32(&mut steps, 0)?;
            job.config.train.steps = steps[0] as usize;
        }
        eprintln!(
            "{minutes} minute budget: {} steps of {step:.2} s planned ({:.0} s of training, \
             the rest for validation, samples and audio)",
            plan.steps, plan.train_seconds
        );
    }

    let dir = match &args.resume {
        Some(run) => RunDir::resume(run)?,
        None if rank == 0 => RunDir::create(&job, &args.out, args.name.as_deref())?,
        // The other ranks write nothing: their directory is never created.
        None => RunDir {
            path: args.out.join(format!(".rank-{rank}")),
            resume_from: None,
        },
    };
    if let Some(checkpoint) = &dir.resume_from {
        eprintln!("resuming from {}", checkpoint.display());
    }
    if rank > 0 {
        let trained = job.train_on(&dir, ranks, |_| {})?;
        eprintln!("rank {rank}: {} steps", trained.report.steps);
        return Ok(());
    }
    init_logging(&dir.path)?;
    eprintln!("{}", job.describe_training());
    let bar = progress(job.config.train.steps as u64);
    let trained = job.train_on(&dir, ranks, |m| show_step(&bar, m))?;
    bar.finish_and_clear();

    let workers = aurl::backend::decode_workers(args.backend.as_deref());
    let pieces = job.generate(&trained, workers)?;
    // A SoundFont problem costs the audio, never the run.
    let font = SoundFont::locate(args.soundfont.as_deref()).unwrap_or_else(|e| {
        eprintln!("warning: {e}: no audio");
        None
    });
    if font.is_none() {
        eprintln!("{SOUNDFONT_HINT}");
    }
    let samples = job.write_samples(&trained.dir, &pieces, font.as_ref())?;
    for sample in &samples {
        eprintln!("wrote {sample}");
    }
    let report = job.report(&trained, &samples);
    report.write(&trained.dir)?;
    if let Some(baseline) = &report.ngram {
        eprintln!("{baseline}");
    }
    eprintln!("{}", report.describe(&trained));
    Ok(())
}

/// The run's config: the resumed run's, the `--config` file's or the main job's, with the
/// command line's overrides and data paths.
fn config(args: &Args) -> Result<RunConfig, Box<dyn std::error::Error>> {
    let mut overrides = args.overrides.clone();
    overrides.extend(args.steps.map(|steps| format!("train.steps={steps}")));
    overrides.extend(args.seed.map(|seed| format!("train.seed={seed}")));
    let mut config = match (&args.resume, &args.config) {
        (Some(run), _) => RunConfig::from_file(&run.join("config.toml"), &overrides)?,
        (None, Some(path)) => RunConfig::from_file(path, &overrides)?,
        (None, None) => RunConfig::main_job(&overrides)?,
    };
    config.use_data(&args.data)?;
    Ok(config)
}

fn show_step(bar: &ProgressBar, m: &StepMetrics) {
    bar.set_position(m.step as u64);
    bar.set_message(format!(
        "loss {:.3}, {:.0} tok/s",
        m.loss, m.tokens_per_second
    ));
    if let Some(v) = m.valid_nll {
        bar.println(format!("step {}: valid NLL {v:.3} nats/token", m.step));
    }
    if let Some(check) = &m.samples {
        bar.println(format!("step {}: unconstrained samples {check}", m.step));
    }
}

/// Logs: `train.log` in the run directory gets INFO and above (`AURL_LOG=debug` for more),
/// appended across resumes; stderr gets warnings and errors (bad steps, rollbacks).
fn init_logging(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::prelude::*;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("train.log"))?;
    let level = std::env::var("AURL_LOG")
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false)
                .with_filter(level),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(LevelFilter::WARN),
        )
        .try_init()?;
    Ok(())
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
