//! Mixed precision as Keras names it: `keras.mixed_precision.set_global_policy("mixed_bfloat16")`.
//!
//! Under the `mixed_bfloat16` policy, `Dense`, `Conv1D` and `Conv2D` compute their matrix
//! products on bfloat16-rounded inputs and weights with f32 accumulation (AVX512_BF16's
//! `vdpbf16ps` where the CPU has it, the same arithmetic in f32 elsewhere); everything else stays
//! f32, as in Keras: the weights the optimizer updates (Keras's variable dtype), its slots, the
//! losses, softmax, normalization statistics, and every layer's output in memory. The backward
//! products of those layers run in bfloat16 too, as Keras's do on a CPU; bias gradients and the
//! ReLU's mask are f32.
//!
//! ```
//! // Keras: keras.mixed_precision.set_global_policy("mixed_bfloat16")
//! //        Dense(10, dtype="float32")   # one layer kept in f32
//! use strata::mixed_precision::{self, DTypePolicy};
//! use strata::layers::Dense;
//!
//! # fn main() -> strata::Result<()> {
//! mixed_precision::set_global_policy("mixed_bfloat16")?;
//! let hidden = Dense::new(128).activation("relu"); // bfloat16 products
//! let output = Dense::new(10).dtype_policy(DTypePolicy::Float32);
//! assert_eq!(hidden.policy(), DTypePolicy::MixedBfloat16);
//! assert_eq!(output.policy().compute_dtype(), "float32");
//! mixed_precision::set_global_policy("float32")?;
//! # Ok(()) }
//! ```
//!
//! A layer takes the global policy when it is constructed (as in Keras), so set it before
//! building the model; `DTypePolicy` on a layer overrides it. The `strata` command's
//! `--mixed-precision bf16` sets it for `train`, `evaluate`, `predict` and `bench`.

use crate::error::{Error, Result};
use crate::kernels::ComputeDtype;
use std::sync::atomic::{AtomicU8, Ordering};

/// A layer's dtype policy (Keras's `DTypePolicy`): the dtype its products compute in; its
/// weights are f32 under every policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DTypePolicy {
    /// Everything in f32 (Keras's default, `"float32"`).
    #[default]
    Float32,
    /// bfloat16 products, f32 weights (`"mixed_bfloat16"`).
    MixedBfloat16,
}

impl DTypePolicy {
    /// The policies strata runs, by Keras name.
    pub const NAMES: [&'static str; 2] = ["float32", "mixed_bfloat16"];

    /// Keras's name: `float32` or `mixed_bfloat16`.
    pub fn name(self) -> &'static str {
        match self {
            DTypePolicy::Float32 => "float32",
            DTypePolicy::MixedBfloat16 => "mixed_bfloat16",
        }
    }

    /// The policy named `name`, or an error listing the known ones (Keras's `mixed_float16`,
    /// `float16` and `bfloat16` are not among them: strata keeps f32 weights and has no f16
    /// products).
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "float32" => Ok(DTypePolicy::Float32),
            "mixed_bfloat16" => Ok(DTypePolicy::MixedBfloat16),
            other => Err(Error::unknown("dtype policy", other, &Self::NAMES)),
        }
    }

    /// Keras's `compute_dtype`: `"float32"` or `"bfloat16"`.
    pub fn compute_dtype(self) -> &'static str {
        match self {
            DTypePolicy::Float32 => "float32",
            DTypePolicy::MixedBfloat16 => "bfloat16",
        }
    }

    /// Keras's `variable_dtype`: `"float32"` under every policy strata runs.
    pub fn variable_dtype(self) -> &'static str {
        "float32"
    }

    /// What the products compute in.
    pub fn products(self) -> ComputeDtype {
        match self {
            DTypePolicy::Float32 => ComputeDtype::Float32,
            DTypePolicy::MixedBfloat16 => ComputeDtype::Bfloat16,
        }
    }
}

/// The global policy, as `DTypePolicy as u8`.
static GLOBAL: AtomicU8 = AtomicU8::new(0);

/// Sets the policy layers constructed from now on take (Keras's
/// `keras.mixed_precision.set_global_policy`): `"float32"` or `"mixed_bfloat16"`; another name
/// is an error listing these.
pub fn set_global_policy(name: &str) -> Result<()> {
    let policy = DTypePolicy::from_name(name)?;
    GLOBAL.store(policy as u8, Ordering::Relaxed);
    Ok(())
}

/// The global policy (Keras's `keras.mixed_precision.global_policy()`).
pub fn global_policy() -> DTypePolicy {
    match GLOBAL.load(Ordering::Relaxed) {
        0 => DTypePolicy::Float32,
        _ => DTypePolicy::MixedBfloat16,
    }
}

/// The policy a layer config's `dtype` key names: a policy name, Keras 3's
/// `{"class_name": "DTypePolicy", "config": {"name": ...}}`, or absent. `float32` (which Keras
/// writes for every layer by default) and absence both mean the global policy, so
/// `--mixed-precision bf16` applies to models saved or imported in f32; `mixed_bfloat16`
/// keeps a layer in bfloat16 under any global policy.
pub(crate) fn policy_of_config(config: &serde_json::Value) -> Result<DTypePolicy> {
    let name = match config.get("dtype").or_else(|| config.get("dtype_policy")) {
        None | Some(serde_json::Value::Null) => return Ok(global_policy()),
        Some(serde_json::Value::String(name)) => name.as_str(),
        Some(object) => match object.pointer("/config/name").and_then(serde_json::Value::as_str) {
            Some(name) => name,
            None => {
                return Err(Error::Data(format!(
                    "a layer's \"dtype\" must be a policy name ({}) or a DTypePolicy object, got {object}",
                    DTypePolicy::NAMES.join(", ")
                )));
            }
        },
    };
    match DTypePolicy::from_name(name)? {
        DTypePolicy::Float32 => Ok(global_policy()),
        policy => Ok(policy),
    }
}

/// The `dtype` key a layer config carries for `policy`: none for f32 (the default), Keras 3's
/// policy object for `mixed_bfloat16`.
pub(crate) fn config_of_policy(policy: DTypePolicy) -> Option<serde_json::Value> {
    (policy != DTypePolicy::Float32).then(|| {
        serde_json::json!({
            "module": "keras",
            "class_name": "DTypePolicy",
            "config": {"name": policy.name()},
            "registered_name": null,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_list_the_known() {
        for name in DTypePolicy::NAMES {
            assert_eq!(DTypePolicy::from_name(name).unwrap().name(), name);
        }
        let message = DTypePolicy::from_name("mixed_float16").unwrap_err().to_string();
        assert!(
            message.contains("mixed_float16") && message.contains("mixed_bfloat16"),
            "{message}"
        );
        let config = serde_json::json!({"dtype": {"class_name": "DTypePolicy", "config": {"name": "mixed_bfloat16"}}});
        assert_eq!(policy_of_config(&config).unwrap(), DTypePolicy::MixedBfloat16);
        let back = serde_json::json!({"dtype": config_of_policy(DTypePolicy::MixedBfloat16)});
        assert_eq!(policy_of_config(&back).unwrap(), DTypePolicy::MixedBfloat16);
        assert!(policy_of_config(&serde_json::json!({"dtype": "float64"})).is_err());
        assert!(policy_of_config(&serde_json::json!({"dtype": 3})).is_err());
    }
}
