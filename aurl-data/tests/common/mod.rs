//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod expect;
pub mod fixtures;
pub mod smf_builder;
pub mod strategies;

use std::path::PathBuf;

/// The repository's `fixtures/` folder.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fixtures")
}
