//! The KV cache gives the logits of full recomputation for every attention variant and
//! position encoding; causality and windows hold.

mod common;

use aurl_model::{
    AttentionKind, FeedForward, ModelError, MusicalPositionConfig, PositionEncoding, Transformer,
    TransformerConfig,
};
use burn::prelude::*;
use common::{devices, ids, max_diff, random_rows};

const VOCAB: usize = 50;

fn variants() -> Vec<TransformerConfig> {
    let mut out = Vec::new();
    for positions in [
        PositionEncoding::Sinusoidal,
        PositionEncoding::Learned,
        PositionEncoding::Rotary,
        PositionEncoding::Relative,
    ] {
        let summarised = [
            AttentionKind::Hierarchical {
                window: 3,
                block: 2,
            },
            AttentionKind::MultiScale {
                window: 3,
                block: 2,
            },
        ];
        // Block summaries have no relative distance (a config error, tested below).
        let kinds = [AttentionKind::Full, AttentionKind::Sliding { window: 3 }]
            .into_iter()
            .chain(
                summarised
                    .into_iter()
                    .filter(|_| positions != PositionEncoding::Relative),
            );
        for attention in kinds {
            for feed_forward in [FeedForward::Gelu, FeedForward::SwiGlu] {
                out.push(TransformerConfig {
                    positions,
                    // Relative distances from 8 on share an embedding (21-token tests).
                    max_relative: Some(8),
                    attention,
                    feed_forward,
                    ..TransformerConfig::tiny(VOCAB)
                });
            }
        }
    }
    // Musical positions: random ids include its bars (1, 2) and positions (10..26) often,
    // and 21 tokens pass its 3 bar embeddings.
    for attention in [AttentionKind::Full, AttentionKind::Sliding { window: 3 }] {
        out.push(TransformerConfig {
            positions: PositionEncoding::Rotary,
            attention,
            musical_positions: Some(MusicalPositionConfig {
                bar_ids: vec![1, 2],
                position_ids: (0..16).map(|s| (10 + s, s)).collect(),
                steps_per_beat: 4,
                max_bars: 3,
            }),
            ..TransformerConfig::tiny(VOCAB)
        });
    }
    out
}

fn model(config: &TransformerConfig, device: &Device) -> Transformer {
    device.seed(7);
    config.init(device).unwrap()
}

#[test]
fn cached_decoding_equals_full_recomputation_for_every_variant() {
    for device in devices() {
        for config in variants() {
            let m = model(&config, &device);
            let rows = random_rows(2, 21, VOCAB, 1);
            let tokens = ids(&rows, &device);
            let full = m.forward(tokens.clone(), 0, None).unwrap();
            // One token at a time.
            let mut cache = m.new_cache(2);
            for i in 0..21 {
                let step = m
                    .forward(tokens.clone().narrow(1, i, 1), i, Some(&mut cache))
                    .unwrap();
                let d = max_diff(step, full.clone().narrow(1, i, 1));
                assert!(d < 1e-4, "{config:?} step {i}: {d}");
            }
            // Uneven chunks: a prefill, single steps and a chunk longer than the window.
            let mut cache = m.new_cache(2);
            let mut at = 0;
            for len in [7, 1, 1, 5, 2, 1, 4] {
                let part = m
                    .forward(tokens.clone().narrow(1, at, len), at, Some(&mut cache))
                    .unwrap();
                let d = max_diff(part, full.clone().narrow(1, at, len));
                assert!(d < 1e-4, "{config:?} chunk at {at}+{len}: {d}");
                at += len;
            }
            assert_eq!(cache.len(), 21);
        }
    }
}

#[test]
fn a_future_token_never_changes_a_past_output() {
    for device in devices() {
        for config in variants() {
            let m = model(&config, &device);
            let mut rows = random_rows(1, 16, VOCAB, 2);
            let before = m.forward(ids(&rows, &device), 0, None).unwrap();
            rows[0][10] = (rows[0][10] + 1) % VOCAB as i64;
            let after = m.forward(ids(&rows, &device), 0, None).unwrap();
            let past = max_diff(
                before.clone().narrow(1, 0, 10),
                after.clone().narrow(1, 0, 10),
            );
            assert_eq!(past, 0.0, "{config:?}");
            assert!(max_diff(before.narrow(1, 10, 1), after.narrow(1, 10, 1)) > 1e-6);
        }
    }
}

