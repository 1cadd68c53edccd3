//! Losses, each a plain function or small struct over tensors (backend-neutral):
//!
//! - [`TokenLoss`] ([`token`]): next-token cross entropy with label smoothing, ignored
//!   padding and per-kind weights taken from the vocabulary.
//! - [`kl`]: the analytic KL of a diagonal Gaussian posterior from the standard normal, free
//!   bits, and the β schedules (constant, linear, cyclical, cosine) that fight posterior
//!   collapse.
//! - [`adversarial`]: discriminator and generator losses (non-saturating, hinge,
//!   least-squares) and feature matching.
//! - [`grammar`]: the probability mass a model puts on tokens the shared grammar forbids.
//! - [`balance`]: how several of these add up (fixed weights, or learned uncertainty
//!   weighting).

pub mod adversarial;
pub mod balance;
pub mod grammar;
pub mod kl;
pub mod token;

pub use adversarial::{AdversarialLoss, feature_matching};
pub use balance::{LossBalancer, UncertaintyWeights};
pub use grammar::{GrammarLoss, forbidden_masks};
pub use kl::{FreeBits, KlSchedule, gaussian_kl};
pub use token::{KindWeights, TokenLoss};
