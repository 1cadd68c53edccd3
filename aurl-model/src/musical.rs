//! A musical position encoding: learned embeddings of the bar index, the beat within the bar
//! and the grid step within the beat, derived from the token stream itself (its `Bar` and
//! `Position` tokens) and added to the token embeddings on top of the configured
//! [`PositionEncoding`](crate::PositionEncoding). The model then knows *where in the metre*
//! every token falls, which a plain token index does not say.
//!
//! Indices are computed on the device: the bar index is a cumulative count of `Bar` tokens,
//! the in-bar position is carried forward from the last `Position` (or `Bar`) token by a
//! cumulative maximum over event indices, so training needs no host round trip. During
//! cached decoding the running bar count and in-bar position are kept in the
//! [`KvCache`](crate::KvCache), so cached steps equal full recomputation.

use aurl_core::tokenize::{Token, Vocabulary};
use burn::nn::{Embedding, EmbeddingConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, invalid};

/// Which ids mark bars and in-bar positions, and how many bars and beats get their own
/// embedding. Built from a vocabulary with [`MusicalPositionConfig::from_vocabulary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MusicalPositionConfig {
    /// Ids of the `Bar` token(s).
    pub bar_ids: Vec<u32>,
    /// Every `Position(step)` token as `(id, step)`, `step` in grid steps from the bar line.
    pub position_ids: Vec<(u32, u32)>,
    /// Grid steps per beat (the tokenizer's steps per quarter note).
    pub steps_per_beat: u32,
    /// Bars with their own embedding, counted from the start of the sequence (or window);
    /// later bars share the last one.
    pub max_bars: usize,
}

impl MusicalPositionConfig {
    /// The ids of `vocabulary` (a scheme with `Bar` and `Position` tokens, e.g. REMI), with
    /// `max_bars` bar embeddings.
    ///
    /// ```
    /// use aurl_core::tokenize::{TokenizerConfig, Vocabulary};
    /// use aurl_model::MusicalPositionConfig;
    /// let vocab = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
    /// let c = MusicalPositionConfig::from_vocabulary(&vocab, 64)?;
    /// assert_eq!(c.bar_ids.len(), 1);
    /// assert!(!c.position_ids.is_empty());
    /// # Ok::<(), aurl_model::ModelError>(())
    /// ```
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] (`musical_positions`) for a vocabulary without `Bar`
    /// or `Position` tokens (time-shift schemes), or `max_bars` of 0.
    pub fn from_vocabulary(vocabulary: &Vocabulary, max_bars: usize) -> Result<Self, ModelError> {
        let mut bar_ids = Vec::new();
        let mut position_ids = Vec::new();
        for id in 0..vocabulary.len() {
            let Ok(id16) = u16::try_from(id) else { break };
            match vocabulary.token(id16) {
                Some(Token::Bar) => bar_ids.push(u32::from(id16)),
                Some(Token::Position(step)) => {
                    position_ids.push((u32::from(id16), u32::from(step)))
                }
                _ => {}
            }
        }
        let c = Self {
            bar_ids,
            position_ids,
            steps_per_beat: vocabulary.grid().resolution.max(1),
            max_bars,
        };
        c.validate().map_err(|_| {
            invalid(
                "musical_positions",
                format!(
                    "the {} scheme has no Bar and Position tokens to derive bars and beats from \
                     (use remi), or max_bars is 0",
                    vocabulary.scheme()
                ),
            )
        })?;
        Ok(c)
    }

    /// Checks every field; the error names the first bad one.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`].
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.bar_ids.is_empty() {
            return Err(invalid("musical_positions.bar_ids", "needs a Bar token"));
        }
        if self.position_ids.is_empty() {
            return Err(invalid(
                "musical_positions.position_ids",
                "needs Position tokens",
            ));
        }
        if self.steps_per_beat == 0 {
            return Err(invalid(
                "musical_positions.steps_per_beat",
                "must be at least 1",
            ));
        }
        if self.max_bars == 0 {
            return Err(invalid("musical_positions.max_bars", "must be at least 1"));
        }
        Ok(())
    }

    /// The longest in-bar step a `Position` token names.
    fn max_step(&self) -> u32 {
        self.position_ids.iter().map(|&(_, s)| s).max().unwrap_or(0)
    }
}

/// The running musical state of each sequence in a batch: bars seen so far and the in-bar
/// position code of the last `Bar`/`Position` token (`step + 1`, 0 before any), `[b, 1]` each.
#[derive(Debug, Clone)]
pub(crate) struct MusicalState {
    bars: Tensor<2, Int>,
    code: Tensor<2, Int>,
}

