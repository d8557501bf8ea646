//! The README's commands run. Every command line of its ```sh / ```bash / ```console blocks that
//! starts with `strata`, `cargo`, `mpirun` or `tensorboard` is either run here (in a scratch
//! folder holding the small files under `examples/data/`, with fewer epochs or steps) or excused
//! with the reason; a command added to the README with neither fails
//! `every_readme_command_is_run_or_excused`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Commands run by `readme_commands_run`, in this order (later ones use the files earlier ones
/// save): the README's text, then the flags the test sets (replacing the README's value where it
/// gives the flag, else added), then what shows it did its work: text its output holds, or
/// `file:PATH`, a file it wrote. `{mnist}` is the small MNIST folder `examples/data/mnist-small`.
const RUN: &[(&str, &[&str], &str)] = &[
    (
        "strata train --model mlp2 --epochs 5",
        &["--epochs", "1", "--data", "{mnist}"],
        "test accuracy",
    ),
    (
        "strata train --model models/mlp.toml",
        &["--epochs", "1", "--data", "{mnist}"],
        "test accuracy",
    ),
    (
        "strata train --model keras_model.json",
        &["--epochs", "1", "--data", "{mnist}"],
        "test accuracy",
    ),
    (
        "strata train --optimizer rmsprop --lr 0.0005 --batch-size 64 --seed 7 --threads 2",
        &["--epochs", "1", "--data", "{mnist}"],
        "test accuracy",
    ),
    (
        "strata train --data my_table.csv --test-data my_test.csv --label species --model my_model.toml",
        &["--epochs", "1"],
        "test accuracy",
    ),
    (
        "strata train --epochs 1 --verbose 0 --json",
        &["--data", "{mnist}"],
        "\"test_accuracy\"",
    ),
    ("strata summary --model mlp", &[], "Total params: 101,770"),
    (
        "strata train --model cnn --save cnn.safetensors",
        &["--epochs", "1", "--data", "{mnist}"],
        "saved to cnn.safetensors",
    ),
    (
        "strata train --model cnn --save cnn.keras",
        &["--epochs", "1", "--data", "{mnist}"],
        "saved to cnn.keras",
    ),
    (
        "strata export --model cnn.safetensors -o cnn.keras",
        &[],
        "for keras.models.load_model",
    ),
    (
        "strata train --resume cnn.safetensors --epochs 8",
        &["--epochs", "2"],
        "test accuracy",
    ),
    // The resume above saved nothing (no --save), so the model is at its first run's end
    // already: this one only evaluates it.
    ("strata train --resume cnn.safetensors", &[], "test accuracy"),
    (
        "strata train --model cnn --checkpoint ck.safetensors [--checkpoint-every 2]",
        &["--epochs", "2", "--data", "{mnist}"],
        "file:ck.safetensors",
    ),
    (
        "strata evaluate --model cnn.safetensors [--json]",
        &[],
        "\"test_accuracy\"",
    ),
    ("strata predict --model cnn.safetensors digit.png", &[], "digit.png: "),
    ("strata summary --model cnn.safetensors", &[], "Total params: 93,322"),
    (
        "strata quantize --model cnn.safetensors -o cnn-int8.safetensors",
        &[],
        "quantized cnn.safetensors",
    ),
    ("strata evaluate --model cnn-int8.safetensors", &[], "test accuracy"),
    (
        "strata evaluate --model cnn.safetensors --quantize int8",
        &[],
        "test accuracy",
    ),
    ("strata summary --model cnn-int8.safetensors", &[], "Quantized (int8)"),
    (
        "strata export --model cnn-int8.safetensors -o cnn-int8.onnx",
        &[],
        "file:cnn-int8.onnx",
    ),
    (
        "strata train --model cnn --mixed-precision bf16 --save cnn-bf16.safetensors",
        &["--epochs", "1", "--data", "{mnist}"],
        "saved to cnn-bf16.safetensors",
    ),
    (
        "strata evaluate --model cnn.safetensors --mixed-precision bf16",
        &[],
        "test accuracy",
    ),
    (
        "strata quantize --model cnn.safetensors --calibrate 500 -o cnn-static.safetensors",
        &[],
        "quantized cnn.safetensors",
    ),
    (
        "strata train --model cnn --epochs 2 --augment --plot curves.png",
        &["--epochs", "1", "--data", "{mnist}"],
        "file:curves.png",
    ),
    (
        "strata train --dropout 0.3 --l2 1e-4 --early-stopping 3 --validation-split 0.1 --history h.json",
        &["--epochs", "1", "--data", "{mnist}"],
        "file:h.json",
    ),
    (
        "strata train --lr-schedule \"cosine:decay_steps=18750,warmup_steps=500\"",
        &["--epochs", "1", "--data", "{mnist}"],
        "test accuracy",
    ),
    (
        "strata evaluate --model cnn.safetensors --confusion-matrix matrix.png",
        &[],
        "file:matrix.png",
    ),
    (
        "strata train --epochs 10 --validation-split 0.1 --tensorboard logs",
        &["--epochs", "1", "--data", "{mnist}"],
        "file:logs",
    ),
    // Transfer learning, on digit folders the test writes.
    (
        "strata train --model cnn --data digits_0_4/ --epochs 3 --save base.safetensors",
        &["--epochs", "1"],
        "saved to base.safetensors",
    ),
    (
        "strata train --base base.safetensors --base-output flatten --freeze-base --head \"Dense(64,relu),Dropout(0.2),Dense(5,softmax)\" --data digits_5_9/ --epochs 30 --save head.safetensors",
        &["--epochs", "1"],
        "saved to head.safetensors",
    ),
    (
        "strata train --resume head.safetensors --fine-tune-from conv2d_2 --lr 1e-4 --epochs 40 --save tuned.safetensors",
        &["--epochs", "2"],
        "saved to tuned.safetensors",
    ),
    (
        "strata evaluate --model head.safetensors --data digits_5_9_test/",
        &[],
        "test accuracy",
    ),
    (
        "strata train --base base.safetensors --base-output flatten --freeze-base --head \"Dense(5,softmax)\" --data dir/",
        &["--epochs", "1"],
        "labelled in this order: 5, 6, 7, 8, 9",
    ),
    (
        "strata train --resume head.safetensors --fine-tune-from conv2d_2 --lr 1e-5",
        &["--epochs", "2"],
        "Epoch 2/2",
    ),
    // Image folders with class names, and Keras files.
    (
        "strata train --data pets/ --save pets.safetensors",
        &["--epochs", "1"],
        "saved to pets.safetensors",
    ),
    (
        "strata predict --model pets.safetensors photo.jpg --top 2",
        &[],
        "photo.jpg: ",
    ),
    (
        "strata export --model cnn.safetensors -o cnn.onnx",
        &[],
        "file:cnn.onnx",
    ),
    (
        "strata import model.h5 -o model.safetensors",
        &[],
        "file:model.safetensors",
    ),
    (
        "strata import model.keras -o model.safetensors",
        &[],
        "file:model.safetensors",
    ),
    (
        "strata import my_model.keras -o m.safetensors --labels names.txt --preprocess torch",
        &[],
        "file:m.safetensors",
    ),
    ("strata export --model m.safetensors -o m.onnx", &[], "file:m.onnx"),
    (
        "strata predict --model m.safetensors cat.jpg --labels names.txt --preprocess caffe --json",
        &[],
        "digit ",
    ),
    // Text: a few thousand characters of Hamlet instead of the whole play.
    (
        "strata train --model char_rnn --save hamlet.safetensors",
        &["--epochs", "1", "--data", "short.txt"],
        "saved to hamlet.safetensors",
    ),
    (
        "strata train --model char_transformer --save hamlet_t.safetensors",
        &["--epochs", "1", "--data", "short.txt"],
        "saved to hamlet_t.safetensors",
    ),
    (
        "strata generate --model hamlet.safetensors --prompt \"To be\" --length 300 --temperature 0.8",
        &[],
        "To be",
    ),
    (
        "strata bench --model cnn --steps 50",
        &["--steps", "2", "--predictions", "2"],
        "ms/step",
    ),
    (
        "strata bench --model all --json",
        &["--steps", "2", "--predictions", "2"],
        "mlp2",
    ),
    (
        "STRATA_PROFILE=1 strata bench --model cnn",
        &["--steps", "2", "--predictions", "2"],
        "ms/step",
    ),
    (
        "STRATA_SIMD=avx2 strata bench --model cnn",
        &["--steps", "2", "--predictions", "2"],
        "ms/step",
    ),
];

