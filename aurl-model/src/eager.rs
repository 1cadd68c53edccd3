//! Initialising every parameter when a model is built.
//!
//! Burn initialises a parameter lazily, on its first use. A model built right after
//! `device.seed(s)` could then draw its weights long after — after a training step reseeded
//! the generator, or after another thread drew from it — so "seed, then build" would not
//! fix the weights. The models' `init` draw them all at once, in the order the module
//! declares them.

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

/// `module` with every float parameter drawn now.
pub(crate) fn eager<M: Module>(module: M) -> M {
    module.visit(&mut Draw);
    module
}

/// Touches each float parameter, which initialises a lazy one.
struct Draw;

impl ModuleVisitor for Draw {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // `val` initialises a lazy parameter (once, shared by its clones).
        let _ = param.val();
    }
}
