//! An untrained tiny REMI transformer to serve in tests.

use aurl::burn::prelude::Device;
use aurl::core::tokenize::{Remi, Tokenizer, TokenizerConfig};
use aurl::model::TransformerConfig;
use aurl::model::any::Generative;
use aurl::model::weights::SavedModel;

/// The tiny transformer over REMI's default vocabulary, initialised from `seed`, and its
/// device.
pub fn tiny_transformer(seed: u64) -> (Generative, Device) {
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    let device = Device::flex();
    device.seed(seed);
    let config = TransformerConfig::tiny(remi.vocab().len());
    let model = Generative::Transformer(SavedModel {
        model: config.init(&device).unwrap(),
        config,
        vocabulary: remi.vocab().clone(),
    });
    (model, device)
}
