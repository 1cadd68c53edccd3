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

use aurl::burn::module::Module;
use aurl::burn::prelude::Device;
use aurl::core::metrics::{self, NgramModel};
use aurl::core::tokenize::{Grammar, Vocabulary};
use aurl::data::audio::{RenderOptions, SOUNDFONT_HINT, SoundFont, render};
use aurl::model::Transformer;
use aurl::model::VaeGan;
use aurl::model::train::{
    Checkpointing, MetricsLog, SampleCheck, TokenWindows, TrainModel, TrainReport, Trainer,
    latest_checkpoint, load_checkpoint_as,
};
use aurl::model::vae::{LatentRng, Vae};
use aurl::model::weights::save_model_as;
use aurl::run::budget::{plan_budget, step_seconds};
use aurl::run::{ModelMode, RunConfig, RunData, bundled_chorales};
use aurl::sampling::{Generated, GenerationConfig, Generator, Request, write_piece};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// mimalloc instead of the system allocator: a decoding or training step allocates and frees
/// many tensors, and glibc's heap trimming then faults the pages back in (measured in the
/// README's sampling table).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The main job's config (`configs/chorales.toml`), compiled in so the example finds it
/// from any working directory.
const MAIN_JOB: &str = include_str!("../configs/chorales.toml");