/// Commands the tests do not run, with the reason.
const EXCUSED: &[(&str, &str)] = &[
    (
        "strata train --base mobilenet_v2.keras --base-output out_relu --freeze-base --head \"GlobalAveragePooling2D,Dropout(0.2),Dense(5,softmax)\" --data flowers/ --epochs 5 --save flowers.safetensors",
        "needs a Keras MobileNetV2 file and a flowers folder; tests/predict_cli.rs trains with --base on a Keras application's .keras file",
    ),
    (
        "cargo run --release",
        "10 epochs on the full MNIST; the same run as `strata train`, run here with one epoch",
    ),
    ("cargo test --release", "the test suite itself"),
    (
        "cargo install --path .",
        "installs into ~/.cargo/bin; the tests run the binary cargo built, and tests/datasets.rs loads MNIST and Hamlet from another working folder",
    ),
    (
        "strata",
        "`strata train` with its defaults (10 epochs on the full MNIST), run here with one epoch",
    ),
    (
        "tensorboard --logdir logs",
        "TensorBoard is Python's; tests/tensorboard.rs reads the event files",
    ),
    (
        "strata train --model cifar10_cnn --data cifar10",
        "downloads CIFAR-10 (170 MB); tests never touch the network (tests/dataset_models.rs uses fixtures)",
    ),
    (
        "strata import mobilenet_v2.keras -o mobilenet_v2.safetensors",
        "MobileNetV2's 14 MB of weights are not shipped (tests/keras_applications.rs imports small ones)",
    ),
    (
        "strata predict --model mobilenet_v2.safetensors cat.jpg --top 5",
        "needs the MobileNetV2 above",
    ),
    (
        "cargo run --release --example onnx_parity -- /tmp/onnx-parity",
        "writes the files tools/check_onnx_export.py runs with ONNX Runtime in a Python venv (.ci/run); tests/onnx_export.rs checks them without Python",
    ),
    (
        "strata import model.onnx -o model.safetensors",
        "tests/onnx_import.rs runs it on a fixture (the_cli_imports_to_safetensors)",
    ),
    (
        "cargo run --release --example onnx_finetune -- model.onnx photos/",
        "needs an ONNX classifier and photos; without arguments the example runs on a fixture (a few seconds)",
    ),
    (
        "STRATA_ONNX_LARGE=/tmp/onnx-large cargo test --release --test onnx_import -- --ignored",
        "needs the torchvision files tools/onnx_import_fixtures.py --large makes with PyTorch (gigabytes to install)",
    ),
    (
        "STRATA_ONNX_LARGE=/tmp/onnx-torchvision cargo test --release --test onnx_import -- --ignored",
        "needs the files tools/check_onnx_import_torchvision.py writes with ONNX Runtime in a Python venv (.ci/run); tests/onnx_torchvision.rs imports the graphs without Python",
    ),
    (
        "cargo build --release --features mpi",
        "needs the system's Open MPI (tests/mpi.rs runs where it is installed)",
    ),
    (
        "mpirun -np 2 target/release/strata train --distributed --model cnn --batch-size 32 --threads 1",
        "needs Open MPI (tests/mpi.rs)",
    ),
    (
        "mpirun --hostfile hosts -np 4 -x STRATA_MPI_TIMEOUT /opt/strata/strata train --distributed --model cnn --batch-size 16 --checkpoint cnn.safetensors",
        "needs several machines",
    ),
];

