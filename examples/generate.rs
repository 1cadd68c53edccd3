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
use std::time::Instant;

use aurl::core::tokenize::{Token, Vocabulary};
use aurl::data::audio::{RenderOptions, SOUNDFONT_HINT, SoundFont, render};
use aurl::data::{Mode, read_midi_file};
use aurl::model::WeightFormat;
use aurl::model::any::{Generative, load_any};
use aurl::model::vae::{LatentRng, interpolate};
use aurl::model::weights::model_dir;
use aurl::sampling::{
    BarControl, BeamConfig, GenerationConfig, Generator, Request, Strategy, write_piece,
};
use clap::Parser;
use serde_json::json;

/// mimalloc instead of the system allocator: a decoding or training step allocates and frees
/// many tensors, and glibc's heap trimming then faults the pages back in (measured in the
/// README's sampling table).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// The same as `--weights f16`.
    #[arg(long, hide = true)]
    half_weights: bool,
    /// VAE runs: decode `--count` codes interpolated (spherically) from the code of the
    /// first piece to that of the second.
    #[arg(long, num_args = 2, value_names = ["A", "B"])]
    interpolate: Vec<PathBuf>,
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
    let device = aurl::backend::device_or_default(args.backend.as_deref())?;
    let dir = model_dir(&args.checkpoint);
    // Generation needs the generator only (a VAE-GAN's VAE).
    let model = load_any(&dir, &device)?.into_generative();
    let (vocabulary, max_seq_len) = (model.vocabulary().clone(), model.max_seq_len());
    let tokenizer = vocabulary.scheme().tokenizer(vocabulary.config())?;
    let encode = |path: &PathBuf, limit: usize| -> Result<Vec<u16>, Box<dyn std::error::Error>> {
        let (score, _) =
            read_midi_file(path, Mode::Lenient).map_err(|e| format!("{}: {e}", path.display()))?;
        // Pieces start with BOS in training, so a prompt does too.
        let mut ids = tokenizer.encode(&score)?.framed(&vocabulary).ids;
        ids.truncate(limit.max(1));
        ids.pop_if(|&mut last| last == vocabulary.eos());
        Ok(ids)
    };
    let prompt = match &args.prompt {
        Some(path) => encode(path, args.prompt_tokens).map_err(|e| format!("prompt: {e}"))?,
        None => Vec::new(),
    };
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
        context: match args.context {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(max_seq_len),
        },
        workers: args
            .workers
            .unwrap_or_else(|| aurl::backend::decode_workers(args.backend.as_deref()))
            .max(1),
        weights: if args.half_weights {
            WeightFormat::F16
        } else {
            args.weights
        },
    };
    let (generator, latents) = match &model {
        Generative::Transformer(t) => {
            if !args.interpolate.is_empty() {
                return Err("--interpolate needs a VAE run".into());
            }
            (Generator::new(&t.model, &vocabulary, config)?, None)
        }
        Generative::Vae(v) => {
            let latents = if args.interpolate.is_empty() {
                let mut rng = LatentRng::new(args.seed);
                v.model
                    .sample_prior(args.count, &mut rng, &device)
                    .to_rows()
            } else {
                let codes = args
                    .interpolate
                    .iter()
                    .map(|path| {
                        let ids = encode(path, max_seq_len)?;
                        let ids: Vec<i64> = ids.into_iter().map(i64::from).collect();
                        let n = ids.len();
                        let tokens =
                            aurl::burn::tensor::Tensor::<2, aurl::burn::tensor::Int>::from_data(
                                aurl::burn::tensor::TensorData::new(ids, [1, n]),
                                &device,
                            );
                        let padding = tokens.clone().equal_elem(-1);
                        Ok(v.model.encode(tokens, padding).mode().to_rows().remove(0))
                    })
                    .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?;
                interpolate(&codes[0], &codes[1], args.count)
            };
            (
                Generator::conditioned(&v.model, &vocabulary, config)?,
                Some(latents),
            )
        }
    };
    let controls = parse_controls(&args.controls, &vocabulary)?;
    let requests: Vec<Request> = (0..args.count)
        .map(|i| Request {
            prompt: prompt.clone(),
            max_new_tokens: args.tokens,
            seed: args.seed.wrapping_add(i as u64),
            max_bars: args.bars,
            max_seconds: args.seconds,
            latent: latents.as_ref().map(|l| l[i].clone()),
            controls: controls.clone(),
        })
        .collect();
    let started = Instant::now();
    let mut latencies = Vec::new();
    let (mut streamed_notes, mut first_note) = (0usize, None);
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
            latencies.push(e.step_seconds);
            if let Some(n) = e.note {
                streamed_notes += 1;
                first_note.get_or_insert_with(|| started.elapsed().as_secs_f64());
                if args.stream {
                    eprintln!(
                        "piece {} bar {:>3} {:>8.3} s  {:<8} pitch {:>3} velocity {:>3} {:.3} s",
                        e.request,
                        n.bar,
                        n.start_seconds,
                        n.program
                            .map_or("drums".to_owned(), |p| format!("program {p}")),
                        n.pitch,
                        n.velocity,
                        n.duration_seconds
                    );
                }
            }
        })?,
    };
    latencies.sort_by(f64::total_cmp);
    let quantile = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q).round() as usize);
    let seconds = started.elapsed().as_secs_f64();
    std::fs::create_dir_all(&args.out)?;
    let mut summaries = Vec::new();
    let mut new_tokens = 0;
    // Asked for audio: a missing or unreadable SoundFont is an error before anything is
    // written, not a silent omission.
    let font = if args.wav || args.soundfont.is_some() {
        match SoundFont::locate(args.soundfont.as_deref())? {
            Some(font) => Some(font),
            None => return Err(SOUNDFONT_HINT.into()),
        }
    } else {
        None
    };
    for (i, piece) in pieces.iter().enumerate() {
        let path = args.out.join(format!("piece_{i:02}.mid"));
        let summary = write_piece(piece, tokenizer.as_ref(), &path)?;
        new_tokens += summary.new_tokens;
        let wav = match &font {
            Some(font) => {
                let wav = path.with_extension("wav");
                let (score, _) = tokenizer.decode(&piece.tokens);
                render(&score, font, &RenderOptions::default())?.write_wav(&wav)?;
                Some(wav)
            }
            None => None,
        };
        eprintln!(
            "wrote {} ({} tokens, {} notes in {} tracks, {:.1} s, {} grammar errors){}",
            path.display(),
            summary.tokens,
            summary.notes,
            summary.tracks,
            summary.seconds,
            summary.grammar_errors,
            if wav.is_some() { ", .wav" } else { "" }
        );
        summaries.push(json!({ "file": path, "audio": wav, "summary": summary }));
    }
    let summary = json!({
        "checkpoint": dir,
        "weights": if args.half_weights { WeightFormat::F16 } else { args.weights }.to_string(),
        "half_weights": args.half_weights || args.weights == WeightFormat::F16,
        "pieces": summaries,
        "new_tokens": new_tokens,
        "seconds": seconds,
        "tokens_per_second": new_tokens as f64 / seconds.max(1e-9),
        "step_ms_median": quantile(0.5).map(|s| s * 1e3),
        "step_ms_p95": quantile(0.95).map(|s| s * 1e3),
        "streamed_notes": streamed_notes,
        "first_note_ms": first_note.map(|s| s * 1e3),
        "controls_dropped": pieces.iter().map(|p| p.controls_dropped).sum::<usize>(),
    });
    std::fs::write(
        args.out.join("summary.json"),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    eprintln!(
        "{} pieces, {new_tokens} tokens in {seconds:.2} s ({:.0} tokens/s)",
        pieces.len(),
        new_tokens as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// `Tempo_<bpm>` for any BPM: the tempo token of the nearest bin.
fn nearest_tempo(name: &str, vocabulary: &Vocabulary) -> Option<u16> {
    let bpm: f64 = name.strip_prefix("Tempo_")?.parse().ok()?;
    let tempos = &vocabulary.grid().tempos;
    let bin = (0..tempos.len()).min_by(|&a, &b| {
        let distance = |i: usize| (60e6 / f64::from(tempos[i]) - bpm).abs();
        distance(a).total_cmp(&distance(b))
    })?;
    vocabulary.id(Token::Tempo(u8::try_from(bin).ok()?))
}

/// `BAR:NAME[,NAME...]` specs as bar controls, names looked up in `vocabulary`.
fn parse_controls(
    specs: &[String],
    vocabulary: &Vocabulary,
) -> Result<Vec<BarControl>, Box<dyn std::error::Error>> {
    let names = vocabulary.names();
    specs
        .iter()
        .map(|spec| {
            let (bar, list) = spec
                .split_once(':')
                .ok_or_else(|| format!("--control {spec}: expected BAR:NAME[,NAME...]"))?;
            let bar: u64 = bar
                .trim()
                .parse()
                .map_err(|e| format!("--control {spec}: bar `{bar}`: {e}"))?;
            let tokens = list
                .split(',')
                .map(|name| {
                    let name = name.trim();
                    names
                        .iter()
                        .position(|n| n == name)
                        .and_then(|id| u16::try_from(id).ok())
                        .or_else(|| nearest_tempo(name, vocabulary))
                        .ok_or_else(|| format!("--control {spec}: no token named `{name}`"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(BarControl { bar, tokens })
        })
        .collect()
}
