//! Attention dropout can be set apart from the residual dropout: it is what draws random
//! numbers over the `[batch, heads, t, t]` weights.

use aurl_model::{ModelError, TransformerConfig};
use burn::prelude::*;

mod common;

/// Two training-mode forwards of the same input: equal unless some dropout is active.
fn forwards_differ(dropout: f64, attention_dropout: Option<f64>) -> bool {
    let _guard = common::rng_guard();
    let device = Device::flex().autodiff();
    device.seed(5);
    let model = TransformerConfig {
        dropout,
        attention_dropout,
        ..TransformerConfig::tiny(40)
    }
    .init(&device)
    .unwrap();
    let tokens = Tensor::<2, Int>::from_data(
        TensorData::new(
            (0..32).map(|i| i64::from(i % 40)).collect::<Vec<_>>(),
            [2, 16],
        ),
        &device,
    );
    let a = model.forward(tokens.clone(), 0, None).unwrap().into_data();
    let b = model.forward(tokens, 0, None).unwrap().into_data();
    a != b
}

#[test]
fn attention_dropout_overrides_dropout_on_the_attention_weights_only() {
    assert!(!forwards_differ(0.0, None));
    assert!(
        forwards_differ(0.0, Some(0.5)),
        "attention dropout alone is active"
    );
    assert!(forwards_differ(0.5, Some(0.0)), "residual dropout stays on");
    assert!(forwards_differ(0.5, None), "None follows dropout");
}

#[test]
fn attention_dropout_out_of_range_names_the_field() {
    for p in [1.0, -0.1, f64::NAN] {
        let error = TransformerConfig {
            attention_dropout: Some(p),
            ..TransformerConfig::tiny(40)
        }
        .init(&Device::flex())
        .unwrap_err();
        assert!(
            matches!(&error, ModelError::InvalidConfig { field, .. } if field == "attention_dropout"),
            "{error}"
        );
    }
}
