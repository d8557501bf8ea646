//! The layers around attention (Dense and LayerNormalization on sequences, position embeddings,
//! masked GlobalAveragePooling1D) and the Transformer text classifier: `imdb_transformer` and
//! examples/transformer_text.rs, trained on a synthetic task that needs attention.

mod common;

#[path = "../examples/transformer_text.rs"]
mod example;

use strata::Tensor;
use strata::autograd::gradcheck::max_gradient_error;
use strata::autograd::{Graph, ParamStore, Tape};
use strata::io::config::load_model_spec;
use strata::layers::{Dense, Embedding, GlobalAveragePooling1D, Layer, PositionEmbedding, SinePositionEncoding};
use strata::prelude::*;
use strata::rng::Rng;

/// Runs a stack of layers on `x` (inference) and returns the output.
fn run(layers: Vec<Box<dyn Layer>>, x: &Tensor) -> Tensor {
    common::run_layers(layers, x, false).0
}

#[test]
fn global_average_pooling_1d_skips_padded_steps() {
    // Ids (1, 0, 2) and (0, 0, 0): the first sample averages steps 0 and 2 only; the second,
    // all padding, gives zeros.
    let mut embedding = Embedding::new(3, 2).mask_zero(true);
    let mut params = ParamStore::new();
    embedding.build_one(&[3], &mut params, &mut Rng::new(0)).unwrap();
    let table = embedding.params()[0];
    *params.value_mut(table) = Tensor::from_vec(vec![3, 2], vec![9.0, 9.0, 1.0, 2.0, 3.0, 6.0]).unwrap();
    let pool = GlobalAveragePooling1D::new();
    let mut tape = Tape::new();
    let mut g = Graph::new(&mut tape, &params, false);
    let ids = g.constant(&Tensor::from_vec(vec![2, 3], vec![1.0, 0.0, 2.0, 0.0, 0.0, 0.0]).unwrap());
    let embedded = embedding.forward_one(&mut g, ids).unwrap();
    let pooled = pool.forward_one(&mut g, embedded).unwrap();
    assert_eq!(g.value(pooled).data(), &[2.0, 4.0, 0.0, 0.0]);
    // Without a mask every step counts.
    let plain = run(
        vec![Box::new(GlobalAveragePooling1D::new())],
        &Tensor::from_vec(vec![1, 2, 1], vec![1.0, 3.0]).unwrap(),
    );
    assert_eq!(plain.data(), &[2.0]);
}

#[test]
fn masked_mean_over_steps_has_the_right_gradient() {
    let mask = Tensor::from_vec(vec![2, 3], vec![1.0, 0.0, 1.0, 0.0, 1.0, 1.0]).unwrap();
    let mut params = ParamStore::new();
    let x = params.add("x", common::uniform(&[2, 3, 4], -1.0, 1.0, 3), true);
    // `twice`: a second mean reads the same steps, so the second rule adds to the gradient
    // the first one wrote.
    for (masked, twice) in [(false, false), (true, false), (true, true)] {
        let error = max_gradient_error(&mut params, common::EPS, |g| {
            let m = masked.then(|| g.constant(&mask));
            let x = g.param(x);
            let mut y = g.mean_steps(x, m)?;
            if twice {
                let unmasked = g.mean_steps(x, None)?;
                let doubled = g.add(unmasked, unmasked)?;
                y = g.add(y, doubled)?;
            }
            common::project(g, y, 5)
        })
        .unwrap();
        assert!(error < common::TOLERANCE, "masked {masked}, twice {twice}: {error}");
    }
}

