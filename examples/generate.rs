//! Generate MIDI files from a trained run.
//!
//! ```text
//! cargo run --release --example generate -- --checkpoint runs/tiny-remi-seed42 --out out/
//! cargo run --release --example generate -- --checkpoint runs/x --prompt in.mid --count 8 \
//!     --tokens 1024 --temperature 0.9 --top-p 0.95
//! cargo run --release --example generate -- --checkpoint runs/x --tokens 4000 --bars 32 --seconds 60
//! ```
//!
//! Writes `piece_XX.mid` per piece and `summary.json` (tokens, notes, seconds, grammar
//! errors, tokens/s, median and 95th-percentile decoding-step latency) into `--out`.
//!
//! A VAE run (`model.mode = "vae"`) decodes each piece from a latent code drawn from its
//! prior (seeded by `--seed`), or, with `--interpolate A.mid B.mid`, from `--count` codes
//! along the spherical path between the two pieces' codes.

use std::path::PathBuf;
use std::process::ExitCode;

use aurl::data::audio::SoundFont;
use aurl::model::WeightFormat;
use aurl::model::any::load_any;
use aurl::model::weights::model_dir;
use aurl::run::{GenerationSummary, PieceFiles, write_pieces};
use aurl::sampling::{
    BarControl, BeamConfig, GenerationConfig, Generator, Request, Strategy, StreamStats,
    interpolation_from_midi, prompt_from_midi,
};
use clap::Parser;

/// mimalloc, keeping freed memory for the next step.
#[path = "support/alloc.rs"]
mod alloc;

