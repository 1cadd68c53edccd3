//! One TOML file describing a training run: data, tokenizer, model, training and the samples
//! written at the end. A file may `extends = "base.toml"` another (its tables are merged
//! key by key, the extending file winning), and `key.path=value` overrides (the examples'
//! `--set`) apply last. Unknown keys and invalid values are errors that name the field.
//!
//! ```
//! use aurl::run::RunConfig;
//! let c = RunConfig::from_toml_str("[train]\nsteps = 50", &["model.preset=\"small\"".into()])?;
//! assert_eq!((c.train.steps, c.model.preset), (50, aurl::run::Preset::Small));
//! let err = RunConfig::from_toml_str("[train]\nstep = 50", &[]).unwrap_err();
//! assert!(err.to_string().contains("step"), "{err}");
//! # Ok::<(), aurl::run::RunConfigError>(())
//! ```

use std::path::{Path, PathBuf};

use crate::core::tokenize::TokenizerConfig;
use crate::data::augment::Augmentation;
use crate::data::preprocess::Preprocessing;
use crate::model::train::TrainConfig;
use serde::{Deserialize, Serialize};

pub mod budget;
mod bundled;
mod data;
mod error;
mod fit;
mod generation;
mod job;
mod model;
mod plots;
mod report;
mod samples;
mod sections;

pub use bundled::{BundledCorpus, bundled_chorales};

/// The main job's config file (`configs/chorales.toml`), compiled in.
const MAIN_JOB: &str = include_str!("../../configs/chorales.toml");
pub use data::RunData;
pub use error::RunError;
pub use fit::{RunDir, Trained, TrainedModel};
pub use generation::GenerationSummary;
pub use job::Job;
pub use model::{ModelConfig, ModelMode, Preset, VaeSection};
pub use plots::write_loss_png;
pub use report::{NgramBaseline, RunReport};
pub use samples::{PieceFiles, SampleFiles, write_pieces};
pub use sections::{Curriculum, DataConfig, SampleConfig};

/// A configuration problem, naming the file or field.
#[derive(Debug, thiserror::Error)]
pub enum RunConfigError {
    /// The corpus bundled with a checkout of Aurl is not there (an installed crate ships
    /// without it): training needs a folder of MIDI files instead.
    #[error(
        "the bundled Bach chorales are not at {} (a packaged crate has none): pass --data DIR \
         with a folder of MIDI files",
        path.display()
    )]
    MissingCorpus {
        /// Where they were looked for.
        path: PathBuf,
    },
    /// A file could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The TOML is malformed, has an unknown key or an invalid value.
    #[error("{source_name}: {message}")]
    Invalid {
        /// The file (or `--set`).
        source_name: String,
        /// The parser's message, which names the field.
        message: String,
    },
}

/// Everything a training run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Tokenization scheme (`remi`, `tsd`, `event`).
    pub scheme: Scheme,
    /// Where the data comes from.
    pub data: DataConfig,
    /// Cleaning applied to every file when it is read (train and valid alike).
    pub preprocess: Preprocessing,
    /// Variations of the training files, new in every epoch (all off by default).
    pub augment: Augmentation,
    /// The tokenizer.
    pub tokenizer: TokenizerConfig,
    /// The model.
    pub model: ModelConfig,
    /// The optimisation.
    pub train: TrainConfig,
    /// What to generate at the end.
    pub sample: SampleConfig,
}

/// A tokenization scheme (aurl-core's, re-exported where run configs name it).
pub use crate::core::tokenize::Scheme;

/// The version of the run-config format this release writes (`format = 1` at the top of a
/// run directory's `config.toml`) and the newest it reads. A file without the key is
/// version 1.
pub const RUN_CONFIG_FORMAT: i64 = 1;

/// Refuses a config written by a newer release (a `format` above [`RUN_CONFIG_FORMAT`]).
fn check_format(format: Option<toml::Value>, source: &str) -> Result<(), RunConfigError> {
    match format {
        None => Ok(()),
        Some(toml::Value::Integer(v)) if (1..=RUN_CONFIG_FORMAT).contains(&v) => Ok(()),
        Some(toml::Value::Integer(v)) if v > RUN_CONFIG_FORMAT => Err(invalid(
            source,
            format!(
                "format {v}: written by a newer Aurl (this release reads run configs up to \
                 format {RUN_CONFIG_FORMAT})"
            ),
        )),
        Some(other) => Err(invalid(
            source,
            format!("format {other}: expected a positive integer"),
        )),
    }
}