#[test]
fn dense_on_sequences_applies_the_kernel_to_each_step() {
    let x = common::uniform(&[2, 3, 4], -1.0, 1.0, 1);
    let mut dense = Dense::new(5).name("dense");
    assert_eq!(dense.output_shape(&[3, 4]).unwrap(), vec![3, 5]);
    let mut params = ParamStore::new();
    dense.build_one(&[3, 4], &mut params, &mut Rng::new(2)).unwrap();
    let mut tape = Tape::new();
    let mut g = Graph::new(&mut tape, &params, false);
    let xs = g.constant(&x);
    let y = dense.forward_one(&mut g, xs).unwrap();
    let y = g.value(y).clone();
    let (kernel, bias) = (
        params.value(dense.params()[0]).data(),
        params.value(dense.params()[1]).data(),
    );
    for (row, out) in x.data().chunks(4).zip(y.data().chunks(5)) {
        for (j, &o) in out.iter().enumerate() {
            let expected: f32 = bias[j] + (0..4).map(|i| row[i] * kernel[i * 5 + j]).sum::<f32>();
            assert!((o - expected).abs() < 1e-5, "{o} vs {expected}");
        }
    }
    // Deeper samples too, as Keras: the kernel on the last axis of each position.
    assert_eq!(Dense::new(5).output_shape(&[2, 3, 4]).unwrap(), [2, 3, 5]);
    let err = Dense::new(5).name("dense").output_shape(&[]).unwrap_err().to_string();
    assert!(err.contains("'dense'"), "{err}");
}

#[test]
fn position_embedding_gives_each_step_its_row_and_learns_it() {
    let mut layer = PositionEmbedding::new(5).name("positions");
    let mut params = ParamStore::new();
    layer.build_one(&[3, 2], &mut params, &mut Rng::new(0)).unwrap();
    let table = params.value(layer.params()[0]).clone();
    assert_eq!(table.shape(), &[5, 2]);
    let mut tape = Tape::new();
    let mut g = Graph::new(&mut tape, &params, false);
    let x = g.constant(&Tensor::zeros(&[2, 3, 2]));
    let y = layer.forward_one(&mut g, x).unwrap();
    let first_rows = &table.data()[..6];
    assert_eq!(&g.value(y).data()[..6], first_rows);
    assert_eq!(&g.value(y).data()[6..], first_rows);
    let error = max_gradient_error(&mut params, common::EPS, |g| {
        let x = g.constant(&Tensor::zeros(&[2, 3, 2]));
        let y = layer.forward_one(g, x)?;
        common::project(g, y, 2)
    })
    .unwrap();
    assert!(error < common::TOLERANCE, "{error}");
    let err = layer.output_shape(&[6, 2]).unwrap_err().to_string();
    assert!(
        err.contains("sequence_length = 5") && err.contains("(None, 6, 2)"),
        "{err}"
    );
}

#[test]
fn sine_position_encoding_follows_the_formula() {
    let table = SinePositionEncoding::new().table(3, 4);
    // Position 2: features 0, 1 at wavelength 1; features 2, 3 at 10000^(2/4) = 100.
    let expected = [2f32.sin(), 2f32.cos(), 0.02f32.sin(), 0.02f32.cos()];
    common::assert_close(&table.data()[8..], &expected, 1e-6, "position 2");
    assert_eq!(&table.data()[..4], &[0.0, 1.0, 0.0, 1.0]);
}

#[test]
fn imdb_transformer_has_keras_example_parameters_and_trains() {
    let spec = load_model_spec("imdb_transformer").unwrap();
    let mut model = spec.model;
    model.compile(spec.optimizer, spec.loss, &["accuracy"]).unwrap();
    // Embeddings 20000·32 + 200·32; attention 3·(32·2·32 + 2·32) + 2·32·32 + 32; two
    // LayerNormalizations 2·64; feed-forward 2·(32·32 + 32); Dense 32·20 + 20; Dense 20·2 + 2.
    assert_eq!(model.count_params(), 640_000 + 6_400 + 8_416 + 128 + 2_112 + 660 + 42);
    let mut rng = Rng::new(3);
    let x = Tensor::from_vec(vec![64, 200], (0..64 * 200).map(|_| rng.below(20_000) as f32).collect()).unwrap();
    let y = Tensor::from_vec(vec![64], (0..64).map(|i| (i % 2) as f32).collect()).unwrap();
    let history = model
        .fit(&x, &y, FitOptions::default().epochs(1).batch_size(32).verbose(0))
        .unwrap();
    assert!(history.get("loss")[0].is_finite());
}