/// Generate pieces with a trained model.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// A run directory (with `model/`) or a model directory (with `model.json`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Where the pieces go (created if missing).
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Number of pieces.
    #[arg(long, default_value_t = 4)]
    count: usize,
    /// Pieces generated together.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Most new tokens per piece.
    #[arg(long, default_value_t = 512)]
    tokens: usize,
    /// Stop at this bar line (pieces of at most N bars).
    #[arg(long)]
    bars: Option<usize>,
    /// Stop before the onset time passes this many seconds.
    #[arg(long)]
    seconds: Option<f64>,
    /// No EOS before this many new tokens.
    #[arg(long, default_value_t = 0)]
    min_tokens: usize,
    /// Positions the model attends to; longer pieces slide their context (restarting from
    /// the last bars behind a re-emitted header). Default: the length the model was trained
    /// on; 0: all its positions.
    #[arg(long)]
    context: Option<usize>,
    /// A MIDI file to continue (tokenized with the checkpoint's vocabulary).
    #[arg(long)]
    prompt: Option<PathBuf>,
    /// Most prompt tokens kept (its beginning).
    #[arg(long, default_value_t = 256)]
    prompt_tokens: usize,
    /// Sampling temperature.
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Keep the k most likely tokens.
    #[arg(long)]
    top_k: Option<usize>,
    /// Nucleus probability.
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    /// Drop tokens less likely than this fraction of the best.
    #[arg(long)]
    min_p: Option<f32>,
    /// Locally typical sampling mass.
    #[arg(long)]
    typical_p: Option<f32>,
    /// Repetition penalty over the last `--repetition-window` tokens (1 = off).
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    /// Window of the repetition penalty.
    #[arg(long, default_value_t = 64)]
    repetition_window: usize,
    /// Recompute the whole prefix every step instead of using the KV cache (slow; for
    /// comparisons).
    #[arg(long)]
    no_cache: bool,
    /// Beam search of this width instead of sampling (the sampling flags are ignored).
    #[arg(long)]
    beam: Option<usize>,
    /// Beam search's length-normalisation exponent.
    #[arg(long, default_value_t = 1.0)]
    length_penalty: f64,
    /// Take the most likely token every step.
    #[arg(long)]
    greedy: bool,
    /// Sample without the grammar mask (to measure the model's own validity).
    #[arg(long)]
    no_constraints: bool,
    /// Seed of the first piece (the others follow).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Backend: one of those compiled in.
    #[arg(long)]
    backend: Option<String>,
    /// Force control tokens at a bar: `BAR:NAME[,NAME...]` with the vocabulary's token
    /// names (`Tempo_<bpm>` takes the nearest tempo bin), e.g.
    /// `--control 0:TimeSig_3/4,Tempo_120 --control 8:Tempo_90`; each is
    /// placed at the first point of its bar the grammar allows. Repeatable.
    #[arg(long = "control", value_name = "BAR:NAMES")]
    controls: Vec<String>,
    /// Print every note as soon as its last token is generated (onset, pitch, velocity).
    #[arg(long)]
    stream: bool,
    /// Also render every piece to a WAV file beside its MIDI file, with a General MIDI
    /// SoundFont (`--soundfont`, else `AURL_SOUNDFONT`, else the usual system files).
    #[arg(long)]
    wav: bool,
    /// The SoundFont (.sf2) `--wav` renders with (implies `--wav`).
    #[arg(long)]
    soundfont: Option<PathBuf>,
    /// Threads decoding at once (default: the cores on a CPU backend, 1 on a GPU).
    #[arg(long)]
    workers: Option<usize>,
    /// How the decoding copy stores its projection weights: f32, f16 or int8 (fewer bytes
    /// per step decode faster on CPU; samples differ slightly from the f32 model's).
    #[arg(long, default_value = "f32")]
    weights: WeightFormat,
    /// VAE runs: decode `--count` codes interpolated (spherically) from the code of the
    /// first piece to that of the second.
    #[arg(long, num_args = 2, value_names = ["A", "B"])]
    interpolate: Vec<PathBuf>,
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
    let device = aurl::backend::device_or_default(args.backend.as_deref())?;
    let dir = model_dir(&args.checkpoint);
    // Generation needs the generator only (a VAE-GAN's VAE).
    let model = load_any(&dir, &device)?.into_generative();
    let (vocabulary, max_seq_len) = (model.vocabulary().clone(), model.max_seq_len());
    let tokenizer = vocabulary.scheme().tokenizer(vocabulary.config())?;
    let config = GenerationConfig {
        strategy: Strategy {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: Some(args.top_p),
            min_p: args.min_p,
            typical_p: args.typical_p,
            repetition_penalty: args.repetition_penalty,
            repetition_window: args.repetition_window,
            greedy: args.greedy,
        },
        constrained: !args.no_constraints,
        batch_size: args.batch.max(1),
        min_new_tokens: args.min_tokens,
        use_cache: !args.no_cache,
        context: args
            .context
            .map_or(Some(max_seq_len), |n| (n > 0).then_some(n)),
        workers: args
            .workers
            .unwrap_or_else(|| aurl::backend::decode_workers(args.backend.as_deref()))
            .max(1),
        weights: args.weights,
    };
    let latents = match &args.interpolate[..] {
        [a, b] => interpolation_from_midi(&model, [a, b], args.count, &device).map(Some)?,
        _ => model.prior_codes(args.count, args.seed, &device),
    };
    let generator = Generator::for_model(&model, config)?;
    let controls = (args.controls.iter())
        .map(|spec| BarControl::parse(spec, &vocabulary))
        .collect::<Result<Vec<_>, _>>()?;
    let template = Request {
        prompt: match &args.prompt {
            Some(path) => prompt_from_midi(path, tokenizer.as_ref(), args.prompt_tokens)?,
            None => Vec::new(),
        },
        max_new_tokens: args.tokens,
        seed: args.seed,
        max_bars: args.bars,
        max_seconds: args.seconds,
        latent: None,
        controls,
        ..Request::default()
    };
    let requests = template.repeated(args.count, latents.as_deref());
    let mut stats = StreamStats::start();
    let pieces = match args.beam {
        // Beam search: the most likely continuation of each request, one after another.
        Some(width) => {
            let beam = BeamConfig {
                width,
                length_penalty: args.length_penalty,
            };
            requests
                .iter()
                .map(|r| generator.beam_search(r, &beam))
                .collect::<Result<Vec<_>, _>>()?
        }
        None => generator.generate_streaming(&requests, |e| {
            stats.record(&e);
            if let Some(note) = e.note.filter(|_| args.stream) {
                eprintln!("piece {} {note}", e.request);
            }
        })?,
    };
    let seconds = stats.elapsed_seconds();
    std::fs::create_dir_all(&args.out)?;
    let wav = args.wav || args.soundfont.is_some();
    let font = (wav.then(|| SoundFont::require(args.soundfont.as_deref()))).transpose()?;
    let files = PieceFiles {
        stem: "piece",
        piano_roll: false,
        font: font.as_ref(),
    };
    let written = write_pieces(&args.out, &pieces, tokenizer.as_ref(), &files)?;
    for piece in &written {
        eprintln!("wrote {piece}");
    }
    let summary = GenerationSummary::new(&dir, args.weights, &pieces, written, seconds, &stats);
    summary.write(&args.out.join("summary.json"))?;
    eprintln!("{summary}");
    Ok(())
}
