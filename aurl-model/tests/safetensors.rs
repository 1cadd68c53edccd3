//! Weights as safetensors (the `store` feature): a saved transformer or VAE loads back with
//! the same outputs, the file is plain safetensors with Aurl's metadata, and the wrong kind
//! or a damaged file is a typed error.
#![cfg(feature = "store")]

use aurl_core::tokenize::{TokenizerConfig, Vocabulary};
use aurl_model::safetensors::{load_safetensors, save_safetensors};
use aurl_model::vae::{LatentRng, Vae, VaeConfig};
use aurl_model::{ModelError, PositionEncoding, Transformer, TransformerConfig};
use burn::prelude::*;

fn tokens(device: &Device) -> Tensor<2, Int> {
    Tensor::<1, Int>::from_data(TensorData::new((1..=12i64).collect(), [12]), device)
        .reshape([1, 12])
}

fn max_diff(a: Tensor<3>, b: Tensor<3>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

#[test]
fn models_round_trip_through_safetensors() {
    let device = Device::flex();
    let vocab = Vocabulary::remi(&TokenizerConfig::default()).unwrap();
    let dir = std::env::temp_dir().join(format!("aurl-safetensors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    device.seed(1);
    let config = TransformerConfig {
        positions: PositionEncoding::Relative,
        ..TransformerConfig::tiny(vocab.len())
    };
    let model = config.init(&device).unwrap();
    let path = dir.join("transformer.safetensors");
    save_safetensors(&path, &model, &config, &vocab).unwrap();
    let loaded = load_safetensors::<Transformer>(&path, &device).unwrap();
    assert_eq!(loaded.config, config);
    vocab.ensure_same(&loaded.vocabulary).unwrap();
    let d = max_diff(
        model.forward(tokens(&device), 0, None).unwrap(),
        loaded.model.forward(tokens(&device), 0, None).unwrap(),
    );
    assert_eq!(d, 0.0);

    // Any safetensors reader sees named tensors and the metadata.
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let names = file.names();
    assert!(names.iter().any(|n| n.contains("relative")), "{names:?}");
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(
        header.metadata().as_ref().unwrap()["aurl.kind"],
        "transformer"
    );

    // A VAE, and the kinds are not confused.
    let vae_config = VaeConfig::tiny(vocab.len());
    let vae = vae_config.init(&device).unwrap();
    let vae_path = dir.join("vae.safetensors");
    save_safetensors(&vae_path, &vae, &vae_config, &vocab).unwrap();
    let loaded_vae = load_safetensors::<Vae>(&vae_path, &device).unwrap();
    let latent = vae.sample_prior(1, &mut LatentRng::new(3), &device);
    let padding = tokens(&device).equal_elem(-1);
    let d = max_diff(
        vae.decode(tokens(&device), padding.clone(), &latent)
            .unwrap(),
        loaded_vae
            .model
            .decode(tokens(&device), padding, &latent)
            .unwrap(),
    );
    assert_eq!(d, 0.0);
    assert!(matches!(
        load_safetensors::<Transformer>(&vae_path, &device),
        Err(ModelError::Checkpoint { .. })
    ));

    // Damage is a typed error, never a panic.
    std::fs::write(&path, b"not safetensors").unwrap();
    assert!(matches!(
        load_safetensors::<Transformer>(&path, &device),
        Err(ModelError::Checkpoint { .. })
    ));
    assert!(matches!(
        load_safetensors::<Transformer>(&dir.join("missing"), &device),
        Err(ModelError::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