/// First words that make a shell line a command the README asks a reader to run.
const PROGRAMS: &[&str] = &["strata", "cargo", "mpirun", "tensorboard"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The command lines of the README's shell blocks: `\` continuations joined, `#` comments and
/// runs of spaces removed.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut commands = Vec::new();
    let mut in_shell = false;
    let mut pending = String::new();
    for line in readme.lines() {
        if let Some(info) = line.strip_prefix("```") {
            in_shell = !in_shell && matches!(info.split_whitespace().next(), Some("sh" | "bash" | "console"));
            continue;
        }
        if !in_shell {
            continue;
        }
        let code = strip_comment(line.trim_start_matches("$ "));
        pending.push_str(code.trim_end_matches('\\'));
        pending.push(' ');
        if code.ends_with('\\') {
            continue;
        }
        let command = pending.split_whitespace().collect::<Vec<_>>().join(" ");
        pending.clear();
        let program = command.split_whitespace().find(|word| !word.contains('='));
        if program.is_some_and(|p| PROGRAMS.contains(&p)) {
            commands.push(command);
        }
    }
    commands
}

/// `line` up to a `#` outside double quotes that starts a word.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted && previous.is_whitespace() => return line[..i].trim_end(),
            _ => {}
        }
        previous = c;
    }
    line.trim_end()
}