/// The main job's default time budget in minutes.
const DEFAULT_MINUTES: f64 = 5.0;

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let started = std::time::Instant::now();
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
    let mut overrides = args.overrides.clone();
    if let Some(steps) = args.steps {
        overrides.push(format!("train.steps={steps}"));
    }
    if let Some(seed) = args.seed {
        overrides.push(format!("train.seed={seed}"));
    }
    let mut config = match (&args.resume, &args.config) {
        (Some(run), _) => RunConfig::from_file(&run.join("config.toml"), &overrides)?,
        (None, Some(path)) => RunConfig::from_file(path, &overrides)?,
        (None, None) => RunConfig::from_toml_str(MAIN_JOB, &overrides)?,
    };
    if !args.data.is_empty() {
        config.data.paths.clone_from(&args.data);
    } else if config.data.paths.is_empty() {
        // No paths (the main job's config): the bundled chorales, with their split.
        let corpus = bundled_chorales()?;
        config.data.paths = vec![corpus.root];
        config.data.split_file.get_or_insert(corpus.split_file);
    }
    let device = match &args.backend {
        Some(name) => aurl::backend::device(name)?,
        None => aurl::backend::default_device(),
    };

    let tokenizer = config.scheme.tokenizer(&config.tokenizer)?;
    let vocab = tokenizer.vocab().clone();
    eprintln!("reading and tokenizing {:?} ...", config.data.paths);
    // Tokens come from the token cache, read on demand, when the config names one (memory
    // then does not grow with the corpus); scores stay in memory only when epochs are
    // augmented.
    let data = RunData::load(&config, tokenizer.as_ref())?;
    if let Some(r) = &data.cache_report {
        eprintln!(
            "token cache {}: {} files cached, {} tokenized now",
            r.cache_dir.display(),
            r.cached,
            r.tokenized
        );
    }
    if data.train.count() == 0 {
        return Err(format!(
            "no usable MIDI file under {:?} ({} found, {} failed)",
            config.data.paths,
            data.files,
            data.failed.len()
        )
        .into());
    }
    let model_config = config.model.resolve(&vocab)?;
    let seq_len = model_config.max_seq_len;
    let stride = if config.data.stride == 0 {
        (seq_len / 2).max(1)
    } else {
        config.data.stride
    };
    let train_windows = data.train_windows(seq_len, stride, &vocab);
    if let Some(epochs) = args.epochs {
        if !(epochs.is_finite() && epochs > 0.0) {
            return Err(format!("--epochs {epochs}: must be a positive number").into());
        }
        let per_step = (config.train.batch_size * config.train.grad_accumulation).max(1);
        let windows = epochs * train_windows.count() as f64;
        config.train.steps = ((windows / per_step as f64).ceil() as usize).max(1);
        eprintln!(
            "{epochs} epochs of {} windows: {} steps",
            train_windows.count(),
            config.train.steps
        );
    }
    // With augmentation on, every epoch re-tokenizes an augmented copy of the training
    // scores; with a curriculum, its windows have the epoch's length. Both are pure
    // functions of the seed and the epoch, so --resume sees the same data.
    let curriculum = config.data.curriculum;
    let epoch_windows = |epoch: u64| {
        let len = curriculum.map_or(seq_len, |c| c.len_at(epoch, seq_len));
        let stride = if config.data.stride == 0 {
            (len / 2).max(1)
        } else {
            config.data.stride.min(len)
        };
        let Some(scores) = data.scores.as_ref() else {
            return data.train_windows(len, stride, &vocab);
        };
        let seed = config.train.seed;
        let sequences: Vec<_> = scores
            .augmented_train(tokenizer.as_ref(), &config.augment, seed, epoch)
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.framed(&vocab))
            .collect();
        TokenWindows::with_headers(&sequences, len, stride, &vocab)
    };
    let valid_windows = data.valid_windows(seq_len, &vocab);
    eprintln!(
        "{} files: {} train ({} tokens, {} windows), {} valid ({} tokens), {} skipped",
        data.files,
        data.train.count(),
        data.train.total_tokens(),
        train_windows.count(),
        data.valid.count(),
        data.valid.total_tokens(),
        data.failed.len()
    );

    if let Some(minutes) = minutes {
        let deadline = started + std::time::Duration::from_secs_f64(minutes * 60.0);
        let windows = (&train_windows, &valid_windows);
        let step = match config.model.mode {
            ModelMode::Transformer => {
                step_seconds::<Transformer>(&config, &model_config, &vocab, windows, &device)?
            }
            ModelMode::Vae => {
                let vae = config.model.resolve_vae(&vocab)?;
                step_seconds::<Vae>(&config, &vae, &vocab, windows, &device)?
            }
            ModelMode::VaeGan => {
                let vae_gan = config.model.resolve_vae_gan(&vocab)?;
                step_seconds::<VaeGan>(&config, &vae_gan, &vocab, windows, &device)?
            }
        };
        let left = deadline
            .saturating_duration_since(std::time::Instant::now())
            .as_secs_f64();
        let plan = plan_budget(&config, left, step, valid_windows.count());
        eprintln!(
            "{minutes} minute budget: {} steps of {:.2} s planned ({:.0} s of training, the \
             rest for validation, samples and audio)",
            plan.steps, step, plan.train_seconds
        );
        config.train.steps = plan.steps;
        config.train.max_seconds = Some(plan.train_seconds);
        if config.train.eval_every > plan.steps {
            config.train.eval_every = 0;
        }
    }

    let fit = Fit {
        args,
        config: &config,
        vocab: &vocab,
        train: &train_windows,
        valid: &valid_windows,
        per_epoch: &epoch_windows,
        device: &device,
        seq_len,
    };
    let samples_config = GenerationConfig {
        strategy: config.sample.strategy.clone(),
        constrained: config.sample.constrained,
        batch_size: config.sample.count.max(1),
        min_new_tokens: config.sample.min_tokens,
        // Pieces longer than a training window slide it, as the model was trained.
        context: (config.model.mode == ModelMode::Transformer).then_some(seq_len),
        workers: aurl::backend::decode_workers(args.backend.as_deref()),
        ..GenerationConfig::default()
    };
    let requests: Vec<Request> = (0..config.sample.count as u64)
        .map(|i| Request {
            prompt: vec![],
            max_new_tokens: config.sample.tokens,
            max_bars: config.sample.bars,
            seed: config.train.seed.wrapping_add(i),
            ..Request::default()
        })
        .collect();
    // Every `train.sample_every` steps: a few short pieces sampled without the grammar mask
    // (the model's own validity), checked against the grammar.
    let grammar = Grammar::new(&vocab);
    let check_config = GenerationConfig {
        constrained: false,
        ..samples_config.clone()
    };
    let check_requests: Vec<Request> = requests
        .iter()
        .map(|r| Request {
            max_new_tokens: r.max_new_tokens.min(seq_len.saturating_sub(1)).max(1),
            ..r.clone()
        })
        .collect();
    let check = |pieces: Result<Vec<Generated>, _>| -> Option<SampleCheck> {
        let tokens: Vec<Vec<u16>> = pieces.ok()?.into_iter().map(|p| p.tokens).collect();
        Some(SampleCheck::of(&grammar, &tokens))
    };
    let (dir, report, parameters, pieces) = match config.model.mode {
        ModelMode::Transformer => {
            let sample = |m: &Transformer| {
                let generator = Generator::new(m, &vocab, check_config.clone()).ok()?;
                check(generator.generate(&check_requests))
            };
            let (dir, model, report) = fit.run::<Transformer>(&model_config, sample)?;
            let generator = Generator::new(&model, &vocab, samples_config)?;
            (
                dir,
                report,
                model.num_params(),
                generator.generate(&requests)?,
            )
        }
        ModelMode::Vae | ModelMode::VaeGan => {
            // Requests decoding codes drawn from the prior (the same codes every time).
            let from_prior = |m: &Vae, requests: &[Request]| -> Vec<Request> {
                let mut rng = LatentRng::new(config.train.seed);
                let codes = m.sample_prior(requests.len(), &mut rng, &device).to_rows();
                requests
                    .iter()
                    .zip(codes)
                    .map(|(r, code)| Request {
                        latent: Some(code),
                        ..r.clone()
                    })
                    .collect()
            };
            let sample = |m: &Vae| {
                let generator = Generator::conditioned(m, &vocab, check_config.clone()).ok()?;
                check(generator.generate(&from_prior(m, &check_requests)))
            };
            let (dir, vae, report, parameters) = if config.model.mode == ModelMode::Vae {
                let (dir, vae, report) =
                    fit.run::<Vae>(&config.model.resolve_vae(&vocab)?, sample)?;
                let parameters = vae.num_params();
                (dir, vae, report, parameters)
            } else {
                let (dir, model, report) = fit
                    .run::<VaeGan>(&config.model.resolve_vae_gan(&vocab)?, |m: &VaeGan| {
                        sample(m.vae())
                    })?;
                let parameters = model.num_params();
                (dir, model.into_parts().0, report, parameters)
            };
            let generator = Generator::conditioned(&vae, &vocab, samples_config)?;
            (
                dir,
                report,
                parameters,
                generator.generate(&from_prior(&vae, &requests))?,
            )
        }
    };
    let samples_dir = dir.join("samples");
    std::fs::create_dir_all(&samples_dir)?;
    // A SoundFont problem costs the audio, never the run.
    let font = SoundFont::locate(args.soundfont.as_deref()).unwrap_or_else(|e| {
        eprintln!("warning: {e}: no audio");
        None
    });
    if font.is_none() {
        eprintln!("{SOUNDFONT_HINT}");
    }
    let mut summaries = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let path = samples_dir.join(format!("sample_{i:02}.mid"));
        let summary = write_piece(piece, tokenizer.as_ref(), &path)?;
        let (score, _) = tokenizer.decode(&piece.tokens);
        let roll = path.with_extension("png");
        let title = format!(
            "sample {i}: {} notes, {} tracks",
            summary.notes, summary.tracks
        );
        aurl::evaluate::plot::piano_roll_png(&roll, &title, &score, 64)?;
        let wav = font.as_ref().and_then(|font| {
            let wav = path.with_extension("wav");
            let written = render(&score, font, &RenderOptions::default())
                .and_then(|audio| audio.write_wav(&wav));
            match written {
                Ok(()) => Some(wav),
                Err(e) => {
                    eprintln!("warning: {}: {e}", wav.display());
                    None
                }
            }
        });
        eprintln!(
            "wrote {} ({} notes in {} tracks, {:.1} s, {} grammar errors){}",
            path.display(),
            summary.notes,
            summary.tracks,
            summary.seconds,
            summary.grammar_errors,
            if wav.is_some() {
                ", .png, .wav"
            } else {
                ", .png"
            }
        );
        summaries
            .push(json!({ "file": path, "piano_roll": roll, "audio": wav, "summary": summary }));
    }
    // Bits per note: total validation NLL in bits over the notes of the validation files
    // (tokenization-independent, so schemes and tools compare).
    let valid_indices: Vec<usize> = (0..valid_windows.count()).collect();
    let predicted = valid_windows.target_tokens(&valid_indices);
    // (A VAE's validation figure is a reconstruction NLL given the piece's own code: not a
    // likelihood of the piece, so no bits per note.)
    let is_lm = config.model.mode == ModelMode::Transformer;
    let bits_per_note = report
        .valid_nll
        .filter(|_| is_lm)
        .and_then(|nll| metrics::bits_per_note(nll * predicted as f64, data.valid_notes));
    // (The n-gram baseline holds the corpus's ids while it is counted.)
    let ngram = (config.data.ngram_baseline > 0 && data.valid.count() > 0).then(|| {
        let model = NgramModel::train(
            &RunData::ids(data.train.as_ref()),
            config.data.ngram_baseline,
            vocab.len(),
        );
        let score = model.score(&RunData::ids(data.valid.as_ref()));
        let bits = metrics::bits_per_note(score.nll, data.valid_notes);
        json!({
            "order": config.data.ngram_baseline,
            "valid_nll": score.nll_per_token(),
            "valid_predicted_tokens": score.tokens,
            "valid_bits_per_note": bits,
        })
    });
    if let Some(n) = &ngram {
        eprintln!(
            "{}-gram baseline: valid NLL {:.3} nats/token, {} bits/note",
            config.data.ngram_baseline,
            n["valid_nll"].as_f64().unwrap_or(f64::NAN),
            n["valid_bits_per_note"]
                .as_f64()
                .map_or("n/a".to_owned(), |v| format!("{v:.2}"))
        );
    }
    let report = json!({
        "corpus": {
            "files": data.files,
            "failed": data.failed.iter().map(|(p, r)| json!({"path": p, "reason": r})).collect::<Vec<_>>(),
            "train_files": data.train.count(),
            "valid_files": data.valid.count(),
            "train_tokens": data.train.total_tokens(),
            "valid_tokens": data.valid.total_tokens(),
            "train_windows": train_windows.count(),
            "valid_windows": valid_windows.count(),
        },
        "parameters": parameters,
        "training": report,
        "valid_figure": if is_lm { "nll" } else { "reconstruction_nll" },
        "valid_predicted_tokens": predicted,
        "valid_notes": data.valid_notes,
        "valid_bits_per_note": bits_per_note,
        "ngram_baseline": ngram,
        "samples": summaries,
    });
    std::fs::write(dir.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
    eprintln!(
        "done in {:.1} s: final loss {:.3}, valid NLL {} ({} bits/note), {:.0} train tok/s → {}",
        report["training"]["seconds"].as_f64().unwrap_or(0.0),
        report["training"]["final_loss"]
            .as_f64()
            .unwrap_or(f64::NAN),
        report["training"]["valid_nll"]
            .as_f64()
            .map_or("n/a".to_owned(), |v| format!("{v:.3}")),
        bits_per_note.map_or("n/a".to_owned(), |v| format!("{v:.2}")),
        report["training"]["tokens_per_second"]
            .as_f64()
            .unwrap_or(0.0),
        dir.display()
    );
    Ok(())
}

