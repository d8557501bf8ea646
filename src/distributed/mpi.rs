//! [`Mpi`]: the [`Collective`] of the processes `mpirun` started, over the system's MPI library
//! (Open MPI on Debian: `apt-get install libopenmpi-dev openmpi-bin`), with a watchdog that ends
//! a rank stuck waiting for the others.

use super::collective::{AllReduceTime, Collective, Launched};
use crate::error::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Environment variables that MPI launchers (Open MPI's and MPICH's `mpirun`, Slurm's `srun`)
/// set in the processes they start: without any, this process was started on its own.
const LAUNCHER_VARIABLES: [&str; 4] = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"];

/// The environment variable that sets the watchdog's limit, in seconds.
pub const TIMEOUT_VARIABLE: &str = "STRATA_MPI_TIMEOUT";

/// How long a rank waits in one collective operation before it concludes that another rank has
/// died or hangs, when `STRATA_MPI_TIMEOUT` does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The operations the watchdog names when it fires.
const OPERATIONS: [&str; 5] = ["broadcast", "all-reduce", "all-reduce", "all-gather", "finalize"];

/// The processes of an MPI job (`MPI_COMM_WORLD`), as a [`Collective`] for
/// [`FitOptions::distributed`](crate::model::FitOptions::distributed). Make one per process,
/// at the start, and keep it until training is over: dropping it ends MPI (`MPI_Finalize`),
/// which cannot be started again.
///
/// A watchdog thread ends this process (exit status 1, with a message) when one collective
/// operation waits longer than the time-out (`STRATA_MPI_TIMEOUT` seconds, default 300), so a
/// rank that died or hangs stops the job instead of leaving the others waiting forever; `mpirun`
/// then ends the remaining ranks. When a rank stops with an error of its own (a file it cannot
/// write), call [`Mpi::abort`] so the others stop at once.
pub struct Mpi {
    world: SimpleCommunicator,
    watchdog: Arc<Watchdog>,
    /// `MPI_Allreduce` needs a separate receive buffer; kept between steps.
    received: RefCell<Vec<f32>>,
    all_reduce_time: Cell<AllReduceTime>,
    /// Last, so `MPI_Finalize` runs after everything else is dropped.
    _universe: Universe,
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpi")
            .field("rank", &self.rank())
            .field("size", &self.size())
            .finish()
    }
}

impl Mpi {
    /// Starts MPI in a process that `mpirun` (or `srun`) started.
    ///
    /// Errors: the process was not started by an MPI launcher (the message says how to start
    /// it), `STRATA_MPI_TIMEOUT` is not a number of seconds, or MPI was started already.
    pub fn init() -> Result<Mpi> {
        if !LAUNCHER_VARIABLES.iter().any(|v| std::env::var_os(v).is_some()) {
            return Err(Error::Usage(
                "distributed training runs one process per rank under an MPI launcher: start it as \
                 `mpirun -np 2 strata train --distributed ...` (several machines: add `--hostfile hosts`)"
                    .into(),
            ));
        }
        let timeout = match std::env::var(TIMEOUT_VARIABLE) {
            Ok(text) => match text.trim().parse::<f64>() {
                Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Duration::from_secs_f64(seconds),
                _ => {
                    return Err(Error::invalid(
                        TIMEOUT_VARIABLE,
                        text,
                        "must be a positive number of seconds",
                    ));
                }
            },
            Err(_) => DEFAULT_TIMEOUT,
        };
        let universe = mpi::initialize()
            .ok_or_else(|| Error::Usage("MPI is already initialized in this process: make one Mpi".into()))?;
        let world = universe.world();
        let watchdog = Watchdog::start(world.rank() as usize, timeout);
        Ok(Mpi {
            world,
            watchdog,
            received: RefCell::new(Vec::new()),
            all_reduce_time: Cell::new(AllReduceTime::default()),
            _universe: universe,
        })
    }

    /// Changes how long one collective operation may wait for the other ranks.
    pub fn set_timeout(&self, timeout: Duration) {
        self.watchdog
            .timeout_ms
            .store(timeout.as_millis().max(1) as u64, Ordering::Relaxed);
    }

    /// Ends every rank of the job now (`MPI_Abort`) with exit status `code`: for an error on
    /// this rank that the others cannot know of, so they stop instead of waiting for it.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    /// Time spent in `f32` all-reduces so far.
    pub fn all_reduce_time(&self) -> AllReduceTime {
        self.all_reduce_time.get()
    }

