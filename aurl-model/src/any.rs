//! A saved model of whichever kind its directory holds: what tools that load "a run" (a
//! generator, an evaluator, a server) start from, without comparing kind names.

use std::path::Path;

use aurl_core::tokenize::Vocabulary;
use burn::prelude::*;

use crate::error::{ModelError, checkpoint_error};
use crate::vae::Vae;
use crate::weights::{MODEL_FILE, ModelKind, SavedModel, load_model_as, saved_kind};
use crate::{Transformer, VaeGan};

/// A model loaded by what its `model.json` says it is.
// Loaded once per tool and rarely moved: boxing the variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyModel {
    /// A decoder-only transformer.
    Transformer(SavedModel<Transformer>),
    /// A transformer VAE.
    Vae(SavedModel<Vae>),
    /// A VAE-GAN (the VAE and its discriminator).
    VaeGan(SavedModel<VaeGan>),
}

/// What generates tokens: a transformer, or a VAE's decoder conditioned on latent codes
/// (a VAE-GAN generates with its VAE).
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Generative {
    /// Next-token sampling from a transformer.
    Transformer(SavedModel<Transformer>),
    /// Decoding from a VAE's latent codes.
    Vae(SavedModel<Vae>),
}

/// Loads the model saved in `dir` (by [`crate::weights::save_model_as`], or a checkpoint's
/// `model/`) onto `device`, whatever its kind.
///
/// ```no_run
/// use aurl_model::any::{AnyModel, load_any};
/// use burn::prelude::*;
///
/// let model = load_any(std::path::Path::new("runs/chorales/best"), &Device::flex())?;
/// println!("a {} model over {} tokens", model.kind(), model.vocabulary().len());
/// # Ok::<(), aurl_model::ModelError>(())
/// ```
///
/// # Errors
/// As [`load_model_as`]; [`ModelError::Checkpoint`] for a kind this version does not know.
pub fn load_any(dir: &Path, device: &Device) -> Result<AnyModel, ModelError> {
    let kind = saved_kind(dir)?;
    match kind.as_str() {
        k if k == Transformer::KIND => Ok(AnyModel::Transformer(load_model_as(dir, device)?)),
        k if k == Vae::KIND => Ok(AnyModel::Vae(load_model_as(dir, device)?)),
        k if k == VaeGan::KIND => Ok(AnyModel::VaeGan(load_model_as(dir, device)?)),
        other => Err(checkpoint_error(
            &dir.join(MODEL_FILE),
            format!("a `{other}` model, which this version does not know"),
        )),
    }
}

impl AnyModel {
    /// The kind's name in `model.json` (`transformer`, `vae`, `vae_gan`).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Transformer(_) => Transformer::KIND,
            Self::Vae(_) => Vae::KIND,
            Self::VaeGan(_) => VaeGan::KIND,
        }
    }

    /// The vocabulary the model's ids mean.
    #[must_use]
    pub fn vocabulary(&self) -> &Vocabulary {
        match self {
            Self::Transformer(m) => &m.vocabulary,
            Self::Vae(m) => &m.vocabulary,
            Self::VaeGan(m) => &m.vocabulary,
        }
    }

    /// The longest sequence the model generates in one context.
    #[must_use]
    pub fn max_seq_len(&self) -> usize {
        match self {
            Self::Transformer(m) => m.config.max_seq_len,
            Self::Vae(m) => m.config.decoder.max_seq_len,
            Self::VaeGan(m) => m.config.vae.decoder.max_seq_len,
        }
    }

    /// The part that generates (a VAE-GAN's discriminator is dropped).
    #[must_use]
    pub fn into_generative(self) -> Generative {
        match self {
            Self::Transformer(m) => Generative::Transformer(m),
            Self::Vae(m) => Generative::Vae(m),
            Self::VaeGan(m) => Generative::Vae(SavedModel {
                model: m.model.into_parts().0,
                config: m.config.vae,
                vocabulary: m.vocabulary,
            }),
        }
    }
}

impl Generative {
    /// The vocabulary the model's ids mean.
    #[must_use]
    pub fn vocabulary(&self) -> &Vocabulary {
        match self {
            Self::Transformer(m) => &m.vocabulary,
            Self::Vae(m) => &m.vocabulary,
        }
    }

    /// The longest sequence the model generates in one context.
    #[must_use]
    pub fn max_seq_len(&self) -> usize {
        match self {
            Self::Transformer(m) => m.config.max_seq_len,
            Self::Vae(m) => m.config.decoder.max_seq_len,
        }
    }

    /// The VAE, when this generates from latent codes.
    #[must_use]
    pub fn vae(&self) -> Option<&Vae> {
        match self {
            Self::Transformer(_) => None,
            Self::Vae(m) => Some(&m.model),
        }
    }

    /// `count` codes drawn from a VAE's prior, seeded by `seed` (the same codes for the
    /// same seed); `None` for a transformer, which takes no code.
    #[must_use]
    pub fn prior_codes(&self, count: usize, seed: u64, device: &Device) -> Option<Vec<Vec<f32>>> {
        let vae = self.vae()?;
        let mut rng = crate::vae::LatentRng::new(seed);
        Some(vae.sample_prior(count, &mut rng, device).to_rows())
    }
}

#[cfg(test)]
mod tests {
    use aurl_core::tokenize::{TokenizerConfig, Vocabulary};
    use burn::prelude::*;

    use super::{AnyModel, Generative, load_any};
    use crate::TransformerConfig;
    use crate::vae::VaeConfig;
    use crate::weights::{MODEL_FILE, save_model_as};

    #[test]
    fn load_any_finds_each_kind_and_refuses_unknown_ones() {
        let device = Device::flex();
        let vocab = Vocabulary::tsd(&TokenizerConfig::default()).unwrap();
        let root = std::env::temp_dir().join(format!("aurl-any-{}", std::process::id()));
        let (t_dir, v_dir) = (root.join("transformer"), root.join("vae"));

        let config = TransformerConfig::tiny(vocab.len());
        save_model_as(&t_dir, &config.init(&device).unwrap(), &config, &vocab).unwrap();
        let loaded = load_any(&t_dir, &device).unwrap();
        assert!(matches!(loaded, AnyModel::Transformer(_)));
        assert_eq!(loaded.kind(), "transformer");
        assert_eq!(loaded.max_seq_len(), config.max_seq_len);
        assert_eq!(loaded.vocabulary(), &vocab);

        let config = VaeConfig::tiny(vocab.len());
        save_model_as(&v_dir, &config.init(&device).unwrap(), &config, &vocab).unwrap();
        let loaded = load_any(&v_dir, &device).unwrap();
        assert_eq!(loaded.kind(), "vae");
        let generative = loaded.into_generative();
        assert!(matches!(generative, Generative::Vae(_)));
        assert_eq!(generative.max_seq_len(), config.decoder.max_seq_len);

        let path = t_dir.join(MODEL_FILE);
        let json = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, json.replace("\"transformer\"", "\"diffusion\"")).unwrap();
        let err = load_any(&t_dir, &device).unwrap_err();
        assert!(err.to_string().contains("diffusion"), "{err}");
        let _ = std::fs::remove_dir_all(&root);
    }
}
