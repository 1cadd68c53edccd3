//! A run directory's plots.

use std::path::Path;

use crate::evaluate::plot::{Curve, PlotError, curves_png};

use super::RunError;
use super::error::io;

/// Writes `loss.png`: the training loss per step and the validation NLL, from
/// `metrics.jsonl` (the whole run, resumed parts included; unreadable lines skipped).
///
/// # Errors
/// When `metrics.jsonl` cannot be read or the image cannot be written.
pub fn write_loss_png(dir: &Path) -> Result<(), RunError> {
    let path = dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
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
    curves_png(&dir.join("loss.png"), "loss (nats/token)", "step", &curves)
        .map_err(|e: PlotError| e.into())
}
