//! Weight regularizers with Keras's names: [`l1`], [`l2`], [`l1_l2`].
//!
//! A regularizer attached to a layer's weight (`Dense::new(64).kernel_regularizer(l2(0.01))`)
//! adds `l1·Σ|w| + l2·Σw²` to the training loss, so the optimizer also pulls the weight toward
//! zero. As in Keras, the loss `fit` and `evaluate` report includes these penalties.

use crate::autograd::Penalty;
use crate::error::{Error, Result};
use serde_json::{Value, json};

/// A penalty `l1·Σ|w| + l2·Σw²` on one weight.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Regularizer {
    /// Factor of the sum of absolute values.
    pub l1: f32,
    /// Factor of the sum of squares.
    pub l2: f32,
}

/// `l1·Σ|w|`, Keras's `regularizers.l1` (default factor 0.01).
pub fn l1(factor: f32) -> Regularizer {
    Regularizer { l1: factor, l2: 0.0 }
}

/// `l2·Σw²`, Keras's `regularizers.l2` (default factor 0.01). Note Keras's convention: no ½.
///
/// ```
/// use strata::layers::Dense;
/// use strata::regularizers::l2;
/// let layer = Dense::new(64).activation("relu").kernel_regularizer(l2(0.001));
/// ```
pub fn l2(factor: f32) -> Regularizer {
    Regularizer { l1: 0.0, l2: factor }
}

/// Both penalties, Keras's `regularizers.l1_l2`.
pub fn l1_l2(l1: f32, l2: f32) -> Regularizer {
    Regularizer { l1, l2 }
}

/// A regularizer attached to a weight is the penalty the tape adds to the loss.
impl From<Regularizer> for Penalty {
    fn from(regularizer: Regularizer) -> Penalty {
        Penalty {
            l1: regularizer.l1,
            l2: regularizer.l2,
        }
    }
}

impl Regularizer {
    /// The penalty for weights `w`.
    pub fn penalty(&self, w: &[f32]) -> f32 {
        w.iter().map(|&v| self.l1 * v.abs() + self.l2 * v * v).sum()
    }

    /// Checks the factors: finite and not negative.
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [("l1", self.l1), ("l2", self.l2)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(Error::invalid(
                    name,
                    value,
                    "a regularization factor must be ≥ 0 and finite",
                ));
            }
        }
        Ok(())
    }

    /// Keras's serialized form: `{"class_name": "L2", "config": {"l2": 0.01}}`.
    pub fn config(&self) -> Value {
        match (self.l1 != 0.0, self.l2 != 0.0) {
            (true, false) => json!({"class_name": "L1", "config": {"l1": self.l1}}),
            (false, true) => json!({"class_name": "L2", "config": {"l2": self.l2}}),
            _ => json!({"class_name": "L1L2", "config": {"l1": self.l1, "l2": self.l2}}),
        }
    }

    /// Reads Keras's serialized form (or a bare name, `"l2"`, with the default 0.01); `null`
    /// means none.
    pub fn from_config(value: &Value) -> Result<Option<Self>> {
        let (name, config) = match value {
            Value::Null => return Ok(None),
            Value::String(name) => (name.as_str(), None),
            Value::Object(map) => match map.get("class_name").and_then(Value::as_str) {
                Some(name) => (name, map.get("config")),
                None => {
                    return Err(Error::Data(format!(
                        "a regularizer needs a \"class_name\", got {value}"
                    )));
                }
            },
            other => {
                return Err(Error::Data(format!(
                    "a regularizer must be a name or an object, got {other}"
                )));
            }
        };
        // A factor that is there but not a number (null: how JSON writes NaN) is an error, not
        // the default.
        let factor = |key: &str, default: f32| -> Result<f32> {
            match config.and_then(|c| c.get(key)) {
                None => Ok(default),
                Some(value) => value
                    .as_f64()
                    .map(|v| v as f32)
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| Error::invalid(key, value, "a regularization factor must be a finite number ≥ 0")),
            }
        };
        let regularizer = match name.to_ascii_lowercase().as_str() {
            "l1" => l1(factor("l1", 0.01)?),
            "l2" => l2(factor("l2", 0.01)?),
            "l1l2" | "l1_l2" => l1_l2(factor("l1", 0.0)?, factor("l2", 0.0)?),
            _ => return Err(Error::unknown("regularizer", name, &["L1", "L2", "L1L2"])),
        };
        regularizer.validate()?;
        Ok(Some(regularizer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalties_match_hand_computed_values_and_configs_round_trip() {
        let w = [1.0, -2.0, 0.5];
        assert!((l1(0.1).penalty(&w) - 0.35).abs() < 1e-6);
        assert!((l2(0.1).penalty(&w) - 0.525).abs() < 1e-6);
        assert!((l1_l2(0.1, 0.1).penalty(&w) - 0.875).abs() < 1e-6);
        for r in [l1(0.1), l2(0.25), l1_l2(0.5, 0.125)] {
            assert_eq!(Regularizer::from_config(&r.config()).unwrap(), Some(r));
        }
        assert_eq!(Regularizer::from_config(&json!("l2")).unwrap(), Some(l2(0.01)));
        // NaN written as JSON is null: an error, never the default factor.
        let null = json!({"class_name": "L2", "config": {"l2": null}});
        assert!(Regularizer::from_config(&null).unwrap_err().to_string().contains("l2"));
        assert!(Regularizer::from_config(&json!({"class_name": "L3"})).is_err());
        assert!(l2(-1.0).validate().is_err());
    }
}
