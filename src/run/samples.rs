//! A run's pieces: what is sampled (during training, to check the grammar; at the end, to
//! keep) and the files written for each.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::core::tokenize::{Grammar, Tokenizer};
use crate::data::audio::{RenderOptions, SoundFont, render};
use crate::model::train::SampleCheck;
use crate::model::vae::{LatentRng, Vae};
use crate::sampling::{
    Generated, GenerationConfig, Generator, PieceSummary, Request, SamplingError, write_piece,
};

use super::error::io;
use super::{Job, ModelMode, RunError};

/// The generation settings of a run: the final samples' and the grammar checks' made
/// during training (short, unconstrained: the model's own validity).
pub(super) struct Sampling {
    pub config: GenerationConfig,
    pub requests: Vec<Request>,
    check_config: GenerationConfig,
    check_requests: Vec<Request>,
    grammar: Grammar,
}

impl Sampling {
    /// The settings of `job`'s `[sample]` section, decoding with `workers` threads.
    pub fn new(job: &Job, workers: usize) -> Self {
        let (config, seq_len) = (&job.config, job.seq_len);
        let samples = GenerationConfig {
            strategy: config.sample.strategy.clone(),
            constrained: config.sample.constrained,
            batch_size: config.sample.count.max(1),
            min_new_tokens: config.sample.min_tokens,
            // Pieces longer than a training window slide it, as the model was trained.
            context: (config.model.mode == ModelMode::Transformer).then_some(seq_len),
            workers,
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
        let check_requests = requests
            .iter()
            .map(|r| Request {
                max_new_tokens: r.max_new_tokens.min(seq_len.saturating_sub(1)).max(1),
                ..r.clone()
            })
            .collect();
        Self {
            check_config: GenerationConfig {
                constrained: false,
                ..samples.clone()
            },
            config: samples,
            requests,
            check_requests,
            grammar: Grammar::new(&job.vocab),
        }
    }

    /// The grammar check of a language model's samples (`None` when generation failed).
    pub fn check_lm(&self, model: &crate::model::Transformer, job: &Job) -> Option<SampleCheck> {
        let generator = Generator::new(model, &job.vocab, self.check_config.clone()).ok()?;
        self.check(generator.generate(&self.check_requests))
    }

    /// The grammar check of a VAE's samples, decoded from codes drawn from its prior.
    pub fn check_vae(&self, model: &Vae, job: &Job) -> Option<SampleCheck> {
        let generator =
            Generator::conditioned(model, &job.vocab, self.check_config.clone()).ok()?;
        let requests = from_prior(model, &self.check_requests, job);
        self.check(generator.generate(&requests))
    }

    fn check(&self, pieces: Result<Vec<Generated>, SamplingError>) -> Option<SampleCheck> {
        let tokens: Vec<Vec<u16>> = pieces.ok()?.into_iter().map(|p| p.tokens).collect();
        Some(SampleCheck::of(&self.grammar, &tokens))
    }
}

/// `requests` decoding codes drawn from `model`'s prior (the same codes every time: the
/// run's seed).
pub(super) fn from_prior(model: &Vae, requests: &[Request], job: &Job) -> Vec<Request> {
    let mut rng = LatentRng::new(job.config.train.seed);
    let codes = model
        .sample_prior(requests.len(), &mut rng, &job.device)
        .to_rows();
    requests
        .iter()
        .zip(codes)
        .map(|(r, code)| Request {
            latent: Some(code),
            ..r.clone()
        })
        .collect()
}

/// The files written for one sample.
#[derive(Debug, Clone, Serialize)]
pub struct SampleFiles {
    /// The MIDI file.
    pub file: PathBuf,
    /// Its piano roll (PNG), when one was drawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub piano_roll: Option<PathBuf>,
    /// Its audio (WAV), when a SoundFont was found and rendering worked.
    pub audio: Option<PathBuf>,
    /// What the MIDI file holds.
    pub summary: PieceSummary,
}

impl std::fmt::Display for SampleFiles {
    /// `runs/x/samples/sample_00.mid (512 tokens, 312 notes in 4 tracks, 41.5 s, 0 grammar
    /// errors), .png`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.summary;
        write!(
            f,
            "{} ({} tokens, {} notes in {} tracks, {:.1} s, {} grammar errors){}{}",
            self.file.display(),
            s.tokens,
            s.notes,
            s.tracks,
            s.seconds,
            s.grammar_errors,
            if self.piano_roll.is_some() {
                ", .png"
            } else {
                ""
            },
            if self.audio.is_some() { ", .wav" } else { "" }
        )
    }
}

impl Job {
    /// Writes each piece under `<dir>/samples/` as `sample_NN.mid` with its piano roll and,
    /// with a SoundFont, its audio (see [`write_pieces`]).
    ///
    /// # Errors
    /// As [`write_pieces`].
    pub fn write_samples(
        &self,
        dir: &Path,
        pieces: &[Generated],
        font: Option<&SoundFont>,
    ) -> Result<Vec<SampleFiles>, RunError> {
        let samples_dir = dir.join("samples");
        std::fs::create_dir_all(&samples_dir).map_err(io(&samples_dir))?;
        let files = PieceFiles {
            stem: "sample",
            piano_roll: true,
            font,
        };
        write_pieces(&samples_dir, pieces, self.tokenizer.as_ref(), &files)
    }
}

/// What [`write_pieces`] writes for each piece besides its MIDI file.
#[derive(Clone, Copy)]
pub struct PieceFiles<'a> {
    /// File names are `<stem>_NN.mid` (`.png`, `.wav`).
    pub stem: &'a str,
    /// Draw a piano roll (`.png`).
    pub piano_roll: bool,
    /// Render audio (`.wav`) with this SoundFont.
    pub font: Option<&'a SoundFont>,
}

/// Writes each piece into `dir` (which must exist) as `<stem>_NN.mid`, with the piano roll
/// and audio `files` asks for. A rendering problem is logged and costs only that WAV file.
///
/// # Errors
/// When a MIDI file or a piano roll cannot be written.
pub fn write_pieces(
    dir: &Path,
    pieces: &[Generated],
    tokenizer: &dyn Tokenizer,
    files: &PieceFiles<'_>,
) -> Result<Vec<SampleFiles>, RunError> {
    let mut written = Vec::with_capacity(pieces.len());
    for (i, piece) in pieces.iter().enumerate() {
        let path = dir.join(format!("{}_{i:02}.mid", files.stem));
        let summary = write_piece(piece, tokenizer, &path)?;
        let (score, _) = tokenizer.decode(&piece.tokens);
        let piano_roll = if files.piano_roll {
            let roll = path.with_extension("png");
            let title = format!(
                "{} {i}: {} notes, {} tracks",
                files.stem, summary.notes, summary.tracks
            );
            crate::evaluate::plot::piano_roll_png(&roll, &title, &score, 64)?;
            Some(roll)
        } else {
            None
        };
        let audio = files.font.and_then(|font| {
            let wav = path.with_extension("wav");
            let rendered = render(&score, font, &RenderOptions::default())
                .and_then(|audio| audio.write_wav(&wav));
            match rendered {
                Ok(()) => Some(wav),
                Err(e) => {
                    tracing::warn!("{}: {e}", wav.display());
                    None
                }
            }
        });
        written.push(SampleFiles {
            file: path,
            piano_roll,
            audio,
            summary,
        });
    }
    Ok(written)
}
