//! Times MPI's all-reduce of one gradient buffer, without training around it: the cost each
//! data-parallel step pays on top of its compute.
//!
//! ```sh
//! cargo build --release --features mpi --example allreduce
//! mpirun -np 2 target/release/examples/allreduce [FLOATS] [CALLS]   # default: the cnn's 93,322
//! ```

use strata::distributed::{Collective, Mpi};

fn main() -> strata::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let floats = args.next().transpose().ok().flatten().unwrap_or(93_322);
    let calls = args.next().transpose().ok().flatten().unwrap_or(1000);
    let world = Mpi::init()?;
    let seconds = world.time_all_reduce(floats, calls)?;
    if world.is_chief() {
        println!(
            "{} ranks: all-reduce of {floats} floats ({:.0} KB): {:.3} ms per call, mean of {calls}",
            world.size(),
            floats as f64 * 4.0 / 1e3,
            seconds * 1e3
        );
    }
    Ok(())
}
