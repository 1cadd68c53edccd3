//! The JSON of the API: what a generation request may say, checked field by field, and what
//! errors look like.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::engine::Limits;

/// The body of `POST /v1/generate` and `POST /v1/generate/stream`. Only `tokens` is
/// required; every other field has the default its doc states.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateBody {
    /// New tokens to generate, `1..=--max-tokens` (fewer when the piece ends first).
    pub tokens: u64,
    /// EOS is not sampled before this many new tokens (`0..=tokens`). Default 0.
    #[serde(default)]
    pub min_tokens: u64,
    /// Sampling temperature (> 0). Default 1.0.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Keep only the `k` most likely tokens (≥ 1). Default: off.
    #[serde(default)]
    pub top_k: Option<u64>,
    /// Nucleus sampling mass in (0, 1]. Default 0.95.
    #[serde(default)]
    pub top_p: Option<f32>,
    /// Drop tokens below this fraction of the best one's probability, in [0, 1). Default off.
    #[serde(default)]
    pub min_p: Option<f32>,
    /// Seed of the sampling: the same seed and settings give the same piece. Default 0.
    #[serde(default)]
    pub seed: u64,
    /// Stop before the piece enters this bar. Default: no limit.
    #[serde(default)]
    pub bars: Option<u64>,
    /// Stop before the onset time passes this many seconds. Default: no limit.
    #[serde(default)]
    pub seconds: Option<f64>,
    /// Control tokens forced at bar boundaries.
    #[serde(default)]
    pub controls: Vec<ControlBody>,
    /// A MIDI file to continue, base64-encoded. Default: start from nothing.
    #[serde(default)]
    pub prompt_midi: Option<String>,
    /// Follow the token grammar (every piece decodes cleanly). Default true.
    #[serde(default)]
    pub constrained: Option<bool>,
    /// A VAE's pieces along the path between two MIDI files' codes.
    #[serde(default)]
    pub interpolate: Option<InterpolateBody>,
}

/// Control tokens for one bar: `{"bar": 4, "tokens": ["Tempo_120.0"]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlBody {
    /// The bar (0-based).
    pub bar: u64,
    /// Token names of the model's vocabulary (`GET /v1/model` lists what it accepts).
    pub tokens: Vec<String>,
}

/// `{"a": base64 MIDI, "b": base64 MIDI, "steps": n}`: `steps` pieces from `a`'s code to `b`'s.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterpolateBody {
    /// The first piece, base64-encoded MIDI.
    pub a: String,
    /// The last piece, base64-encoded MIDI.
    pub b: String,
    /// Pieces along the path, both ends included: `2..=--max-batch`.
    pub steps: u64,
}

/// A request as the engine takes it: checked, decoded, with its defaults filled in.
#[derive(Debug, Clone)]
pub struct GenerateSpec {
    /// New tokens.
    pub tokens: usize,
    /// New tokens before EOS may be sampled.
    pub min_tokens: usize,
    /// Sampling settings.
    pub strategy: aurl::sampling::Strategy,
    /// The seed.
    pub seed: u64,
    /// Bar limit.
    pub bars: Option<usize>,
    /// Time limit.
    pub seconds: Option<f64>,
    /// `BAR:NAME,NAME` specs.
    pub controls: Vec<String>,
    /// Prompt MIDI bytes.
    pub prompt_midi: Option<Vec<u8>>,
    /// Grammar constraint.
    pub constrained: bool,
    /// Two MIDI files and the number of pieces between them.
    pub interpolate: Option<([Vec<u8>; 2], usize)>,
}

/// A client error: HTTP status, the message, and the field it is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiError {
    /// The HTTP status.
    #[serde(skip)]
    pub status: u16,
    /// What is wrong.
    pub error: String,
    /// The request field it concerns, when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds to wait before retrying (queue full).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A 400 about `field`.
    #[must_use]
    pub fn field(field: impl Into<String>, error: impl Into<String>) -> Self {
        Self {
            status: 400,
            error: error.into(),
            field: Some(field.into()),
            retry_after: None,
        }
    }

    /// An error of `status` with no field.
    #[must_use]
    pub fn status(status: u16, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            field: None,
            retry_after: None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.error),
            None => f.write_str(&self.error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let retry = self.retry_after;
        let mut response = (status, axum::Json(&self)).into_response();
        if let Some(seconds) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Parses a request body: invalid JSON, a wrong type or an unknown field is a 400 naming
/// the field (its path, e.g. `controls[0].bar`).
///
/// # Errors
/// [`ApiError`] with status 400.
pub fn parse_body(bytes: &[u8]) -> Result<GenerateBody, ApiError> {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut json).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if matches!(path.as_str(), "" | "." | "?") {
            ApiError::status(400, format!("invalid request body: {inner}"))
        } else {
            ApiError::field(path, inner.to_string())
        }
    })
}