/// Words of a command as a shell splits them (double quotes only); `[` `]` of optional flags
/// dropped, so `[--json]` is run with the flag.
fn words(command: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted) = (Vec::new(), String::new(), false);
    for c in command.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            '[' | ']' if !quoted => {}
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[test]
fn every_readme_command_is_run_or_excused() {
    let listed: BTreeSet<&str> = RUN
        .iter()
        .map(|(c, _, _)| *c)
        .chain(EXCUSED.iter().map(|(c, _)| *c))
        .collect();
    let readme: BTreeSet<String> = readme_commands().into_iter().collect();
    let missing: Vec<&String> = readme.iter().filter(|c| !listed.contains(c.as_str())).collect();
    let stale: Vec<&&str> = listed.iter().filter(|c| !readme.contains(**c)).collect();
    assert!(
        missing.is_empty(),
        "README commands neither run nor excused in tests/readme_commands.rs: {missing:#?}"
    );
    assert!(
        stale.is_empty(),
        "tests/readme_commands.rs lists commands the README no longer has: {stale:#?}"
    );
}

#[test]
fn the_extraction_joins_continuations_and_drops_comments() {
    assert_eq!(strip_comment("strata   # = strata train"), "strata");
    assert_eq!(strip_comment("strata --head \"a # b\" # c"), "strata --head \"a # b\"");
    assert_eq!(
        words("strata x \"A(1, 2)\" [--json]"),
        ["strata", "x", "A(1, 2)", "--json"]
    );
    let commands = readme_commands();
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("mpirun --hostfile hosts") && c.ends_with("cnn.safetensors"))
    );
    assert!(commands.iter().all(|c| !c.contains('#') || c.contains('"')));
}