/// How deep `extends` chains may go.
const MAX_EXTENDS: usize = 8;

impl RunConfig {
    /// Reads `path` (following `extends`), then applies `overrides` (`a.b=value`, the value
    /// in TOML syntax or a bare string).
    ///
    /// # Errors
    /// [`RunConfigError`] naming the file and field.
    pub fn from_file(path: &Path, overrides: &[String]) -> Result<Self, RunConfigError> {
        let value = load_with_extends(path, 0)?;
        Self::from_value(value, overrides, &path.display().to_string())
    }

    /// The main job's configuration (`configs/chorales.toml`, compiled in so any working
    /// directory finds it): the small model with voices kept apart, on the bundled
    /// chorales; then `overrides`.
    ///
    /// # Errors
    /// [`RunConfigError::Invalid`] naming an override's field.
    pub fn main_job(overrides: &[String]) -> Result<Self, RunConfigError> {
        Self::from_toml_str(MAIN_JOB, overrides)
    }

    /// Trains on `paths` when some are given; otherwise, when the config names no data
    /// either (the main job's), on the bundled chorales with their split.
    ///
    /// # Errors
    /// [`RunConfigError::MissingCorpus`] when the bundled chorales are needed but absent
    /// (an installed crate ships without them).
    pub fn use_data(&mut self, paths: &[PathBuf]) -> Result<(), RunConfigError> {
        if !paths.is_empty() {
            self.data.paths = paths.to_vec();
        } else if self.data.paths.is_empty() {
            let corpus = bundled_chorales()?;
            self.data.paths = vec![corpus.root];
            self.data.split_file.get_or_insert(corpus.split_file);
        }
        Ok(())
    }

    /// Parses TOML text (no `extends`), then applies `overrides`.
    ///
    /// # Errors
    /// [`RunConfigError::Invalid`] naming the field.
    pub fn from_toml_str(text: &str, overrides: &[String]) -> Result<Self, RunConfigError> {
        let value: toml::Table = toml::from_str(text).map_err(|e| invalid("config", e))?;
        Self::from_value(value, overrides, "config")
    }

    fn from_value(
        mut table: toml::Table,
        overrides: &[String],
        source: &str,
    ) -> Result<Self, RunConfigError> {
        table.remove("extends");
        check_format(table.remove("format"), source)?;
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        let text = toml::to_string(&table).map_err(|e| invalid(source, e))?;
        let config: RunConfig = toml::from_str(&text).map_err(|e| invalid(source, e))?;
        config.train.validate().map_err(|e| invalid(source, e))?;
        config
            .tokenizer
            .validate()
            .map_err(|e| invalid(source, e))?;
        config
            .sample
            .strategy
            .validate()
            .map_err(|e| invalid(source, e))?;
        config
            .preprocess
            .validate()
            .map_err(|e| invalid(source, e))?;
        config.augment.validate().map_err(|e| invalid(source, e))?;
        if let Some(c) = config.data.curriculum
            && (c.start == 0 || c.every == 0)
        {
            return Err(invalid(
                source,
                "data.curriculum: start and every must be at least 1",
            ));
        }
        Ok(config)
    }