/// Everything a training run needs besides the model's kind and config.
struct Fit<'a> {
    args: &'a Args,
    config: &'a RunConfig,
    vocab: &'a Vocabulary,
    train: &'a TokenWindows,
    valid: &'a TokenWindows,
    /// The training windows of an epoch (augmented and/or curriculum-length).
    per_epoch: &'a (dyn Fn(u64) -> TokenWindows + Sync),
    device: &'a Device,
    seq_len: usize,
}

impl Fit<'_> {
    /// Creates the run directory (or resumes the one given), trains a model of kind `M`
    /// configured by `model_config`, draws `loss.png` and saves the model in `model/`.
    fn run<M: TrainModel>(
        &self,
        model_config: &M::Config,
        sample: impl FnMut(&M) -> Option<SampleCheck>,
    ) -> Result<(PathBuf, M, TrainReport), Box<dyn std::error::Error>> {
        let (args, config, vocab) = (self.args, self.config, self.vocab);
        let train_device = self.device.clone().autodiff();
        let (dir, model, resume, mut metrics) = match &args.resume {
            Some(run) => {
                let Some(latest) = latest_checkpoint(&run.join("checkpoints"))? else {
                    return Err(format!("{}: no checkpoint to resume from", run.display()).into());
                };
                let r = load_checkpoint_as::<M>(&latest, &train_device)?;
                r.vocabulary.ensure_same(vocab)?;
                if &r.config != model_config {
                    return Err(format!(
                        "{}: the checkpoint's model config differs from config.toml's",
                        latest.display()
                    )
                    .into());
                }
                eprintln!("resuming from {} (step {})", latest.display(), r.state.step);
                // Records the killed run logged after its checkpoint are dropped.
                let metrics = MetricsLog::resume(&run.join("metrics.jsonl"), r.state.step)?;
                let (model, resume) = r.into_resume();
                (run.clone(), model, Some(resume), metrics)
            }
            None => {
                let dir = config.create_run_dir(&args.out, args.name.as_deref())?;
                std::fs::write(dir.join("config.toml"), config.to_toml()?)?;
                std::fs::write(dir.join("vocab.json"), serde_json::to_vec_pretty(vocab)?)?;
                train_device.seed(config.train.seed);
                let model = M::build(model_config, &train_device)?;
                let metrics = MetricsLog::create(&dir.join("metrics.jsonl"))?;
                (dir, model, None, metrics)
            }
        };
        init_logging(&dir)?;
        eprintln!(
            "{} model: {} parameters ({:?} preset) on {:?}; training {} steps of {}×{}",
            M::KIND,
            model.num_params(),
            config.model.preset,
            self.device,
            config.train.steps,
            config.train.batch_size,
            self.seq_len
        );
        let mut trainer = Trainer::new(&config.train, self.train, self.valid).with_grammar(vocab);
        if !config.augment.is_off() {
            eprintln!("augmenting the training files anew every epoch");
        }
        if let Some(c) = config.data.curriculum {
            eprintln!(
                "curriculum: windows of {} tokens, doubled every {} epochs up to {}",
                c.start, c.every, self.seq_len
            );
        }
        if !config.augment.is_off() || config.data.curriculum.is_some() {
            trainer = trainer.with_epoch_windows(self.per_epoch);
        }
        let trainer = trainer.with_checkpoints(Checkpointing {
            dir: dir.join("checkpoints"),
            every: config.train.checkpoint_every,
            keep_last: config.train.keep_checkpoints,
            config: model_config,
            vocabulary: vocab,
        });
        let bar = progress(config.train.steps as u64);
        let mut log_error = None;
        let (model, report) = trainer.run_sampled(
            model,
            resume,
            |m| {
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
                if let Some(c) = &m.samples {
                    bar.println(format!(
                        "step {}: unconstrained samples {:.1}% grammar errors, {:.1}% notes paired",
                        m.step,
                        100.0 * c.grammar_error_rate,
                        100.0 * c.note_pairing_rate
                    ));
                }
            },
            sample,
        )?;
        bar.finish_and_clear();
        if let Some(e) = log_error {
            return Err(e.into());
        }
        write_loss_png(&dir)?;
        let model = model.valid();
        save_model_as(&dir.join("model"), &model, model_config, vocab)?;
        Ok((dir, model, report))
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

/// `loss.png`: the training loss per step and the validation NLL, from `metrics.jsonl`
/// (the whole run, resumed parts included).
fn write_loss_png(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    use aurl::evaluate::plot::{Curve, curves_png};
    let text = std::fs::read_to_string(dir.join("metrics.jsonl"))?;
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let Ok(m) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let step = m["step"].as_f64().unwrap_or(f64::NAN);
        if let Some(loss) = m["loss"].as_f64() {
            train.push((step, loss));
        }
        if let Some(nll) = m["valid_nll"].as_f64() {
            valid.push((step, nll));
        }
    }
    let curves = [
        Curve {
            name: "train loss",
            points: &train,
        },
        Curve {
            name: "valid nll",
            points: &valid,
        },
    ];
    curves_png(&dir.join("loss.png"), "loss (nats/token)", "step", &curves)?;
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
