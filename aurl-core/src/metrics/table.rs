//! The standard per-piece metric table, shared by `examples/evaluate.rs` and anyone who
//! wants the same numbers.

use super::{
    drum_pattern_consistency, empty_beat_rate, empty_measure_rate, groove_consistency,
    mean_tonal_distance, pitch_class_entropy, pitch_classes_used, pitch_entropy, pitch_range,
    pitches_used, polyphony, polyphony_rate, qualified_note_rate, scale_consistency,
    used_pitch_classes_per_bar,
};
use crate::Score;
use crate::analysis::{
    ChordProgression, ChordSpan, ChordStep, Form, MelodyStats, MotifConfig, SelfSimilarity,
    detect_chords, estimate_key, find_motifs, local_keys, melody, modulations,
};

/// Bars compared by `bar_self_similarity` and `phrase_repetition_rate` (from the start): the
/// comparison is quadratic in bars, and 256 bars cover most songs.
pub const SIMILARITY_BARS: usize = 256;

/// Names of the metrics [`piece_metrics`] returns, in its order.
pub const PIECE_METRICS: [&str; 26] = [
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
    "key_clarity",
    "key_changes_per_window",
    "chord_beat_rate",
    "fifth_root_motion_rate",
    "motif_coverage",
    "phrase_repetition_rate",
];

/// Every per-piece metric of [`PIECE_METRICS`] (same order); `None` where a metric is
/// undefined for the piece (e.g. drum metrics without drums). Groove consistency uses a
/// sixteenth-note grid and polyphony rate a threshold of two pitches. The last six come
/// from the [`analysis`](crate::analysis) studies: the Krumhansl–Schmuckler correlation of
/// the whole piece (`key_clarity`), key changes between 8-bar windows moving by 4, the
/// share of beats with a recognizable chord, the share of chord changes whose root moves by
/// a fifth, the share of melody notes inside a recurring motif (4–12 notes), and the share
/// of 4-bar phrases that repeat an earlier one (form letters at similarity 0.75); the
/// bar-similarity metrics look at the first [`SIMILARITY_BARS`] bars.
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
    let ssm = SelfSimilarity::of_first_bars(score, SIMILARITY_BARS);
    let chords = detect_chords(score, ChordStep::Beat);
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
        estimate_key(score).map(|k| k.correlation),
        key_changes(score),
        chord_beat_rate(score, &chords),
        fifth_root_motion_rate(&chords),
        motif_coverage(&line),
        phrase_repetition_rate(&ssm),
    ]
}

fn key_changes(score: &Score) -> Option<f64> {
    let spans = local_keys(score, 8, 4);
    (spans.len() >= 2).then(|| modulations(&spans).len() as f64 / (spans.len() - 1) as f64)
}

fn chord_beat_rate(score: &Score, chords: &[ChordSpan]) -> Option<f64> {
    let beats = super::beats(score).len();
    (beats > 0).then(|| chords.len() as f64 / beats as f64)
}

fn fifth_root_motion_rate(chords: &[ChordSpan]) -> Option<f64> {
    let motions = ChordProgression::from_spans(chords).root_motions();
    let total: u32 = motions.iter().sum();
    (total > 0).then(|| f64::from(motions[5] + motions[7]) / f64::from(total))
}

fn motif_coverage(line: &[crate::Note]) -> Option<f64> {
    if line.len() < 2 {
        return None;
    }
    let mut covered = vec![false; line.len()];
    for m in find_motifs(line, MotifConfig::default()) {
        for &p in &m.occurrences {
            covered[p..(p + m.notes()).min(line.len())].fill(true);
        }
    }
    Some(covered.iter().filter(|c| **c).count() as f64 / line.len() as f64)
}

fn phrase_repetition_rate(ssm: &SelfSimilarity) -> Option<f64> {
    let starts: Vec<usize> = (0..ssm.bars()).step_by(4).collect();
    let form = Form::from_phrase_starts(ssm, &starts, 0.75);
    let mut seen = std::collections::HashSet::new();
    let repeats = form
        .phrases
        .iter()
        .filter(|p| !seen.insert(p.label.clone()))
        .count();
    (form.phrases.len() >= 2).then(|| repeats as f64 / form.phrases.len() as f64)
}