impl MusicalState {
    /// The device its tensors live on.
    pub(crate) fn device(&self) -> Device {
        self.bars.device()
    }

    /// The rows of `self`, then those of `other`.
    pub(crate) fn cat(self, other: Self) -> Self {
        Self {
            bars: Tensor::cat(vec![self.bars, other.bars], 0),
            code: Tensor::cat(vec![self.code, other.code], 0),
        }
    }

    /// Keeps the rows `rows` (beam search reordering).
    pub(crate) fn select(self, rows: Tensor<1, Int>) -> Self {
        Self {
            bars: self.bars.select(0, rows.clone()),
            code: self.code.select(0, rows),
        }
    }
}

/// Embeddings of the bar index, the beat in the bar and the step in the beat.
#[derive(Module, Debug)]
pub struct MusicalPositions {
    bar: Embedding,
    beat: Embedding,
    step: Embedding,
    /// Per id: 1 for `Bar` tokens, else 0 `[vocab]` (a constant rebuilt from the config).
    is_bar: Tensor<1, Int>,
    /// Per id: `step + 1` for `Position(step)`, 1 for `Bar` (step 0), else 0 `[vocab]`.
    code: Tensor<1, Int>,
    steps_per_beat: usize,
    max_bars: usize,
}

impl MusicalPositions {
    /// The encoding for `config`, `vocab_size` ids, width `d_model`.
    pub(crate) fn new(
        config: &MusicalPositionConfig,
        vocab_size: usize,
        d_model: usize,
        device: &Device,
    ) -> Self {
        let mut is_bar = vec![0i64; vocab_size];
        let mut code = vec![0i64; vocab_size];
        for &id in &config.bar_ids {
            if let Some(slot) = is_bar.get_mut(id as usize) {
                *slot = 1;
                code[id as usize] = 1;
            }
        }
        for &(id, step) in &config.position_ids {
            if let Some(slot) = code.get_mut(id as usize) {
                *slot = i64::from(step) + 1;
            }
        }
        let spb = config.steps_per_beat.max(1) as usize;
        let beats = config.max_step() as usize / spb + 1;
        // Small (GPT-2's position-embedding scale): the model starts close to the one
        // without musical positions and learns how much of them to use (three N(0, 1)
        // tables on top of the token embedding slowed training down).
        let embedding = |rows: usize| {
            EmbeddingConfig::new(rows, d_model)
                .with_initializer(burn::nn::Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device)
        };
        Self {
            bar: embedding(config.max_bars + 1),
            // Beat 0 = no position yet; beats 1..=beats.
            beat: embedding(beats + 1),
            step: embedding(spb + 1),
            is_bar: Tensor::from_data(TensorData::new(is_bar, [vocab_size]), device),
            code: Tensor::from_data(TensorData::new(code, [vocab_size]), device),
            steps_per_beat: spb,
            max_bars: config.max_bars,
        }
    }