/// The README command with the test's flags: a flag the command has gets the new value, others
/// are added.
fn with_flags(command: &str, flags: &[&str], mnist: &Path) -> (Vec<(String, String)>, Vec<String>) {
    let mut args = words(command);
    let env: Vec<(String, String)> = args
        .iter()
        .take_while(|w| w.contains('=') && !w.starts_with('-'))
        .map(|w| {
            let (k, v) = w.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    args.drain(..env.len() + 1); // the variables and `strata`
    for pair in flags.chunks(2) {
        let value = pair[1].replace("{mnist}", mnist.to_str().unwrap());
        match args.iter().position(|a| a == pair[0]) {
            Some(i) => args[i + 1] = value,
            None => args.extend([pair[0].to_string(), value]),
        }
    }
    (env, args)
}

/// Writes up to `per_class` images of each digit in `digits` from the bundled MNIST as PNG files
/// under `dir/NAME/`, NAME from `name`.
fn digit_folders(dir: &Path, digits: &[usize], per_class: usize, test: bool, name: impl Fn(usize) -> String) {
    let ((x_train, y_train), (x_test, y_test)) = strata::data::mnist::load_data().unwrap();
    let (x, y) = if test { (x_test, y_test) } else { (x_train, y_train) };
    let mut written = [0usize; 10];
    for i in 0..x.rows() {
        let label = y.data()[i] as usize;
        if !digits.contains(&label) || written[label] == per_class {
            continue;
        }
        let folder = dir.join(name(label));
        std::fs::create_dir_all(&folder).unwrap();
        image::GrayImage::from_raw(28, 28, digit_pixels(&x, i))
            .unwrap()
            .save(folder.join(format!("{i}.png")))
            .unwrap();
        written[label] += 1;
    }
}

fn digit_pixels(x: &strata::Tensor, i: usize) -> Vec<u8> {
    x.data()[i * 784..(i + 1) * 784].iter().map(|&v| v as u8).collect()
}

/// The scratch folder with what the README's commands name: the files under `examples/data`,
/// `models/mlp.toml`, digit folders, `pets/`, JPEG photos, class names and a short text.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-readme-{}", common::run_id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("models")).unwrap();
    let data = repo().join("examples/data");
    for file in [
        "digit.png",
        "model.keras",
        "keras_model.json",
        "my_table.csv",
        "my_test.csv",
        "my_model.toml",
    ] {
        std::fs::copy(data.join(file), dir.join(file)).unwrap();
    }
    std::fs::copy(data.join("model.keras"), dir.join("my_model.keras")).unwrap();
    let legacy = repo().join("tests/fixtures/keras/h5/k2_mlp.h5");
    std::fs::copy(legacy, dir.join("model.h5")).unwrap();
    std::fs::copy(repo().join("models/mlp.toml"), dir.join("models/mlp.toml")).unwrap();
    let names: Vec<String> = (0..10).map(|d| format!("digit {d}\n")).collect();
    std::fs::write(dir.join("names.txt"), names.concat()).unwrap();
    digit_folders(&dir.join("digits_0_4"), &[0, 1, 2, 3, 4], 20, false, |d| d.to_string());
    digit_folders(&dir.join("digits_5_9"), &[5, 6, 7, 8, 9], 20, false, |d| d.to_string());
    digit_folders(&dir.join("digits_5_9_test"), &[5, 6, 7, 8, 9], 10, true, |d| {
        d.to_string()
    });
    digit_folders(&dir.join("dir"), &[5, 6, 7, 8, 9], 10, false, |d| d.to_string());
    digit_folders(&dir.join("pets"), &[0, 1], 20, false, |d| ["cat", "dog"][d].to_string());
    let ((_, _), (x_test, _)) = strata::data::mnist::load_data().unwrap();
    let photo = image::GrayImage::from_raw(28, 28, digit_pixels(&x_test, 0)).unwrap();
    let photo = image::DynamicImage::ImageLuma8(photo).to_rgb8();
    photo.save(dir.join("photo.jpg")).unwrap();
    photo.save(dir.join("cat.jpg")).unwrap();
    let hamlet = std::fs::read_to_string(repo().join("data/shakespeare/hamlet.txt")).unwrap();
    let short: String = hamlet.chars().take(4000).collect();
    std::fs::write(dir.join("short.txt"), short).unwrap();
    dir
}

#[test]
fn readme_commands_run() {
    let dir = scratch();
    let mnist = repo().join("examples/data/mnist-small");
    let mut failures = Vec::new();
    for (command, flags, expected) in RUN {
        let (env, args) = with_flags(command, flags, &mnist);
        let out = Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(&args)
            .envs(env)
            .current_dir(&dir)
            .output()
            .unwrap();
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let worked = match expected.strip_prefix("file:") {
            Some(path) => dir.join(path).exists(),
            None => output.contains(expected),
        };
        if !out.status.success() || !worked {
            failures.push(format!(
                "{command}\n  run as: strata {}\n  expected {expected:?}, status {}, output:\n{}",
                args.join(" "),
                out.status,
                output.trim()
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "README commands that failed:\n{}",
        failures.join("\n")
    );
}

/// Counts the README states that need no training: each is in the README as written here and
/// is what strata computes, so neither drifts silently. (Trained figures: `tools/readme-figures`.)
#[test]
fn readme_counts_are_what_strata_computes() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for (model, params, stated) in [
        ("cnn", "93,322", "RMSprop, 93,322 parameters"),
        ("resnet", "176,090", "Dense(10); 176,090 parameters"),
        ("cifar10_cnn", "1,250,858", "Dense 512; 1,250,858 parameters"),
        ("imdb_transformer", "657,758", "imdb_transformer.toml`, 657,758"),
        // Its sizes left to the text ("auto"), shown for the bundled play's 66 ids.
        ("char_transformer", "44,546", "`Flatten`; 44,546 parameters"),
    ] {
        assert!(readme.contains(stated), "README no longer says {stated:?}");
        let (code, stdout, stderr) = common::strata(&["summary", "--model", model]);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout.contains(&format!("Total params: {params}")),
            "{model}: the README says {params} parameters, strata's summary:\n{stdout}"
        );
    }
    let text = strata::data::text::load_shakespeare().unwrap();
    let distinct: BTreeSet<char> = text.chars().collect();
    let stated = format!(
        "{} characters, {} distinct",
        thousands(text.chars().count()),
        distinct.len()
    );
    assert!(readme.contains(&stated), "README should say Hamlet has {stated}");
}

/// `n` with commas between thousands, as the README writes counts.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
