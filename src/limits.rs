//! The memory budget: how many bytes a model's weights and activations may need before
//! anything is allocated for them.
//!
//! Every size in a model description or model file is a number a user (or a corrupted byte)
//! chose; without a budget a 300-byte file can ask for terabytes and abort the process instead
//! of failing with a message. Sizes are checked against the budget with checked arithmetic
//! (see [`crate::tensor::checked_numel`]), so a size beyond 2⁶⁴ bytes is refused too, never
//! wrapped around.
//!
//! The budget is 16 GiB, or half the machine's memory where that is less (so a model that
//! passes still leaves room for its optimizer's state and the data), unless
//! [`set_memory_budget`] (which wins) or the `STRATA_MAX_MEMORY` environment variable (bytes,
//! with an optional `K`, `M`, `G` or `T` suffix, powers of 1024) says otherwise.

use crate::error::{Error, Result};
use std::sync::{Mutex, OnceLock};

/// The budget when nothing overrides it, on a machine with at least 32 GiB: 16 GiB.
pub const DEFAULT_MEMORY_BUDGET: u64 = 16 << 30;

/// The budget when nothing overrides it: [`DEFAULT_MEMORY_BUDGET`], or half the machine's
/// memory where that is less (Linux's `/proc/meminfo`, read once per process: a `predict`
/// checks its sizes on every call; elsewhere the constant).
pub fn default_memory_budget() -> u64 {
    static BUDGET: OnceLock<u64> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
            let line = text.lines().find(|line| line.starts_with("MemTotal:"))?;
            let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            kilobytes.checked_mul(1024)
        });
        total.map_or(DEFAULT_MEMORY_BUDGET, |bytes| (bytes / 2).min(DEFAULT_MEMORY_BUDGET))
    })
}

/// The environment variable that overrides [`DEFAULT_MEMORY_BUDGET`].
pub const MEMORY_BUDGET_VARIABLE: &str = "STRATA_MAX_MEMORY";

/// The budget set by [`set_memory_budget`], if any.
static OVERRIDE: Mutex<Option<u64>> = Mutex::new(None);

/// Sets the memory budget for this process, in bytes, over the environment variable and the
/// default (a program that knows its machine, or the CLI's `--max-memory`).
pub fn set_memory_budget(bytes: u64) {
    *OVERRIDE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(bytes);
}

/// Forgets [`set_memory_budget`]: the environment variable or the default apply again.
pub fn clear_memory_budget() {
    *OVERRIDE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
}

/// The budget in force, in bytes; an error when `STRATA_MAX_MEMORY` is set but is not a size.
pub fn memory_budget() -> Result<u64> {
    if let Some(bytes) = *OVERRIDE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) {
        return Ok(bytes);
    }
    match std::env::var(MEMORY_BUDGET_VARIABLE) {
        Ok(text) => parse_size(&text).map_err(|_| {
            Error::invalid(
                MEMORY_BUDGET_VARIABLE,
                &text,
                "must be a number of bytes, optionally with a K, M, G or T suffix (e.g. 8G)",
            )
        }),
        Err(_) => Ok(default_memory_budget()),
    }
}

/// A size in bytes written as `1234`, `512K`, `64M`, `16G` or `1T` (powers of 1024; a
/// trailing `B` or `iB` is allowed, case does not matter).
pub fn parse_size(text: &str) -> Result<u64> {
    let invalid = || {
        Error::invalid(
            "size",
            text,
            "must be a number of bytes, optionally with a K, M, G or T suffix (e.g. 8G)",
        )
    };
    let lower = text.trim().to_ascii_lowercase();
    let unit = lower.trim_end_matches("ib").trim_end_matches('b');
    let (digits, shift) = match unit.chars().last() {
        Some('k') => (&unit[..unit.len() - 1], 10),
        Some('m') => (&unit[..unit.len() - 1], 20),
        Some('g') => (&unit[..unit.len() - 1], 30),
        Some('t') => (&unit[..unit.len() - 1], 40),
        _ => (unit, 0),
    };
    let number: u64 = digits.trim().parse().map_err(|_| invalid())?;
    number.checked_mul(1 << shift).ok_or_else(|| {
        Error::invalid(
            "size",
            text,
            "is larger than 2^64 bytes, the largest size strata can count",
        )
    })
}

/// `bytes` as a person reads it: `4.00 GB (4294967296 bytes)`, in powers of 1024 as Keras's
/// summary prints sizes; `None` (a size beyond 2⁶⁴ bytes) as such, never wrapped.
pub fn format_bytes(bytes: Option<u64>) -> String {
    let Some(bytes) = bytes else {
        return "more than 2^64 bytes".into();
    };
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit + 1 < UNITS.len() {
        size /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} bytes"),
        _ => format!("{size:.2} {} ({bytes} bytes)", UNITS[unit]),
    }
}

/// Bytes of `elements` f32 values, `None` beyond 2⁶⁴.
pub fn f32_bytes(elements: usize) -> Option<u64> {
    u64::try_from(elements).ok()?.checked_mul(4)
}

/// Checks that `bytes` (`None`: beyond 2⁶⁴) fit in the budget; the error names `what` (called
/// only on refusal: the description costs nothing otherwise) and both sizes.
pub fn check_memory(what: impl FnOnce() -> String, bytes: Option<u64>) -> Result<()> {
    let budget = memory_budget()?;
    match bytes {
        Some(bytes) if bytes <= budget => Ok(()),
        _ => Err(Error::OverBudget {
            what: what(),
            needed: format_bytes(bytes),
            budget: format_bytes(Some(budget)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_budget_is_at_most_half_the_machine() {
        let budget = default_memory_budget();
        assert!(budget <= DEFAULT_MEMORY_BUDGET, "{budget}");
        if let Ok(text) = std::fs::read_to_string("/proc/meminfo") {
            let total_kb: u64 = text
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .expect("MemTotal in /proc/meminfo");
            assert_eq!(budget, (total_kb * 1024 / 2).min(DEFAULT_MEMORY_BUDGET));
        }
    }

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("1234").unwrap(), 1234);
        assert_eq!(parse_size("512K").unwrap(), 512 << 10);
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("16GiB").unwrap(), 16 << 30);
        assert_eq!(parse_size(" 1T ").unwrap(), 1 << 40);
        for bad in ["", "G", "-1", "1.5G", "lots", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_print_unwrapped() {
        assert_eq!(format_bytes(Some(100)), "100 bytes");
        assert_eq!(format_bytes(Some(4 << 30)), "4.00 GB (4294967296 bytes)");
        assert_eq!(format_bytes(None), "more than 2^64 bytes");
        assert_eq!(f32_bytes(usize::MAX), None);
    }
}