#[test]
fn the_example_classifier_learns_a_task_that_needs_attention_and_round_trips() {
    let (steps, vocab) = (8, 4);
    let (x, y) = example::first_token_repeats(3000, steps, vocab, 1).unwrap();
    let (x_test, y_test) = example::first_token_repeats(400, steps, vocab, 2).unwrap();
    let mut model = example::transformer_classifier(steps, vocab, 16).unwrap();
    model
        .compile(Adam::new(0.003), "sparse_categorical_crossentropy", &["accuracy"])
        .unwrap();
    model
        .fit(&x, &y, FitOptions::default().epochs(30).batch_size(32).verbose(0))
        .unwrap();
    let accuracy = model.evaluate(&x_test, &y_test, 64).unwrap().accuracy.unwrap();
    eprintln!("test accuracy {accuracy}");
    assert!(accuracy > 0.8, "test accuracy {accuracy} (chance 0.5)");
    // Saved and loaded, the model predicts the same: every attention setting is in its config.
    let path = std::env::temp_dir().join(format!("strata-transformer-{}.safetensors", common::run_id()));
    model.save(&path).unwrap();
    let mut loaded = strata::load_model(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let (a, b) = (
        model.predict(&x_test, 64).unwrap(),
        loaded.predict(&x_test, 64).unwrap(),
    );
    common::assert_close(a.data(), b.data(), 0.0, "after loading");
}

#[test]
fn cropping_1d_keeps_the_inner_steps() {
    let x = Tensor::from_vec(vec![1, 4, 2], (0..8).map(|v| v as f32).collect()).unwrap();
    let y = run(vec![Box::new(strata::layers::Cropping1D::new(1, 2))], &x);
    assert_eq!((y.shape(), y.data()), (&[1, 1, 2][..], &[2.0, 3.0][..]));
    let err = strata::layers::Cropping1D::new(2, 2)
        .output_shape(&[4, 2])
        .unwrap_err()
        .to_string();
    assert!(err.contains("(None, 4, 2)"), "{err}");
}

#[test]
fn char_transformer_trains_from_the_command_line_reports_perplexity_and_generates() {
    let dir = std::env::temp_dir().join(format!("strata-char-transformer-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let corpus = dir.join("corpus.txt");
    let play: String = strata::data::text::load_shakespeare()
        .unwrap()
        .chars()
        .take(6000)
        .collect();
    std::fs::write(&corpus, &play).unwrap();
    let model = dir.join("model.safetensors");
    let strata = env!("CARGO_BIN_EXE_strata");
    let trained = std::process::Command::new(strata)
        .args([
            "train",
            "--model",
            "char_transformer",
            "--epochs",
            "2",
            "--json",
            "--verbose",
            "0",
            "--data",
        ])
        .arg(&corpus)
        .arg("--save")
        .arg(&model)
        .output()
        .unwrap();
    assert!(trained.status.success(), "{}", String::from_utf8_lossy(&trained.stderr));
    let stdout = String::from_utf8_lossy(&trained.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let epochs = report["epochs"].as_array().unwrap();
    let (first, last) = (&epochs[0], &epochs[1]);
    let loss = last["loss"].as_f64().unwrap();
    assert!(
        (last["perplexity"].as_f64().unwrap() - loss.exp()).abs() < 1e-3 * loss.exp(),
        "{report}"
    );
    // Uniform guessing over 66 ids has perplexity 66; the second epoch must do far better.
    assert!(loss < first["loss"].as_f64().unwrap() && loss.exp() < 30.0, "{report}");
    let generated = std::process::Command::new(strata)
        .args([
            "generate", "--prompt", "To be", "--length", "30", "--seed", "7", "--model",
        ])
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let text = String::from_utf8(generated.stdout).unwrap();
    let text = text.trim_end_matches('\n');
    assert!(text.starts_with("To be") && text.chars().count() == 35, "{text:?}");
    assert!(text.chars().all(|c| play.contains(c)), "{text:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
