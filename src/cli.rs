//! The `strata` command line (in progress).

/// Runs the command line; returns the process exit status.
pub fn main() -> i32 {
    0
}
