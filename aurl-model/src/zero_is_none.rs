//! Serde for settings that are `Option<usize>` in the API and a plain number in files: `0`
//! (what config files and `--set x=0` have always written for "off") reads as `None`, and
//! `None` writes as `0`, so files keep their shape in both directions.

use serde::{Deserialize, Deserializer, Serializer};

/// Writes `None` as `0`.
#[allow(clippy::ref_option)] // serde's `serialize_with` passes `&Option<_>`.
pub(crate) fn serialize<S: Serializer>(value: &Option<usize>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(value.map_or(0, |v| v as u64))
}

/// Reads `0` (or `null`) as `None`.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    Ok(Option::<usize>::deserialize(d)?.filter(|&v| v > 0))
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Every {
        #[serde(with = "super")]
        every: Option<usize>,
    }

    #[test]
    fn zero_and_none_are_the_same_setting() {
        let off: Every = toml::from_str("every = 0").unwrap();
        assert_eq!(off, Every { every: None });
        assert_eq!(toml::to_string(&off).unwrap().trim(), "every = 0");
        let on: Every = serde_json::from_str(r#"{"every": 50}"#).unwrap();
        assert_eq!(on, Every { every: Some(50) });
        assert_eq!(serde_json::to_string(&on).unwrap(), r#"{"every":50}"#);
        assert!(toml::from_str::<Every>("every = -1").is_err());
    }
}
