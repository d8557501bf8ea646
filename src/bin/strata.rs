//! The `strata` command-line tool: see `strata --help`.

fn main() {
    std::process::exit(strata::cli::main());
}
