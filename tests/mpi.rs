//! Data-parallel training across MPI processes, on loopback. `cargo test --release --features
//! mpi --test mpi` runs this file's `main`, which starts itself once per scenario as a 2-rank
//! job (`mpirun --allow-run-as-root --oversubscribe -np 2 <this test> <scenario>`) and checks
//! how the job ends. Needs Open MPI (`.ci/run` installs it).

mod data_parallel;

use data_parallel::*;
use std::process::Command;
use std::time::{Duration, Instant};
use strata::distributed::{Collective, Mpi};

/// Longest a scenario's job may run before the launcher calls it hung.
const JOB_LIMIT: Duration = Duration::from_secs(180);

fn main() {
    let scenario = std::env::args().nth(1).unwrap_or_default();
    if std::env::var_os("OMPI_COMM_WORLD_SIZE").is_some() {
        rank_main(&scenario);
    } else {
        launcher_main();
    }
}

/// What one job printed and how it ended.
struct Job {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    seconds: f64,
}

/// Runs `scenario` as a 2-rank MPI job, with the watchdog's limit at `timeout` seconds.
fn job(scenario: &str, timeout: u64) -> Job {
    let started = Instant::now();
    let out = Command::new("timeout")
        .arg(JOB_LIMIT.as_secs().to_string())
        .args(["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2"])
        .arg(std::env::current_exe().expect("the test's own path"))
        .arg(scenario)
        .env("STRATA_MPI_TIMEOUT", timeout.to_string())
        .output()
        .expect("mpirun runs (Open MPI is installed: apt-get install openmpi-bin)");
    Job {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// One scenario's check: `Err` says what went wrong.
type Check = fn() -> Result<(), String>;

/// Runs every scenario and checks its outcome; prints one line per check and a closing tally.
fn launcher_main() {
    let checks: [(&str, Check); 4] = [
        ("two ranks train as one process with twice the batch", || {
            let job = job("equality", 120);
            expect(job.code == Some(0), &job, "exit status 0")?;
            expect(
                job.stdout.contains("max weight difference"),
                &job,
                "the measured difference",
            )?;
            println!("    {}", job.stdout.trim().replace('\n', "\n    "));
            Ok(())
        }),
        ("ranks with different models stop on every rank with an error", || {
            let job = job("mismatch", 120);
            expect(job.code == Some(0), &job, "exit status 0 (each rank checked its error)")?;
            for rank in 0..2 {
                let line = format!(
                    "rank {rank}: the 2 ranks disagree on the number of parameters: rank 0 has 101770, rank 1 has 109386"
                );
                expect(job.stdout.contains(&line), &job, &line)?;
            }
            Ok(())
        }),
        ("a rank that hangs: the watchdog stops the job", || {
            let job = job("hang", 2);
            expect(job.code.is_some_and(|c| c != 0), &job, "a failing exit status")?;
            expect(
                job.stderr.contains("waited 2 s in an MPI all-gather"),
                &job,
                "the watchdog's message",
            )?;
            expect(job.seconds < 30.0, &job, "an end within 30 s")
        }),
        ("a rank that dies: mpirun stops the others", || {
            let job = job("die", 600);
            expect(job.code.is_some_and(|c| c != 0), &job, "a failing exit status")?;
            expect(
                job.seconds < 30.0,
                &job,
                "an end within 30 s, long before the watchdog's 600 s",
            )
        }),
    ];
    let mut failed = 0;
    for (name, check) in checks {
        match check() {
            Ok(()) => println!("test {name} ... ok"),
            Err(why) => {
                failed += 1;
                println!("test {name} ... FAILED\n{why}");
            }
        }
    }
    println!("{} passed, {failed} failed", checks.len() - failed);
    std::process::exit(i32::from(failed > 0));
}

fn expect(condition: bool, job: &Job, what: &str) -> Result<(), String> {
    if condition {
        return Ok(());
    }
    Err(format!(
        "expected {what}; the job ended with {:?} after {:.1} s\n--- stdout\n{}\n--- stderr\n{}",
        job.code, job.seconds, job.stdout, job.stderr
    ))
}

/// One rank's part of `scenario`; panics (a failing exit status) when a check fails.
fn rank_main(scenario: &str) {
    let world = Mpi::init().expect("started by mpirun");
    let data = mnist_subset();
    match scenario {
        "equality" => {
            let mut single = compiled("mlp");
            let expected_history = train(&mut single, &data, 32, None).unwrap();
            let mut model = compiled("mlp");
            let history = train(&mut model, &data, 16, Some(&world)).unwrap();
            let (mine, expected) = (weights(&model), weights(&single));
            let difference = max_difference(&mine, &expected);
            let log_difference = max_log_difference(&history, &expected_history);
            assert!(difference <= WEIGHT_TOLERANCE, "weights differ by {difference}");
            assert!(log_difference <= LOG_TOLERANCE, "logs differ by {log_difference}");
            // The replicas are the same bits on every rank.
            let bits = mine
                .iter()
                .flatten()
                .fold(0u64, |h, w| strata::rng::mix(h, w.to_bits() as u64));
            let all = world.all_gather_u64(&[bits]).unwrap();
            assert_eq!(all[0], all[1], "the ranks' replicas differ");
            let scores = model.evaluate_distributed(&data.2, &data.3, 32, &world).unwrap();
            let local = model.evaluate(&data.2, &data.3, 32).unwrap();
            assert!((scores.loss - local.loss).abs() < 1e-6 && scores.accuracy == local.accuracy);
            if world.is_chief() {
                println!(
                    "max weight difference {difference:e} (tolerance {WEIGHT_TOLERANCE:e}), max log difference {log_difference:e}"
                );
            }
        }
        "mismatch" => {
            let mut model = compiled(if world.rank() == 0 { "mlp" } else { "mlp2" });
            let error = train(&mut model, &data, 16, Some(&world)).unwrap_err();
            println!("rank {}: {error}", world.rank());
        }
        "hang" => {
            if world.rank() == 1 {
                std::thread::sleep(Duration::from_secs(60));
            }
            let mut model = compiled("mlp");
            let _ = train(&mut model, &data, 16, Some(&world));
            unreachable!("rank 0's watchdog ends the job first");
        }
        "die" => {
            if world.rank() == 1 {
                // Without MPI_Finalize: as a crash would.
                std::process::exit(3);
            }
            let mut model = compiled("mlp");
            let _ = train(&mut model, &data, 16, Some(&world));
            unreachable!("mpirun ends the job first");
        }
        other => panic!("unknown scenario '{other}'"),
    }
}
