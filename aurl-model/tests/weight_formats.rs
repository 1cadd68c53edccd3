//! A decoding copy with f16 or int8 projection weights (`Transformer::with_weights`) gives
//! the f32 model's logits within the precision of its weights (f16: 1e-2 of their scale,
//! int8: 5e-2), and its KV cache still equals full recomputation.

mod common;

use aurl_model::{
    AttentionKind, FeedForward, PositionEncoding, Transformer, TransformerConfig, WeightFormat,
};
use burn::prelude::*;
use burn::tensor::DType;
use common::{ids, max_diff, random_rows};

const VOCAB: usize = 50;

fn configs() -> Vec<TransformerConfig> {
    vec![
        TransformerConfig::tiny(VOCAB),
        TransformerConfig {
            positions: PositionEncoding::Relative,
            max_relative: Some(8),
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

/// The largest logit error each format may make, relative to the largest logit.
fn tolerance(format: WeightFormat) -> f32 {
    match format {
        WeightFormat::F32 => 1e-5,
        WeightFormat::F16 => 1e-2,
        WeightFormat::Int8 => 5e-2,
    }
}

#[test]
fn f16_and_int8_weights_keep_the_logits_of_the_f32_model() {
    let device = Device::flex();
    for config in configs() {
        let exact = model(&config, &device);
        assert_eq!(exact.weight_format(), WeightFormat::F32);
        for format in [WeightFormat::F16, WeightFormat::Int8] {
            let copy = exact.clone().with_weights(format);
            assert_eq!(copy.weight_format(), format);
            assert!(copy.has_half_weights() == (format == WeightFormat::F16));
            // 3 rows of 17: the few-row kernels for the cache's steps, gemm beyond.
            for rows in [1, 3] {
                let tokens = ids(&random_rows(rows, 17, VOCAB, 4), &device);
                let reference = exact.forward(tokens.clone(), 0, None).unwrap();
                let approximate = copy.forward(tokens, 0, None).unwrap();
                assert_eq!(approximate.dtype(), DType::F32);
                let scale = reference.clone().abs().max().into_scalar::<f32>();
                let d = max_diff(approximate, reference);
                assert!(
                    d < tolerance(format) * scale,
                    "{format} {config:?}: {d} of {scale}"
                );
            }
        }
    }
}

#[test]
fn f16_and_int8_weights_decode_through_the_cache_like_full_recomputation() {
    let device = Device::flex();
    for config in configs() {
        for format in [WeightFormat::F16, WeightFormat::Int8] {
            let copy = model(&config, &device).with_weights(format);
            let tokens = ids(&random_rows(2, 13, VOCAB, 5), &device);
            let full = copy.forward(tokens.clone(), 0, None).unwrap();
            let mut cache = copy.new_cache(2);
            let mut at = 0;
            for len in [4, 1, 1, 3, 1, 1, 2] {
                let part = copy
                    .forward(tokens.clone().narrow(1, at, len), at, Some(&mut cache))
                    .unwrap();
                let d = max_diff(part, full.clone().narrow(1, at, len));
                assert!(d < 1e-3, "{format} {config:?} chunk at {at}+{len}: {d}");
                at += len;
            }
        }
    }
}
