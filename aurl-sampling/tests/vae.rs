//! Generation from a VAE's latent codes: the code reaches every decoding path (batched,
//! cached, uncached), pieces stay grammar-valid, and a missing code is a typed error.

use aurl_core::tokenize::{TokenizerConfig, by_name};
use aurl_model::vae::{LatentRng, VaeConfig};
use aurl_sampling::{BeamConfig, GenerationConfig, Generator, Request, SamplingError, Strategy};
use burn::prelude::*;

#[test]
fn pieces_follow_their_codes_on_every_decoding_path() {
    let device = Device::flex();
    let tokenizer = by_name("remi", &TokenizerConfig::default()).unwrap();
    let vocab = tokenizer.vocab();
    device.seed(8);
    let vae = VaeConfig::tiny(vocab.len()).init(&device).unwrap();
    // Codes far apart, so an untrained decoder's greedy choices differ between them.
    let codes: Vec<Vec<f32>> = vae
        .sample_prior(4, &mut LatentRng::new(2), &device)
        .to_rows()
        .into_iter()
        .map(|c| c.into_iter().map(|x| 4.0 * x).collect())
        .collect();
    let requests: Vec<Request> = codes
        .iter()
        .map(|code| Request {
            max_new_tokens: 40,
            latent: Some(code.clone()),
            ..Request::default()
        })
        .collect();
    let generate = |use_cache: bool, batch_size: usize| {
        let config = GenerationConfig {
            strategy: Strategy {
                greedy: true,
                ..Strategy::default()
            },
            use_cache,
            batch_size,
            ..GenerationConfig::default()
        };
        let generator = Generator::conditioned(&vae, vocab, config).unwrap();
        generator.generate(&requests).unwrap()
    };
    let batched = generate(true, 4);
    let alone = generate(true, 1);
    let uncached = generate(false, 4);
    for i in 0..4 {
        assert_eq!(
            batched[i].tokens, alone[i].tokens,
            "piece {i}: batched vs alone"
        );
        assert_eq!(
            batched[i].tokens, uncached[i].tokens,
            "piece {i}: cached vs not"
        );
        assert_eq!(batched[i].grammar.error_count(), 0);
    }
    let distinct: std::collections::HashSet<_> = batched.iter().map(|p| &p.tokens).collect();
    assert!(distinct.len() > 1, "different codes, different pieces");
}

#[test]
fn a_conditioned_generator_needs_a_code_of_the_right_length() {
    let device = Device::flex();
    let tokenizer = by_name("remi", &TokenizerConfig::default()).unwrap();
    let vae = VaeConfig::tiny(tokenizer.vocab().len())
        .init(&device)
        .unwrap();
    let generator =
        Generator::conditioned(&vae, tokenizer.vocab(), GenerationConfig::default()).unwrap();
    for latent in [None, Some(vec![0.0; 3])] {
        let err = generator
            .generate(&[Request {
                max_new_tokens: 5,
                latent,
                ..Request::default()
            }])
            .unwrap_err();
        assert!(
            matches!(&err, SamplingError::InvalidConfig { field, .. } if field == "latent"),
            "{err}"
        );
    }
    assert!(
        generator
            .beam_search(&Request::default(), &BeamConfig::default())
            .is_err()
    );
}

#[test]
fn a_conditioned_generator_decodes_with_half_weights() {
    use aurl_model::WeightFormat;
    let device = Device::flex();
    let tokenizer = by_name("remi", &TokenizerConfig::default()).unwrap();
    let vae = VaeConfig::tiny(tokenizer.vocab().len())
        .init(&device)
        .unwrap();
    let code = vae
        .sample_prior(1, &mut LatentRng::new(5), &device)
        .to_rows()
        .remove(0);
    let config = GenerationConfig {
        weights: WeightFormat::F16,
        ..GenerationConfig::default()
    };
    let generator = Generator::conditioned(&vae, tokenizer.vocab(), config).unwrap();
    let pieces = generator
        .generate(&[Request {
            max_new_tokens: 40,
            latent: Some(code),
            ..Request::default()
        }])
        .unwrap();
    assert!(pieces[0].tokens.len() > pieces[0].prompt_len);
    assert_eq!(pieces[0].grammar.error_count(), 0);
    assert!(
        !vae.decoder().has_half_weights(),
        "the VAE keeps its f32 weights"
    );
}

#[test]
fn interpolation_from_midi_runs_from_one_pieces_code_to_the_others() {
    use aurl_model::any::Generative;
    use aurl_model::weights::SavedModel;
    use aurl_sampling::interpolation_from_midi;
    let device = Device::flex();
    let tokenizer = by_name("remi", &TokenizerConfig::default()).unwrap();
    let config = VaeConfig::tiny(tokenizer.vocab().len());
    let model = Generative::Vae(SavedModel {
        model: config.init(&device).unwrap(),
        config,
        vocabulary: tokenizer.vocab().clone(),
    });
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let (a, b) = (
        fixtures.join("triplets.mid"),
        fixtures.join("tempo_timesig_changes.mid"),
    );
    let codes = interpolation_from_midi(&model, [&a, &b], 4, &device).unwrap();
    assert_eq!(codes.len(), 4);
    let vae = model.vae().unwrap();
    let code = |path: &std::path::Path| {
        let ids = aurl_sampling::prompt_from_midi(path, tokenizer.as_ref(), model.max_seq_len());
        vae.code_of(&ids.unwrap(), &device)
    };
    let close = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-5);
    assert!(close(&codes[0], &code(&a)) && close(&codes[3], &code(&b)));
    assert!(!close(&codes[1], &codes[2]), "the path moves");

    let missing = fixtures.join("no_such_file.mid");
    let err = interpolation_from_midi(&model, [&a, &missing], 4, &device).unwrap_err();
    assert!(matches!(err, SamplingError::PromptFile { .. }), "{err}");

    let config = aurl_model::TransformerConfig::tiny(tokenizer.vocab().len());
    let transformer = Generative::Transformer(SavedModel {
        model: config.init(&device).unwrap(),
        config,
        vocabulary: tokenizer.vocab().clone(),
    });
    let err = interpolation_from_midi(&transformer, [&a, &b], 4, &device).unwrap_err();
    assert!(
        matches!(&err, SamplingError::InvalidConfig { field, .. } if field == "interpolate"),
        "{err}"
    );
}