impl GenerateBody {
    /// Checks every field against `limits` and fills in the defaults.
    ///
    /// # Errors
    /// A 400 [`ApiError`] naming the first field out of range.
    pub fn check(self, limits: &Limits) -> Result<GenerateSpec, ApiError> {
        let max = limits.max_tokens;
        if self.tokens == 0 || self.tokens > max as u64 {
            return Err(ApiError::field(
                "tokens",
                format!("must be between 1 and {max} (--max-tokens)"),
            ));
        }
        if self.min_tokens > self.tokens {
            return Err(ApiError::field("min_tokens", "must not exceed tokens"));
        }
        let strategy = aurl::sampling::Strategy {
            temperature: self.temperature.unwrap_or(1.0),
            top_k: self.top_k.map(|k| usize::try_from(k).unwrap_or(usize::MAX)),
            top_p: Some(self.top_p.unwrap_or(0.95)),
            min_p: self.min_p,
            ..aurl::sampling::Strategy::default()
        };
        strategy.validate().map_err(|e| match e {
            aurl::sampling::SamplingError::InvalidConfig { field, reason } => {
                ApiError::field(field, reason)
            }
            other => ApiError::status(400, other.to_string()),
        })?;
        if let Some(bars) = self.bars.filter(|&b| b == 0 || b > 1_000_000) {
            return Err(ApiError::field(
                "bars",
                format!("{bars}: must be 1..=1000000"),
            ));
        }
        if let Some(s) = self
            .seconds
            .filter(|s| !s.is_finite() || *s <= 0.0 || *s > 86_400.0)
        {
            return Err(ApiError::field(
                "seconds",
                format!("{s}: must be in (0, 86400]"),
            ));
        }
        let controls = self
            .controls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if c.tokens.is_empty() {
                    return Err(ApiError::field(format!("controls[{i}].tokens"), "is empty"));
                }
                Ok(format!("{}:{}", c.bar, c.tokens.join(",")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let prompt_midi = self
            .prompt_midi
            .as_deref()
            .map(|b| decode_base64("prompt_midi", b))
            .transpose()?;
        let interpolate = match self.interpolate {
            None => None,
            Some(i) => {
                if i.steps < 2 || i.steps > limits.max_batch as u64 {
                    return Err(ApiError::field(
                        "interpolate.steps",
                        format!("must be between 2 and {} (--max-batch)", limits.max_batch),
                    ));
                }
                let a = decode_base64("interpolate.a", &i.a)?;
                let b = decode_base64("interpolate.b", &i.b)?;
                Some(([a, b], i.steps as usize))
            }
        };
        Ok(GenerateSpec {
            tokens: self.tokens as usize,
            min_tokens: self.min_tokens as usize,
            strategy,
            seed: self.seed,
            bars: self.bars.map(|b| b as usize),
            seconds: self.seconds,
            controls,
            prompt_midi,
            constrained: self.constrained.unwrap_or(true),
            interpolate,
        })
    }
}

fn decode_base64(field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| ApiError::field(field, format!("not base64: {e}")))
}

/// Base64 of `bytes` (standard alphabet, padded).
#[must_use]
pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_tokens: 100,
            max_batch: 4,
            ..Limits::default()
        }
    }

    fn error(json: &str) -> ApiError {
        match parse_body(json.as_bytes()).and_then(|b| b.check(&limits())) {
            Ok(spec) => panic!("{json} was accepted: {spec:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn every_bad_field_is_a_400_naming_it() {
        let cases = [
            (r#"{"tokens": 0}"#, "tokens"),
            (r#"{"tokens": 101}"#, "tokens"),
            (r#"{"tokens": -3}"#, "tokens"),
            (r#"{"tokens": "many"}"#, "tokens"),
            (r#"{"tokens": 10, "temperature": -1}"#, "temperature"),
            (r#"{"tokens": 10, "min_tokens": 11}"#, "min_tokens"),
            (r#"{"tokens": 10, "top_p": 2}"#, "top_p"),
            (r#"{"tokens": 10, "top_k": 0}"#, "top_k"),
            (r#"{"tokens": 10, "seed": -1}"#, "seed"),
            (r#"{"tokens": 10, "bars": 0}"#, "bars"),
            (r#"{"tokens": 10, "seconds": 1e9}"#, "seconds"),
            (
                r#"{"tokens": 10, "controls": [{"bar": 1, "tokens": []}]}"#,
                "controls[0].tokens",
            ),
            (
                r#"{"tokens": 10, "controls": [{"bar": "x", "tokens": []}]}"#,
                "controls[0].bar",
            ),
            (r#"{"tokens": 10, "prompt_midi": "***"}"#, "prompt_midi"),
            (
                r#"{"tokens": 10, "interpolate": {"a": "", "b": "", "steps": 9}}"#,
                "interpolate.steps",
            ),
            (r#"{"tokens": 10, "colour": "red"}"#, "."),
        ];
        for (json, field) in cases {
            let e = error(json);
            assert_eq!(e.status, 400, "{json}");
            if field == "." {
                assert!(e.error.contains("colour"), "{json}: {e}");
            } else {
                assert_eq!(e.field.as_deref(), Some(field), "{json}: {e}");
            }
        }
        let e = error("{not json");
        assert_eq!((e.status, e.field), (400, None));
    }

    #[test]
    fn defaults_fill_in_what_a_request_leaves_out() {
        let spec = parse_body(br#"{"tokens": 5}"#)
            .unwrap()
            .check(&limits())
            .unwrap();
        assert_eq!((spec.tokens, spec.seed, spec.constrained), (5, 0, true));
        assert_eq!(spec.strategy.top_p, Some(0.95));
        assert!((spec.strategy.temperature - 1.0).abs() < f32::EPSILON);
        assert!(spec.prompt_midi.is_none() && spec.interpolate.is_none());
    }
}