    /// The embeddings `[b, t, d_model]` of `tokens` `[b, t]` continuing from `state` (a
    /// fresh sequence without one), and the state after them.
    pub(crate) fn forward(
        &self,
        tokens: Tensor<2, Int>,
        state: Option<&MusicalState>,
    ) -> (Tensor<3>, MusicalState) {
        let [b, t] = tokens.dims();
        let device = tokens.device();
        let flat = tokens.reshape([b * t]);
        let is_bar = self.is_bar.clone().select(0, flat.clone()).reshape([b, t]);
        let code = self.code.clone().select(0, flat).reshape([b, t]);
        let (bars_before, code_before) = match state {
            Some(s) => (s.bars.clone(), s.code.clone()),
            None => (
                Tensor::<2, Int>::zeros([b, 1], &device),
                Tensor::<2, Int>::zeros([b, 1], &device),
            ),
        };
        let bars = is_bar.cumsum(1) + bars_before.expand([b, t]);
        // Carry the last event's code forward: column 0 holds the state's code, column j
        // the j-th token's; the index of the latest event at or before each column is a
        // cumulative maximum of (j where an event is, else 0).
        let codes = Tensor::cat(vec![code_before, code], 1);
        let columns = Tensor::<1, Int>::arange(0..(t as i64 + 1), &device)
            .reshape([1, t + 1])
            .expand([b, t + 1]);
        let events = codes.clone().greater_elem(0);
        let mut at = columns.mask_fill(events.bool_not(), 0);
        // Column 0 is always "the latest event" when nothing came since.
        at = at.cummax(1);
        let carried = codes.gather(1, at).narrow(1, 1, t);
        let spb = self.steps_per_beat as i64;
        let started = carried.clone().greater_elem(0).int();
        let step = carried.clone().sub_scalar(1).clamp_min(0);
        let beat = step.clone().div_scalar(spb).add_scalar(1) * started.clone();
        let sub = step.remainder_scalar(spb).add_scalar(1) * started;
        let bar_index = bars.clone().clamp_max(self.max_bars as i64);
        let x = self.bar.forward(bar_index) + self.beat.forward(beat) + self.step.forward(sub);
        let state = MusicalState {
            bars: bars.narrow(1, t - 1, 1),
            code: carried.narrow(1, t - 1, 1),
        };
        (x, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MusicalPositionConfig {
        MusicalPositionConfig {
            bar_ids: vec![1],
            position_ids: (0..16).map(|s| (10 + s, s)).collect(),
            steps_per_beat: 4,
            max_bars: 3,
        }
    }

    fn ids(rows: &[Vec<i64>], device: &Device) -> Tensor<2, Int> {
        let t = rows[0].len();
        let flat: Vec<i64> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), t]), device)
    }

    fn ints(x: Tensor<2, Int>) -> Vec<i64> {
        x.into_data().convert::<i64>().try_to_vec::<i64>().unwrap()
    }

    /// Bars, beats and steps of a stream, read off through one-hot embeddings.
    #[test]
    fn bars_beats_and_steps_follow_the_stream_and_carry_across_calls() {
        let device = Device::flex();
        let m = MusicalPositions::new(&config(), 40, 8, &device);
        // BOS, Bar, Pos 0, pitch, Pos 6, pitch, Bar, pitch, Pos 13, pitch, Bar, Bar, Bar, pitch
        let stream = vec![0, 1, 10, 30, 16, 30, 1, 30, 23, 30, 1, 1, 1, 30];
        let (_, full) = m.forward(ids(std::slice::from_ref(&stream), &device), None);
        assert_eq!(ints(full.bars.clone()), vec![5]);
        assert_eq!(ints(full.code.clone()), vec![1]);
        // Reading indices through the internals: rebuild them for the whole stream.
        let tokens = ids(std::slice::from_ref(&stream), &device);
        let flat = tokens.clone().reshape([14]);
        let bars = m.is_bar.clone().select(0, flat).reshape([1, 14]).cumsum(1);
        assert_eq!(ints(bars), vec![0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 4, 5, 5]);
        // Split into chunks, the carried state gives the same embeddings.
        let (whole, _) = m.forward(ids(std::slice::from_ref(&stream), &device), None);
        let mut state = None;
        let mut parts = Vec::new();
        for chunk in [&stream[..3], &stream[3..4], &stream[4..9], &stream[9..]] {
            let (x, s) = m.forward(ids(&[chunk.to_vec()], &device), state.as_ref());
            parts.push(x);
            state = Some(s);
        }
        let diff = (Tensor::cat(parts, 1) - whole)
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(diff < 1e-6, "{diff}");
    }

    #[test]
    fn carried_codes_are_the_last_bar_or_position() {
        let device = Device::flex();
        let m = MusicalPositions::new(&config(), 40, 8, &device);
        let stream = vec![0, 30, 1, 30, 16, 30, 30, 1, 23];
        let (_, s) = m.forward(ids(&[stream[..5].to_vec()], &device), None);
        assert_eq!(
            (ints(s.bars.clone()), ints(s.code.clone())),
            (vec![1], vec![7])
        );
        let (_, s) = m.forward(ids(&[stream[5..7].to_vec()], &device), Some(&s));
        assert_eq!(
            (ints(s.bars.clone()), ints(s.code.clone())),
            (vec![1], vec![7])
        );
        let (_, s) = m.forward(ids(&[stream[7..8].to_vec()], &device), Some(&s));
        assert_eq!(
            (ints(s.bars.clone()), ints(s.code.clone())),
            (vec![2], vec![1])
        );
        let (_, s) = m.forward(ids(&[stream[8..].to_vec()], &device), Some(&s));
        assert_eq!((ints(s.bars), ints(s.code)), (vec![2], vec![14]));
    }

    #[test]
    fn a_time_shift_vocabulary_is_refused_with_a_reason() {
        let vocab = Vocabulary::tsd(&aurl_core::tokenize::TokenizerConfig::default()).unwrap();
        assert!(matches!(
            MusicalPositionConfig::from_vocabulary(&vocab, 16),
            Err(ModelError::InvalidConfig { field, .. }) if field == "musical_positions"
        ));
    }
}