    /// Creates a fresh run directory `<out>/<name>` — `name` defaults to preset, scheme
    /// and seed (`tiny-remi-seed42`) — with `-2`, `-3`, … appended if it exists, so an
    /// earlier run is never overwritten (also when two runs start at once: creation is
    /// the check).
    ///
    /// # Errors
    /// If `out` or the directory cannot be created.
    pub fn create_run_dir(&self, out: &Path, name: Option<&str>) -> std::io::Result<PathBuf> {
        let base = name.map_or_else(
            || {
                format!(
                    "{:?}-{}-seed{}",
                    self.model.preset,
                    self.scheme.name(),
                    self.train.seed
                )
                .to_lowercase()
            },
            str::to_owned,
        );
        std::fs::create_dir_all(out)?;
        let mut n = 1;
        loop {
            let candidate = if n == 1 {
                out.join(&base)
            } else {
                out.join(format!("{base}-{n}"))
            };
            match std::fs::create_dir(&candidate) {
                Ok(()) => return Ok(candidate),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The configuration as TOML (what a run directory's `config.toml` holds).
    ///
    /// # Errors
    /// [`RunConfigError::Invalid`] if a value cannot be written as TOML.
    pub fn to_toml(&self) -> Result<String, RunConfigError> {
        let body = toml::to_string_pretty(self).map_err(|e| invalid("config", e))?;
        Ok(format!("format = {RUN_CONFIG_FORMAT}\n{body}"))
    }
}

fn invalid(source: &str, e: impl std::fmt::Display) -> RunConfigError {
    RunConfigError::Invalid {
        source_name: source.to_owned(),
        message: e.to_string().trim().to_owned(),
    }
}

fn load_with_extends(path: &Path, depth: usize) -> Result<toml::Table, RunConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| RunConfigError::Io {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let source = path.display().to_string();
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| invalid(&source, e))?;
    let Some(parent) = table.remove("extends") else {
        return Ok(table);
    };
    let Some(parent) = parent.as_str() else {
        return Err(invalid(&source, "`extends` must be a file name"));
    };
    if depth >= MAX_EXTENDS {
        return Err(invalid(&source, "`extends` chain is too deep (a cycle?)"));
    }
    let parent_path = path.parent().unwrap_or(Path::new(".")).join(parent);
    let mut base = load_with_extends(&parent_path, depth + 1)?;
    merge(&mut base, table);
    Ok(base)
}

/// Merges `over` into `base`, table by table.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn apply_override(table: &mut toml::Table, spec: &str) -> Result<(), RunConfigError> {
    let source = format!("--set {spec}");
    let Some((key, raw)) = spec.split_once('=') else {
        return Err(invalid(&source, "expected key.path=value"));
    };
    let value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    };
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(invalid(&source, "empty key"));
    }
    let mut t = table;
    for p in &parts[..parts.len() - 1] {
        let entry = t
            .entry((*p).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = match entry {
            toml::Value::Table(inner) => inner,
            _ => return Err(invalid(&source, format!("`{p}` is not a table"))),
        };
    }
    t.insert(parts[parts.len() - 1].to_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tokenize::Vocabulary;
    use crate::model::loss::FreeBits;
    use crate::model::{AttentionKind, ModelError};

    #[test]
    fn run_dirs_never_overwrite_an_earlier_run() {
        let out = std::env::temp_dir().join(format!("aurl-run-dirs-{}", std::process::id()));
        let config = RunConfig::default();
        let first = config.create_run_dir(&out, None).unwrap();
        let second = config.create_run_dir(&out, None).unwrap();
        let named = config.create_run_dir(&out, Some("mine")).unwrap();
        assert_eq!(first.file_name().unwrap(), "tiny-remi-seed42");
        assert_eq!(second.file_name().unwrap(), "tiny-remi-seed42-2");
        assert_eq!(named.file_name().unwrap(), "mine");
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn run_configs_record_their_format_and_refuse_a_newer_one() {
        let config = RunConfig::default();
        let text = config.to_toml().unwrap();
        assert!(text.starts_with("format = 1\n"), "{text}");
        assert_eq!(RunConfig::from_toml_str(&text, &[]).unwrap(), config);
        // Files from before the key read as format 1.
        assert_eq!(RunConfig::from_toml_str("", &[]).unwrap(), config);
        let newer = RunConfig::from_toml_str("format = 2", &[]).unwrap_err();
        assert!(newer.to_string().contains("newer Aurl"), "{newer}");
        let odd = RunConfig::from_toml_str("format = \"one\"", &[]).unwrap_err();
        assert!(odd.to_string().contains("positive integer"), "{odd}");
    }

    #[test]
    fn zero_still_turns_a_periodic_setting_off_and_round_trips() {
        let off = RunConfig::from_toml_str(
            "",
            &[
                "train.eval_every=0".into(),
                "train.sample_every=0".into(),
                "model.max_relative=0".into(),
            ],
        )
        .unwrap();
        assert_eq!((off.train.eval_every, off.train.sample_every), (None, None));
        let text = off.to_toml().unwrap();
        assert!(text.contains("eval_every = 0"), "{text}");
        assert_eq!(RunConfig::from_toml_str(&text, &[]).unwrap(), off);
        let on = RunConfig::from_toml_str("[train]\neval_every = 7", &[]).unwrap();
        assert_eq!(on.train.eval_every, Some(7));
        let mut bad = on.train.clone();
        bad.sample_every = Some(0);
        let err = bad.validate().unwrap_err();
        assert!(err.to_string().contains("train.sample_every"), "{err}");
    }

    #[test]
    fn the_vae_gan_config_resolves_with_its_stages() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let c = RunConfig::from_file(&dir.join("vae_gan.toml"), &[]).unwrap();
        assert_eq!(c.model.mode, ModelMode::VaeGan);
        let vocab = remi();
        let m = c.model.resolve_vae_gan(&vocab).unwrap();
        m.validate().unwrap();
        assert_eq!(m.vae, c.model.resolve_vae(&vocab).unwrap());
        // The KL stage from vae_gan.toml; the rest of the loss from vae.toml.
        assert_eq!(m.vae.loss.kl_start, 100);
        assert_eq!(m.vae.loss.free_bits, FreeBits::Total { bits: 16.0 });
        assert_eq!((m.gan.start, m.gan.ramp), (200, 100));
        assert_eq!(m.discriminator.scales, vec![4, 16, 0]);
        assert_eq!(c.train.discriminator.learning_rate, 1e-3);
        let err = RunConfig::from_toml_str("[train.discriminator]\nratio = 3", &[]).unwrap_err();
        assert!(err.to_string().contains("ratio"), "{err}");
    }

    #[test]
    fn the_vae_config_resolves_to_a_valid_vae() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let c = RunConfig::from_file(&dir.join("vae.toml"), &[]).unwrap();
        assert_eq!(c.model.mode, ModelMode::Vae);
        let vocab = remi();
        let vae = c.model.resolve_vae(&vocab).unwrap();
        assert_eq!((vae.z_dim, vae.segments, vae.local_z_dim), (32, 4, 8));
        assert_eq!(vae.decoder, c.model.resolve(&vocab).unwrap());
        vae.validate().unwrap();
        let err = RunConfig::from_toml_str("[model.vae]\nz = 3", &[]).unwrap_err();
        assert!(err.to_string().contains('z'), "{err}");
    }

    #[test]
    fn every_bundled_config_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                RunConfig::from_file(&path, &[])
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                seen += 1;
            }
        }
        assert!(seen >= 4, "tiny, small, small-30min and vae");
    }

    #[test]
    fn a_file_extends_another_and_overrides_apply_last() {
        let dir = std::env::temp_dir().join(format!("aurl-run-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("base.toml"),
            "[train]\nsteps = 10\nbatch_size = 4\n[model]\npreset = \"small\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("child.toml"),
            "extends = \"base.toml\"\n[train]\nsteps = 20\n",
        )
        .unwrap();
        let c = RunConfig::from_file(&dir.join("child.toml"), &["train.seed=7".into()]).unwrap();
        assert_eq!(
            (c.train.steps, c.train.batch_size, c.train.seed),
            (20, 4, 7)
        );
        assert_eq!(c.model.preset, Preset::Small);
        // A cycle is an error, not a stack overflow.
        std::fs::write(dir.join("a.toml"), "extends = \"b.toml\"\n").unwrap();
        std::fs::write(dir.join("b.toml"), "extends = \"a.toml\"\n").unwrap();
        let err = RunConfig::from_file(&dir.join("a.toml"), &[]).unwrap_err();
        assert!(err.to_string().contains("too deep"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_main_jobs_config_reads_and_keeps_the_voices_apart() {
        // The `train` example compiles this file in: it must parse without `extends`.
        let text = include_str!("../../configs/chorales.toml");
        let config = RunConfig::from_toml_str(text, &[]).unwrap();
        assert!(config.data.paths.is_empty(), "empty: the bundled chorales");
        assert_eq!(config.tokenizer.voices, 4);
        assert_eq!(config.model.preset, Preset::Small);
        assert_eq!(config.sample.bars, Some(16));
        assert!(config.sample.min_tokens > 0 && config.sample.constrained);
        // Written back to a run directory and read again, it is the same config.
        let again = RunConfig::from_toml_str(&config.to_toml().unwrap(), &[]).unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn bad_values_name_their_field() {
        let err = RunConfig::from_toml_str("", &["train.batch_size=0".into()]).unwrap_err();
        assert!(err.to_string().contains("train.batch_size"), "{err}");
        let err = RunConfig::from_toml_str("[sample.strategy]\ntop_p = 2.0", &[]).unwrap_err();
        assert!(err.to_string().contains("top_p"), "{err}");
        let err = RunConfig::from_toml_str("", &["nonsense".into()]).unwrap_err();
        assert!(err.to_string().contains("key.path=value"), "{err}");
        let err =
            RunConfig::from_toml_str("[augment.transpose]\nprobability = 1.5", &[]).unwrap_err();
        assert!(
            err.to_string().contains("augment.transpose.probability"),
            "{err}"
        );
        let err =
            RunConfig::from_toml_str("[preprocess.quantize]\ngrid = \"odd\"", &[]).unwrap_err();
        assert!(err.to_string().contains("grid"), "{err}");
    }

    #[test]
    fn preprocessing_and_augmentation_sections_round_trip() {
        let c = RunConfig::from_toml_str(
            "[preprocess]\nmax_voices = 4\n[preprocess.quantize]\nstrength = 0.8\n[preprocess.velocity]\nmode = \"per_track\"\nmean = 80.0\nspread = 12.0\n[augment.transpose]\nprobability = 1.0\n[augment.swing]\nprobability = { start_epoch = 3, probability = 0.2 }",
            &["augment.time_stretch.probability=0.5".into()],
        )
        .unwrap();
        assert_eq!(c.preprocess.max_voices, Some(4));
        assert!(!c.augment.is_off());
        assert_eq!(c.augment.swing.probability.probability(3), 0.2);
        let again = RunConfig::from_toml_str(&c.to_toml().unwrap(), &[]).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn the_model_section_overrides_its_preset_and_round_trips_through_toml() {
        let c = RunConfig::from_toml_str(
            "[model]\npreset = \"tiny\"\nd_model = 48\npositions = \"rotary\"\nattention = { kind = \"sliding\", window = 16 }",
            &[],
        )
        .unwrap();
        let vocab = remi();
        let m = c.model.resolve(&vocab).unwrap();
        assert_eq!((m.d_model, m.n_layers, m.vocab_size), (48, 2, vocab.len()));
        assert_eq!(m.attention, AttentionKind::Sliding { window: 16 });
        assert_eq!(m.musical_positions, None);
        let again = RunConfig::from_toml_str(&c.to_toml().unwrap(), &[]).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn a_curriculum_is_read_and_zero_values_are_refused() {
        let c = RunConfig::from_toml_str("[data]\ncurriculum = { start = 32, every = 1 }", &[])
            .unwrap();
        assert_eq!(
            c.data.curriculum,
            Some(Curriculum {
                start: 32,
                every: 1
            })
        );
        let err = RunConfig::from_toml_str("[data]\ncurriculum = { start = 0, every = 1 }", &[])
            .unwrap_err();
        assert!(err.to_string().contains("data.curriculum"), "{err}");
    }

    #[test]
    fn musical_positions_resolve_for_remi_and_are_refused_for_tsd() {
        let c = RunConfig::from_toml_str(
            "[model]
musical_positions = 32",
            &[],
        )
        .unwrap();
        let m = c.model.resolve(&remi()).unwrap();
        let musical = m.musical_positions.as_ref().expect("on");
        assert_eq!(musical.max_bars, 32);
        m.validate().unwrap();
        let tsd = Vocabulary::tsd(&TokenizerConfig::default()).unwrap();
        assert!(matches!(
            c.model.resolve(&tsd),
            Err(ModelError::InvalidConfig { field, .. }) if field == "musical_positions"
        ));
    }

    fn remi() -> Vocabulary {
        Vocabulary::remi(&TokenizerConfig::default()).unwrap()
    }
}
