//! Metrics on token sequences and scores. So far: an interpolated n-gram language model, the
//! baseline a neural model's validation NLL is compared with.

mod ngram;

pub use ngram::{NgramModel, NgramScore};