    /// Times one `f32` all-reduce of `floats` values, without the training around it: the mean
    /// seconds per call over `calls` calls after a barrier (for benchmarks of the network).
    pub fn time_all_reduce(&self, floats: usize, calls: usize) -> Result<f64> {
        let mut buffer = vec![1.0f32; floats];
        self.all_reduce_sum_f32(&mut buffer)?;
        {
            let _watch = self.watchdog.watch(3);
            self.world.barrier();
        }
        let started = Instant::now();
        for _ in 0..calls {
            self.all_reduce_sum_f32(&mut buffer)?;
        }
        Ok(started.elapsed().as_secs_f64() / calls.max(1) as f64)
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn broadcast_f32(&self, buffer: &mut [f32], root: usize) -> Result<()> {
        let _watch = self.watchdog.watch(0);
        self.world.process_at_rank(root as i32).broadcast_into(buffer);
        Ok(())
    }

    fn all_reduce_sum_f32(&self, buffer: &mut [f32]) -> Result<()> {
        let started = Instant::now();
        let mut received = self.received.borrow_mut();
        received.resize(buffer.len(), 0.0);
        {
            let _watch = self.watchdog.watch(1);
            self.world
                .all_reduce_into(&*buffer, &mut received[..], SystemOperation::sum());
        }
        buffer.copy_from_slice(&received);
        let mut time = self.all_reduce_time.get();
        time.calls += 1;
        time.seconds += started.elapsed().as_secs_f64();
        time.floats += buffer.len();
        self.all_reduce_time.set(time);
        Ok(())
    }

    fn all_reduce_sum_f64(&self, buffer: &mut [f64]) -> Result<()> {
        let mut received = vec![0.0f64; buffer.len()];
        {
            let _watch = self.watchdog.watch(2);
            self.world
                .all_reduce_into(&*buffer, &mut received[..], SystemOperation::sum());
        }
        buffer.copy_from_slice(&received);
        Ok(())
    }

    fn all_gather_u64(&self, values: &[u64]) -> Result<Vec<u64>> {
        let mut all = vec![0u64; values.len() * self.size()];
        let _watch = self.watchdog.watch(3);
        self.world.all_gather_into(values, &mut all[..]);
        Ok(all)
    }
}

impl Drop for Mpi {
    fn drop(&mut self) {
        // MPI_Finalize waits for every rank: watched too, never released (the thread ends with
        // the process).
        std::mem::forget(self.watchdog.watch(4));
    }
}

/// What the watchdog thread reads: when the collective in progress started, and which it is.
struct Watchdog {
    rank: usize,
    started: Instant,
    /// Milliseconds after `started` at which the current collective began, plus one; 0 when none.
    waiting_since_ms: AtomicU64,
    operation: AtomicUsize,
    timeout_ms: AtomicU64,
}

/// Marks one collective as in progress until dropped.
struct Watch<'a>(&'a Watchdog);

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.0.waiting_since_ms.store(0, Ordering::Relaxed);
    }
}

impl Watchdog {
    fn start(rank: usize, timeout: Duration) -> Arc<Watchdog> {
        let watchdog = Arc::new(Watchdog {
            rank,
            started: Instant::now(),
            waiting_since_ms: AtomicU64::new(0),
            operation: AtomicUsize::new(0),
            timeout_ms: AtomicU64::new(timeout.as_millis().max(1) as u64),
        });
        let watching = watchdog.clone();
        std::thread::Builder::new()
            .name("strata-mpi-watchdog".into())
            .spawn(move || watching.run())
            .expect("the OS refused a thread: nothing else would run either");
        watchdog
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn watch(&self, operation: usize) -> Watch<'_> {
        self.operation.store(operation, Ordering::Relaxed);
        self.waiting_since_ms.store(self.now_ms() + 1, Ordering::Relaxed);
        Watch(self)
    }

    fn run(&self) {
        // Runs until the process ends.
        loop {
            let timeout_ms = self.timeout_ms.load(Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis((timeout_ms / 10).clamp(10, 1000)));
            let since = self.waiting_since_ms.load(Ordering::Relaxed);
            if since != 0 && self.now_ms() + 1 - since > timeout_ms {
                eprintln!(
                    "error: rank {}: waited {:.0} s in an MPI {} for the other ranks: one of them died or hangs; \
                     stopping (set the limit with {TIMEOUT_VARIABLE}=SECONDS)",
                    self.rank,
                    timeout_ms as f64 / 1e3,
                    OPERATIONS[self.operation.load(Ordering::Relaxed)]
                );
                // Not MPI_Abort: MPI was started for one thread, and the main thread is inside
                // MPI. A rank that exits without MPI_Finalize makes mpirun end the whole job.
                std::process::exit(1);
            }
        }
    }
}

impl Launched for Mpi {
    fn abort(&self, code: i32) -> ! {
        Mpi::abort(self, code)
    }

    fn all_reduce_time(&self) -> AllReduceTime {
        Mpi::all_reduce_time(self)
    }
}