#[test]
fn tokens_outside_the_sliding_window_have_no_influence() {
    let device = Device::flex();
    // Two layers of window 3: position i sees i-4..=i through the stack, nothing earlier.
    for positions in [
        PositionEncoding::Sinusoidal,
        PositionEncoding::Rotary,
        PositionEncoding::Relative,
    ] {
        let config = TransformerConfig {
            positions,
            attention: AttentionKind::Sliding { window: 3 },
            ..TransformerConfig::tiny(VOCAB)
        };
        let m = model(&config, &device);
        let rows = random_rows(1, 12, VOCAB, 3);
        let base = m.forward(ids(&rows, &device), 0, None).unwrap();
        let at = |j: usize| {
            let mut r = rows.clone();
            r[0][j] = (r[0][j] + 7) % VOCAB as i64;
            let out = m.forward(ids(&r, &device), 0, None).unwrap();
            max_diff(base.clone().narrow(1, 11, 1), out.narrow(1, 11, 1))
        };
        assert_eq!(
            at(6),
            0.0,
            "{positions:?}: 5 back is outside the receptive field"
        );
        assert!(at(7) > 1e-6, "{positions:?}: 4 back is inside it");
    }
}

#[test]
fn hierarchical_queries_see_their_window_and_the_complete_blocks_before_it() {
    let device = Device::flex();
    // One layer, window 3, blocks of 3: query 10 sees 8..=10 in full and the summaries of
    // blocks 0..3 and 3..6; positions 6 and 7 (block 6..9 is not complete before the window)
    // are invisible to it.
    for positions in [PositionEncoding::Sinusoidal, PositionEncoding::Rotary] {
        let config = TransformerConfig {
            positions,
            n_layers: 1,
            attention: AttentionKind::Hierarchical {
                window: 3,
                block: 3,
            },
            ..TransformerConfig::tiny(VOCAB)
        };
        let m = model(&config, &device);
        let rows = random_rows(1, 11, VOCAB, 5);
        let base = m.forward(ids(&rows, &device), 0, None).unwrap();
        let at = |j: usize| {
            let mut r = rows.clone();
            r[0][j] = (r[0][j] + 7) % VOCAB as i64;
            let out = m.forward(ids(&r, &device), 0, None).unwrap();
            max_diff(base.clone().narrow(1, 10, 1), out.narrow(1, 10, 1))
        };
        for j in [0, 2, 3, 5, 8, 9] {
            assert!(at(j) > 1e-6, "{positions:?}: position {j} is seen");
        }
        for j in [6, 7] {
            assert_eq!(
                at(j),
                0.0,
                "{positions:?}: position {j} is in no visible block"
            );
        }
        // The cache holds the window and one summary per complete block.
        let mut cache = m.new_cache(1);
        m.forward(ids(&rows, &device), 0, Some(&mut cache)).unwrap();
        assert_eq!(cache.held(), 3);
    }
    let relative = TransformerConfig {
        positions: PositionEncoding::Relative,
        attention: AttentionKind::MultiScale {
            window: 4,
            block: 4,
        },
        ..TransformerConfig::tiny(VOCAB)
    };
    assert!(matches!(
        relative.validate(),
        Err(ModelError::InvalidConfig { field, .. }) if field == "attention"
    ));
}

#[test]
fn the_sliding_cache_holds_only_the_window() {
    let device = Device::flex();
    let config = TransformerConfig {
        attention: AttentionKind::Sliding { window: 8 },
        ..TransformerConfig::tiny(VOCAB)
    };
    let m = model(&config, &device);
    let mut cache = m.new_cache(1);
    for i in 0..40 {
        let t = ids(&[vec![(i % VOCAB) as i64]], &device);
        m.forward(t, i, Some(&mut cache)).unwrap();
    }
    assert_eq!((cache.len(), cache.held()), (40, 8));
}

#[test]
fn padding_is_never_attended_to() {
    let device = Device::flex();
    // Rotary positions are relative, so a left-padded row must give the unpadded logits.
    let config = TransformerConfig {
        positions: PositionEncoding::Rotary,
        ..TransformerConfig::tiny(VOCAB)
    };
    let m = model(&config, &device);
    let real = random_rows(1, 9, VOCAB, 4);
    let alone = m.forward(ids(&real, &device), 0, None).unwrap();
    let mut padded = vec![vec![0i64; 3]];
    padded[0].extend(&real[0]);
    let mask: Vec<bool> = (0..12).map(|i| i < 3).collect();
    let mask = Tensor::<2, Bool>::from_data(TensorData::new(mask, [1, 12]), &device);
    let out = m.forward_padded(ids(&padded, &device), mask).unwrap();
    let d = max_diff(out.narrow(1, 3, 9), alone);
    assert!(d < 1e-4, "{d}");
}

