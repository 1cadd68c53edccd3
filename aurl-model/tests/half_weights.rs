//! A model with half-precision projection weights (`Transformer::with_half_weights`) gives
//! the f32 model's logits within half precision, and its KV cache still equals full
//! recomputation.

mod common;

use aurl_model::{AttentionKind, FeedForward, PositionEncoding, Transformer, TransformerConfig};
use burn::prelude::*;
use burn::tensor::DType;
use common::{ids, max_diff, random_rows};

const VOCAB: usize = 50;

fn configs() -> Vec<TransformerConfig> {
    vec![
        TransformerConfig::tiny(VOCAB),
        TransformerConfig {
            positions: PositionEncoding::Relative,
            max_relative: 8,
            feed_forward: FeedForward::SwiGlu,
            ..TransformerConfig::tiny(VOCAB)
        },
        TransformerConfig {
            positions: PositionEncoding::Rotary,
            attention: AttentionKind::Sliding { window: 3 },
            ..TransformerConfig::tiny(VOCAB)
        },
    ]
}

fn model(config: &TransformerConfig, device: &Device) -> Transformer {
    device.seed(11);
    config.init(device).unwrap()
}

#[test]
fn half_weights_keep_the_logits_of_the_f32_model() {
    let device = Device::flex();
    for config in configs() {
        let exact = model(&config, &device);
        let half = exact.clone().with_half_weights();
        assert!(half.has_half_weights() && !exact.has_half_weights());
        let tokens = ids(&random_rows(3, 17, VOCAB, 4), &device);
        let reference = exact.forward(tokens.clone(), 0, None).unwrap();
        let approximate = half.forward(tokens, 0, None).unwrap();
        assert_eq!(approximate.dtype(), DType::F32);
        let scale = reference.clone().abs().max().into_scalar::<f32>();
        let d = max_diff(approximate, reference);
        assert!(d < 1e-2 * scale, "{config:?}: {d} of {scale}");
    }
}

#[test]
fn half_weights_decode_through_the_cache_like_full_recomputation() {
    let device = Device::flex();
    for config in configs() {
        let half = model(&config, &device).with_half_weights();
        let tokens = ids(&random_rows(2, 13, VOCAB, 5), &device);
        let full = half.forward(tokens.clone(), 0, None).unwrap();
        let mut cache = half.new_cache(2);
        let mut at = 0;
        for len in [4, 1, 1, 3, 1, 1, 2] {
            let part = half
                .forward(tokens.clone().narrow(1, at, len), at, Some(&mut cache))
                .unwrap();
            let d = max_diff(part, full.clone().narrow(1, at, len));
            assert!(d < 1e-3, "{config:?} chunk at {at}+{len}: {d}");
            at += len;
        }
    }
}
