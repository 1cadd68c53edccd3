//! Metrics for judging generated music against real music.
//!
//! * On scores, MusPy's set ([`pitch_range`], [`pitches_used`], [`pitch_classes_used`],
//!   [`polyphony`], [`polyphony_rate`], [`in_scale_rate`], [`scale_consistency`],
//!   [`pitch_entropy`], [`pitch_class_entropy`], [`empty_beat_rate`],
//!   [`drum_in_pattern_rate`], [`drum_pattern_consistency`], [`groove_consistency`],
//!   [`empty_measure_rate`]) and MuseGAN's ([`used_pitch_classes_per_bar`],
//!   [`qualified_note_rate`], [`empty_bar_rate_per_track`], [`tonal_distance`]).
//!   [`piece_metrics`] computes the standard per-piece table.
//! * On token ids: [`distinct_n`], [`repetition_rate`], and the [`NgramModel`] baseline;
//!   grammar error and note-pairing rates come from the shared grammar.
//! * Against a corpus: [`MelodyIndex`], the longest shared transposition-invariant passage.
//! * Between sets of pieces: [`compare_sets`] (mgeval-style overlap and KL divergence).

mod bars;
mod compare;
mod diversity;
mod musegan;
mod ngram;
mod pitch;
mod plagiarism;
mod rhythm;
mod table;

pub(crate) use bars::for_each_span;
pub use bars::{Bar, MAX_BARS, bar_index, bars, bars_until, content_end};
pub use compare::{SetComparison, Summary, compare_sets};
pub use diversity::{distinct_n, repetition_rate};
pub use musegan::{
    empty_bar_rate_per_track, mean_tonal_distance, qualified_note_rate, tonal_centroid,
    tonal_distance, used_pitch_classes_per_bar,
};
pub use ngram::{NgramModel, NgramScore};
pub(crate) use pitch::pitched_notes;
pub use pitch::{
    Mode, in_scale_rate, pitch_class_entropy, pitch_classes_used, pitch_entropy, pitch_range,
    pitches_used, scale_consistency,
};
pub use plagiarism::{MelodyIndex, SharedPassage};
pub use rhythm::{
    Meter, beats, drum_in_pattern_rate, drum_pattern_consistency, empty_beat_rate,
    empty_measure_rate, groove_consistency, polyphony, polyphony_rate,
};
pub use table::{PIECE_METRICS, SIMILARITY_BARS, piece_metrics};

/// Bits per note: a likelihood's total negative log-likelihood `total_nats` (over every
/// predicted token of some pieces) in bits, divided by the notes of those pieces — a figure
/// that does not depend on the tokenization, so schemes, models and tools compare. `None`
/// when there are no notes.
///
/// ```
/// use aurl_core::metrics::bits_per_note;
/// // 1,000 tokens at ln 2 nats each (one bit) over 250 notes: 4 bits per note.
/// let bits = bits_per_note(1000.0 * std::f64::consts::LN_2, 250).unwrap();
/// assert!((bits - 4.0).abs() < 1e-12);
/// assert_eq!(bits_per_note(1.0, 0), None);
/// ```
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn bits_per_note(total_nats: f64, notes: usize) -> Option<f64> {
    (notes > 0).then(|| total_nats / std::f64::consts::LN_2 / notes as f64)
}
