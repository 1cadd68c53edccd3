//! Compare a folder of generated MIDI files with a reference folder.
//!
//! ```text
//! cargo run --release --example evaluate -- out/ --reference data/valid
//! cargo run --release --example evaluate -- out/ --reference data/valid --checkpoint runs/x --json
//! ```
//!
//! Prints a table (metric, generated mean ± sd, reference mean ± sd, overlapping area, KL
//! divergence), token diversity and the longest passage each generated piece shares with
//! the reference; `--json` prints one JSON object instead. With `--checkpoint`, token
//! metrics use the checkpoint's vocabulary and the model's NLL on the reference pieces is
//! added. `--plots DIR` writes a PNG histogram per metric and piano rolls of the first four
//! generated and the first two reference pieces. Unreadable files are reported and skipped.

use std::path::PathBuf;
use std::process::ExitCode;

use aurl::core::tokenize::{Tokenizer, TokenizerConfig, by_name};
use aurl::evaluate::plot::{histogram_png, piano_roll_png};
use aurl::evaluate::{PieceSet, evaluate_sets, negative_log_likelihood};
use aurl::model::WeightFormat;
use aurl::model::weights::{load_model, model_dir};
use clap::Parser;
use serde_json::json;

/// mimalloc, keeping freed memory for the next step.
#[path = "support/alloc.rs"]
mod alloc;

/// Evaluate generated MIDI against reference MIDI.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Folder (or file) of generated MIDI.
    generated: PathBuf,
    /// Folder (or file) of reference MIDI.
    #[arg(long)]
    reference: PathBuf,
    /// A run directory (with `model/`) or model directory: its vocabulary tokenizes, and
    /// its NLL on the reference is reported.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Tokenization scheme for token metrics without a checkpoint.
    #[arg(long, default_value = "remi")]
    scheme: String,
    /// Context length for the NLL (default: the length the model was trained on).
    #[arg(long)]
    seq_len: Option<usize>,
    /// Windows per forward pass for the NLL.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Write PNG plots here: a histogram per metric (generated vs reference) and piano
    /// rolls of the first pieces of each set.
    #[arg(long)]
    plots: Option<PathBuf>,
    /// Backend for the NLL: one of those compiled in.
    #[arg(long)]
    backend: Option<String>,
    /// Compute the NLL with the projection weights stored as f32, f16 or int8, as
    /// `generate --weights` decodes (to see what fewer bytes cost the model).
    #[arg(long, default_value = "f32")]
    weights: WeightFormat,
    /// The same as `--weights f16`.
    #[arg(long, hide = true)]
    half_weights: bool,
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
    let generated = PieceSet::read(std::slice::from_ref(&args.generated));
    let reference = PieceSet::read(std::slice::from_ref(&args.reference));
    for (path, why) in generated.unreadable.iter().chain(&reference.unreadable) {
        eprintln!("skipped {}: {why}", path.display());
    }
    if generated.is_empty() || reference.is_empty() {
        return Err(format!(
            "nothing to compare: {} readable generated and {} readable reference pieces",
            generated.len(),
            reference.len()
        )
        .into());
    }
    let saved = match &args.checkpoint {
        Some(path) => {
            let device = aurl::backend::device_or_default(args.backend.as_deref())?;
            let dir = model_dir(path);
            let mut saved = load_model(&dir, &device)
                .map_err(|e| format!("checkpoint {}: {e}", dir.display()))?;
            let weights = if args.half_weights {
                WeightFormat::F16
            } else {
                args.weights
            };
            saved.model = saved.model.with_weights(weights);
            Some(saved)
        }
        None => None,
    };
    let tokenizer: Box<dyn Tokenizer + Send + Sync> = match &saved {
        Some(s) => s.vocabulary.scheme().tokenizer(s.vocabulary.config())?,
        None => by_name(&args.scheme, &TokenizerConfig::default())?,
    };
    let eval = evaluate_sets(&generated, &reference, tokenizer.as_ref());
    let nll = saved.as_ref().and_then(|s| {
        negative_log_likelihood(
            s,
            tokenizer.as_ref(),
            &reference.scores,
            args.seq_len.unwrap_or(s.config.max_seq_len),
            args.batch,
        )
    });
    if let Some(dir) = &args.plots {
        std::fs::create_dir_all(dir)?;
        for (k, row) in eval.rows.iter().enumerate() {
            let path = dir.join(format!("{}.png", row.metric));
            histogram_png(
                &path,
                &row.metric,
                &eval.generated_values[k],
                &eval.reference_values[k],
            )?;
        }
        for (prefix, set, count) in [("generated", &generated, 4), ("reference", &reference, 2)] {
            for (score, file) in set.scores.iter().zip(&set.files).take(count) {
                let stem = file
                    .file_stem()
                    .map_or("piece".into(), |s| s.to_string_lossy());
                let name = format!("roll_{prefix}_{stem}");
                piano_roll_png(&dir.join(format!("{name}.png")), &name, score, 16)?;
            }
        }
        eprintln!("plots in {}", dir.display());
    }
    if args.json {
        let skipped: Vec<_> = generated
            .unreadable
            .iter()
            .chain(&reference.unreadable)
            .map(|(p, why)| json!({ "file": p, "error": why }))
            .collect();
        let out = json!({ "evaluation": eval, "reference_nll": nll, "skipped": skipped });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", eval.table());
        if let Some(n) = nll {
            println!(
                "reference NLL: {:.4} nats/token (perplexity {:.2}), {:.3} bits/note over {} tokens, {} notes",
                n.nats_per_token, n.perplexity, n.bits_per_note, n.tokens, n.notes
            );
        }
    }
    Ok(())
}