#[test]
fn misuse_is_a_typed_error() {
    let device = Device::flex();
    let m = model(&TransformerConfig::tiny(VOCAB), &device);
    let mut cache = m.new_cache(1);
    let t = ids(&[vec![1, 2]], &device);
    assert!(matches!(
        m.forward(t.clone(), 3, Some(&mut cache)),
        Err(ModelError::Shape(_))
    ));
    assert!(matches!(
        m.forward(t.clone(), 255, None),
        Err(ModelError::PositionOutOfRange {
            position: 256,
            max: 256
        })
    ));
    let mut wrong = m.new_cache(2);
    assert!(matches!(
        m.forward(t, 0, Some(&mut wrong)),
        Err(ModelError::Shape(_))
    ));
    let bad = TransformerConfig {
        n_heads: 3,
        ..TransformerConfig::tiny(VOCAB)
    };
    let err = bad.init(&device).unwrap_err();
    assert!(err.to_string().contains("n_heads"), "{err}");
}

#[test]
fn reordered_rows_continue_as_if_computed_in_that_order() {
    for device in devices() {
        for config in variants() {
            let m = model(&config, &device);
            let rows = random_rows(2, 9, VOCAB, 4);
            // Rows A, B prefilled together, then reordered to B, A, B (beam search keeps a
            // parent twice and drops none here), then one more token each.
            let mut cache = m.new_cache(2);
            let prefix: Vec<Vec<i64>> = rows.iter().map(|r| r[..8].to_vec()).collect();
            m.forward(ids(&prefix, &device), 0, Some(&mut cache))
                .unwrap();
            cache.reorder(&[1, 0, 1]).unwrap();
            assert_eq!(cache.batch(), 3);
            let next: Vec<Vec<i64>> = [1, 0, 1].iter().map(|&r| vec![rows[r][8]]).collect();
            let stepped = m.forward(ids(&next, &device), 8, Some(&mut cache)).unwrap();
            let order: Vec<Vec<i64>> = [1, 0, 1].iter().map(|&r| rows[r].clone()).collect();
            let full = m
                .forward(ids(&order, &device), 0, None)
                .unwrap()
                .narrow(1, 8, 1);
            let d = max_diff(stepped, full);
            assert!(d < 1e-4, "{config:?}: {d}");
            assert!(matches!(cache.reorder(&[3]), Err(ModelError::Shape(_))));
            assert!(cache.reorder(&[]).is_err());
        }
    }
}

/// Logits of `row` decoded alone through a cache: after its first `prompt` tokens, then
/// after each later token, `[1, 1, vocab]` each.
fn alone(m: &Transformer, row: &[i64], prompt: usize, device: &Device) -> Vec<Tensor<3>> {
    let mut cache = m.new_cache(1);
    let mut out = vec![
        m.forward(ids(&[row[..prompt].to_vec()], device), 0, Some(&mut cache))
            .unwrap()
            .narrow(1, prompt - 1, 1),
    ];
    for (p, &token) in row.iter().enumerate().skip(prompt) {
        out.push(
            m.forward(ids(&[vec![token]], device), p, Some(&mut cache))
                .unwrap(),
        );
    }
    out
}

