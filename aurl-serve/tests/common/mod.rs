//! An untrained tiny REMI transformer to serve in tests.

use aurl::burn::prelude::Device;
use aurl::core::tokenize::{Remi, Tokenizer, TokenizerConfig};
use aurl::model::TransformerConfig;
use aurl::model::any::Generative;
use aurl::model::weights::SavedModel;

use std::sync::Mutex;

/// The CPU backend's random generator is one per process: tests of one binary run in
/// parallel, so a test seeding it and then initialising a model could draw after another
/// test's seed. Seed and initialise under this lock.
static SEEDED: Mutex<()> = Mutex::new(());

/// `init(device)` run right after `device.seed(seed)`, no other test drawing in between.
pub fn seeded<T>(device: &Device, seed: u64, init: impl FnOnce(&Device) -> T) -> T {
    let _only = SEEDED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    init(device)
}

/// The tiny transformer over REMI's default vocabulary, initialised from `seed`, and its
/// device.
pub fn tiny_transformer(seed: u64) -> (Generative, Device) {
    let remi = Remi::new(&TokenizerConfig::default()).unwrap();
    let device = Device::flex();
    let config = TransformerConfig::tiny(remi.vocab().len());
    let model = Generative::Transformer(SavedModel {
        model: seeded(&device, seed, |device| config.init(device).unwrap()),
        config,
        vocabulary: remi.vocab().clone(),
    });
    (model, device)
}
