//! The standard per-piece metric table, shared by `examples/evaluate.rs` and anyone who
//! wants the same numbers.

use super::{
    drum_pattern_consistency, empty_beat_rate, empty_measure_rate, groove_consistency,
    mean_tonal_distance, pitch_class_entropy, pitch_classes_used, pitch_entropy, pitch_range,
    pitches_used, polyphony, polyphony_rate, qualified_note_rate, scale_consistency,
    used_pitch_classes_per_bar,
};
use crate::Score;
use crate::analysis::{MelodyStats, SelfSimilarity, melody};

/// Names of the metrics [`piece_metrics`] returns, in its order.
pub const PIECE_METRICS: [&str; 20] = [
    "notes_per_bar",
    "pitch_range",
    "pitches_used",
    "pitch_classes_used",
    "pitch_entropy",
    "pitch_class_entropy",
    "scale_consistency",
    "polyphony",
    "polyphony_rate",
    "used_pitch_classes_per_bar",
    "qualified_note_rate",
    "empty_beat_rate",
    "empty_measure_rate",
    "groove_consistency",
    "drum_pattern_consistency",
    "tonal_distance",
    "melody_mean_abs_interval",
    "melody_step_rate",
    "melody_turn_rate",
    "bar_self_similarity",
];

/// Every per-piece metric of [`PIECE_METRICS`] (same order); `None` where a metric is
/// undefined for the piece (e.g. drum metrics without drums). Groove consistency uses a
/// sixteenth-note grid and polyphony rate a threshold of two pitches.
///
/// ```
/// use aurl_core::Score;
/// use aurl_core::metrics::{PIECE_METRICS, piece_metrics};
/// let m = piece_metrics(&Score::new(480));
/// assert_eq!(m.len(), PIECE_METRICS.len());
/// assert!(m.iter().all(|v| v.is_none()), "an empty score has no defined metric");
/// ```
#[must_use]
pub fn piece_metrics(score: &Score) -> Vec<Option<f64>> {
    let bars = super::bars(score).len();
    let line = melody(score);
    let stats = MelodyStats::of(&line);
    let ssm = SelfSimilarity::of(score);
    vec![
        (bars > 0).then(|| score.note_count() as f64 / bars as f64),
        pitch_range(score).map(f64::from),
        pitches_used(score).map(|x| x as f64),
        pitch_classes_used(score).map(|x| x as f64),
        pitch_entropy(score),
        pitch_class_entropy(score),
        scale_consistency(score),
        polyphony(score),
        polyphony_rate(score, 2),
        used_pitch_classes_per_bar(score),
        qualified_note_rate(score),
        empty_beat_rate(score),
        empty_measure_rate(score),
        groove_consistency(score, 4),
        drum_pattern_consistency(score),
        mean_tonal_distance(score),
        stats.as_ref().map(|s| s.mean_abs_interval),
        stats.as_ref().map(|s| s.step_rate),
        stats.as_ref().map(|s| s.turn_rate),
        ssm.mean_off_diagonal(),
    ]
}
