//! A trained model's likelihood of a set of pieces: NLL per token and per note, and
//! perplexity — the numbers a checkpoint is compared by across tokenizations.

use super::{TokenWindows, evaluate};
use crate::weights::SavedModel;
use aurl_core::Score;
use aurl_core::metrics::bits_per_note;
use aurl_core::tokenize::{TokenSequence, Tokenizer};
use serde::Serialize;

/// How likely a model finds some pieces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NllReport {
    /// Mean negative log-likelihood per predicted token, in nats.
    pub nats_per_token: f64,
    /// `exp(nats_per_token)`.
    pub perplexity: f64,
    /// Total NLL in bits divided by the pieces' notes (comparable across tokenizers).
    pub bits_per_note: f64,
    /// Tokens predicted.
    pub tokens: usize,
    /// Notes in the pieces.
    pub notes: usize,
}

/// The NLL of `scores` under `saved`, tokenized with its vocabulary and framed with BOS/EOS
/// as in training, read in windows of `seq_len` tokens (each token predicted once).
/// `None` if no piece tokenizes to two or more tokens.
#[must_use]
pub fn negative_log_likelihood(
    saved: &SavedModel,
    tokenizer: &dyn Tokenizer,
    scores: &[Score],
    seq_len: usize,
    batch_size: usize,
) -> Option<NllReport> {
    let vocab = &saved.vocabulary;
    let mut notes = 0;
    let sequences: Vec<TokenSequence> = scores
        .iter()
        .filter_map(|s| {
            let t = tokenizer.encode(s).ok()?;
            notes += s.note_count();
            Some(t.framed(vocab))
        })
        .collect();
    let seq_len = seq_len.clamp(1, saved.config.max_positions);
    let windows = TokenWindows::contiguous(&sequences, seq_len, vocab.pad());
    let all: Vec<usize> = (0..windows.count()).collect();
    let tokens = windows.target_tokens(&all);
    let nats = evaluate(&saved.model, &windows, batch_size)?;
    Some(NllReport {
        nats_per_token: nats,
        perplexity: nats.exp(),
        bits_per_note: bits_per_note(nats * tokens as f64, notes.max(1)).unwrap_or(f64::NAN),
        tokens,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TransformerConfig;
    use aurl_core::tokenize::{Remi, TokenizerConfig};
    use aurl_core::{Note, Pitch, Track, Velocity};
    use burn::prelude::*;

    #[test]
    fn an_untrained_model_is_near_uniform_and_the_units_agree() {
        let remi = Remi::new(&TokenizerConfig::default()).unwrap();
        let device = Device::flex();
        device.seed(1);
        let config = TransformerConfig::tiny(remi.vocab().len());
        let saved = SavedModel {
            model: config.init(&device).unwrap(),
            config,
            vocabulary: remi.vocab().clone(),
        };
        let mut track = Track::new("p");
        for i in 0..20u64 {
            let pitch = Pitch::new(60 + (i % 12) as u8).unwrap();
            track
                .notes
                .push(Note::new(pitch, Velocity::new(80).unwrap(), 240 * i, 240));
        }
        let mut score = Score::new(480);
        score.tracks.push(track);
        let r = negative_log_likelihood(&saved, &remi, &[score], 64, 4).unwrap();
        let uniform = (remi.vocab().len() as f64).ln();
        assert!(
            (r.nats_per_token - uniform).abs() < 1.0,
            "{r:?} vs ln V = {uniform}"
        );
        assert!((r.perplexity - r.nats_per_token.exp()).abs() < 1e-9);
        let bits = r.nats_per_token * r.tokens as f64 / std::f64::consts::LN_2 / 20.0;
        assert!((r.bits_per_note - bits).abs() < 1e-9 && r.notes == 20);
        assert!(negative_log_likelihood(&saved, &remi, &[], 64, 4).is_none());
    }
}
