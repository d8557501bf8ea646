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
//!
//! Keras's `mixed_float16` is accepted, so Keras programs and model files that name it run, but
//! strata has no float16 kernels: its layers compute in f32 (at least as accurate as Keras's
//! float16, and as fast as f32), and the first use prints one warning to stderr pointing to
//! `mixed_bfloat16`, the reduced precision strata accelerates. Mapping it to bfloat16 instead
//! would silently lose three bits of mantissa against what the Keras user asked for.

use crate::error::{Error, Result};
use crate::kernels::ComputeDtype;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// A layer's dtype policy (Keras's `DTypePolicy`): the dtype its products compute in; its
/// weights are f32 under every policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DTypePolicy {
    /// Everything in f32 (Keras's default, `"float32"`).
    #[default]
    Float32,
    /// bfloat16 products, f32 weights (`"mixed_bfloat16"`).
    MixedBfloat16,
    /// Keras's `"mixed_float16"`, computed in f32: strata has no float16 products (a warning
    /// says so once, see the module's documentation). Kept as its own policy so a model saved
    /// under it keeps the name.
    MixedFloat16,
}

impl DTypePolicy {
    /// The policies strata runs, by Keras name.
    pub const NAMES: [&'static str; 3] = ["float32", "mixed_bfloat16", "mixed_float16"];

    /// Keras's name: `float32`, `mixed_bfloat16` or `mixed_float16`.
    pub fn name(self) -> &'static str {
        match self {
            DTypePolicy::Float32 => "float32",
            DTypePolicy::MixedBfloat16 => "mixed_bfloat16",
            DTypePolicy::MixedFloat16 => "mixed_float16",
        }
    }

    /// The policy named `name`, or an error listing the known ones (Keras's `float16` and
    /// `bfloat16` are not among them: strata keeps f32 weights). `mixed_float16` warns once
    /// that it computes in f32.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "float32" => Ok(DTypePolicy::Float32),
            "mixed_bfloat16" => Ok(DTypePolicy::MixedBfloat16),
            "mixed_float16" => {
                warn_float16_once();
                Ok(DTypePolicy::MixedFloat16)
            }
            other => Err(Error::unknown("dtype policy", other, &Self::NAMES)),
        }
    }

    /// What the products compute in: `"float32"` or `"bfloat16"` (Keras's `compute_dtype`,
    /// except that `mixed_float16`, float16 in Keras, computes in `"float32"` here).
    pub fn compute_dtype(self) -> &'static str {
        match self {
            DTypePolicy::Float32 | DTypePolicy::MixedFloat16 => "float32",
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
            DTypePolicy::Float32 | DTypePolicy::MixedFloat16 => ComputeDtype::Float32,
            DTypePolicy::MixedBfloat16 => ComputeDtype::Bfloat16,
        }
    }
}

/// Whether the `mixed_float16` warning has been printed (once per process).
static FLOAT16_WARNED: AtomicBool = AtomicBool::new(false);

/// Prints, once per process, that `mixed_float16` computes in f32 here.
fn warn_float16_once() {
    if !FLOAT16_WARNED.swap(true, Ordering::Relaxed) {
        eprintln!(
            "warning: dtype policy 'mixed_float16' computes in float32 in strata (it has no float16 \
             kernels); 'mixed_bfloat16' is the reduced-precision policy strata accelerates"
        );
    }
}

/// Whether a `mixed_float16` policy has been asked for, and its warning printed, in this process.
#[doc(hidden)]
pub fn float16_warning_printed() -> bool {
    FLOAT16_WARNED.load(Ordering::Relaxed)
}

/// The global policy, as `DTypePolicy as u8`.
static GLOBAL: AtomicU8 = AtomicU8::new(0);

/// Sets the policy layers constructed from now on take (Keras's
/// `keras.mixed_precision.set_global_policy`): `"float32"`, `"mixed_bfloat16"` or
/// `"mixed_float16"` (computed in f32, with a warning); another name is an error listing these.
pub fn set_global_policy(name: &str) -> Result<()> {
    let policy = DTypePolicy::from_name(name)?;
    GLOBAL.store(policy as u8, Ordering::Relaxed);
    Ok(())
}

/// The global policy (Keras's `keras.mixed_precision.global_policy()`).
pub fn global_policy() -> DTypePolicy {
    match GLOBAL.load(Ordering::Relaxed) {
        0 => DTypePolicy::Float32,
        1 => DTypePolicy::MixedBfloat16,
        _ => DTypePolicy::MixedFloat16,
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
/// policy object for the mixed policies.
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
        let message = DTypePolicy::from_name("float16").unwrap_err().to_string();
        assert!(
            message.contains("float16") && message.contains("mixed_bfloat16"),
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