#[test]
fn rows_joining_and_leaving_a_batch_decode_as_if_alone() {
    for device in devices() {
        let flex = device == Device::flex();
        for config in variants() {
            let m = model(&config, &device);
            if !m.new_cache(1).can_join() {
                continue;
            }
            // A starts with 5 tokens; B joins with 9 (A's keys move right), C with 2 (its keys
            // go after the others' start); A leaves, then B; C ends alone.
            let rows = random_rows(3, 18, VOCAB, 11);
            let prompts = [5, 9, 2];
            let expected: Vec<Vec<Tensor<3>>> = (0..3)
                .map(|r| alone(&m, &rows[r], prompts[r], &device))
                .collect();
            let mut cache = m.new_cache(0);
            // Batch rows → (request, tokens fed so far).
            let mut live: Vec<(usize, usize)> = Vec::new();
            let check = |r: usize, step: usize, logits: Tensor<3>| {
                let d = max_diff(logits, expected[r][step].clone());
                // Relative positions sum over more (masked) keys: equal up to rounding.
                let exact = flex && config.positions != PositionEncoding::Relative;
                assert!(
                    if exact { d == 0.0 } else { d < 1e-4 },
                    "{config:?} row {r} step {step}: {d}"
                );
            };
            let join =
                |cache: &mut aurl_model::KvCache, live: &mut Vec<(usize, usize)>, r: usize| {
                    let p = prompts[r];
                    let mut own = m.new_cache(1);
                    let logits = m
                        .forward(ids(&[rows[r][..p].to_vec()], &device), 0, Some(&mut own))
                        .unwrap()
                        .narrow(1, p - 1, 1);
                    check(r, 0, logits);
                    cache.join(own).unwrap();
                    live.push((r, p));
                };
            let step = |cache: &mut aurl_model::KvCache, live: &mut Vec<(usize, usize)>| {
                let next: Vec<Vec<i64>> = live.iter().map(|&(r, fed)| vec![rows[r][fed]]).collect();
                let positions: Vec<usize> = live.iter().map(|&(_, fed)| fed).collect();
                assert_eq!(cache.row_positions(), positions);
                let logits = m.forward_rows(ids(&next, &device), cache, None).unwrap();
                for (i, (r, fed)) in live.iter_mut().enumerate() {
                    *fed += 1;
                    check(*r, *fed - prompts[*r], logits.clone().narrow(0, i, 1));
                }
            };
            join(&mut cache, &mut live, 0);
            step(&mut cache, &mut live);
            step(&mut cache, &mut live);
            join(&mut cache, &mut live, 1);
            assert!(cache.is_ragged());
            // A ragged cache refuses the one-offset forward, and is left as it was.
            let two = ids(&[vec![1], vec![1]], &device);
            let at = cache.len();
            let refused = m.forward(two, at, Some(&mut cache));
            assert!(matches!(refused, Err(ModelError::Shape(_))));
            step(&mut cache, &mut live);
            join(&mut cache, &mut live, 2);
            step(&mut cache, &mut live);
            step(&mut cache, &mut live);
            cache.retain(&[1, 2]).unwrap();
            live.remove(0);
            step(&mut cache, &mut live);
            cache.retain(&[1]).unwrap();
            live.remove(0);
            for _ in 0..4 {
                step(&mut cache, &mut live);
            }
            cache.retain(&[]).unwrap();
            assert_eq!(cache.batch(), 0);
        }
    }
}

#[test]
fn windowed_and_summarised_caches_refuse_to_join() {
    let device = Device::flex();
    for config in variants() {
        let m = model(&config, &device);
        let mut cache = m.new_cache(1);
        if cache.can_join() {
            continue;
        }
        m.forward(ids(&[vec![1, 2]], &device), 0, Some(&mut cache))
            .unwrap();
        let mut other = m.new_cache(1);
        m.forward(ids(&[vec![3]], &device), 0, Some(&mut other))
            .unwrap();
        assert!(
            matches!(cache.join(other), Err(ModelError::Shape(_))),
            "{config:?}"
        );
        let next = ids(&[vec![4]], &device);
        assert!(matches!(
            m.forward_rows(next, &mut cache, None),
            Err(ModelError::Shape(_))
        ));
    }
}

#[test]
fn a_lone_row_decodes_as_a_row_of_a_batch_at_production_widths() {
    // Inner dimensions within one block of gemm's (512) and past it, evenly or not, and
    // output widths on both sides of 64: a lone row's sums follow gemm's blocking.
    let device = Device::flex();
    for (d_ff, vocab) in [(512, 50), (1000, 431), (1536, 431)] {
        let config = TransformerConfig {
            d_model: 256,
            n_heads: 4,
            d_ff,
            ..TransformerConfig::tiny(vocab)
        };
        let m = model(&config, &device);
        let rows = random_rows(3, 6, vocab, 9);
        let mut lone = m.new_cache(1);
        let mut batch = m.new_cache(3);
        let prefix: Vec<Vec<i64>> = rows.iter().map(|r| r[..5].to_vec()).collect();
        m.forward(ids(&prefix[..1], &device), 0, Some(&mut lone))
            .unwrap();
        m.forward(ids(&prefix, &device), 0, Some(&mut batch))
            .unwrap();
        let next: Vec<Vec<i64>> = rows.iter().map(|r| vec![r[5]]).collect();
        let a = m
            .forward(ids(&next[..1], &device), 5, Some(&mut lone))
            .unwrap();
        let b = m.forward(ids(&next, &device), 5, Some(&mut batch)).unwrap();
        assert_eq!(
            max_diff(a, b.narrow(0, 0, 1)),
            0.0,
            "d_ff {d_ff}, vocab {vocab}"
        );
    }
}
