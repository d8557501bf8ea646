//! Functional models: graphs with merges, shared layers and skip connections behave like the
//! equivalent Sequential stacks, differentiate correctly, print their connections and survive
//! a save/load round trip; graph mistakes are errors naming the layers.

mod common;

use common::{EPS, TOLERANCE, project, uniform};
use strata::autograd::ParamStore;
use strata::autograd::gradcheck::max_gradient_error;
use strata::layers::Merge;
use strata::prelude::*;
use strata::rng::Rng;

fn residual_mlp() -> Model {
    let inputs = Input::node(&[6]);
    let hidden = Dense::new(6).activation("relu").call(&inputs).unwrap();
    let skip = Add::new().call_many(&[&inputs, &hidden]).unwrap();
    let normalized = LayerNormalization::new().call(&skip).unwrap();
    let outputs = Dense::new(3).activation("softmax").call(&normalized).unwrap();
    Model::functional(&inputs, &outputs).unwrap()
}

#[test]
fn a_functional_chain_equals_the_sequential_stack() {
    let inputs = Input::node(&[5]);
    let hidden = Dense::new(7).activation("tanh").call(&inputs).unwrap();
    let outputs = Dense::new(2).call(&hidden).unwrap();
    let mut functional = Model::functional(&inputs, &outputs).unwrap();
    let mut sequential = Sequential::new();
    sequential
        .add(Input::new(&[5]))
        .add(Dense::new(7).activation("tanh"))
        .add(Dense::new(2));
    sequential.build(&[5]).unwrap();
    assert_eq!(functional.weights(), sequential.weights(), "same seed, same weights");
    let x = uniform(&[4, 5], -1.0, 1.0, 1);
    assert_eq!(
        functional.predict(&x, 4).unwrap().data(),
        sequential.predict(&x, 4).unwrap().data()
    );
    for model in [&mut functional, &mut sequential] {
        model.compile(Sgd::new(0.1), "mse", &[]).unwrap();
        model
            .fit(
                &x,
                &Tensor::zeros(&[4, 2]),
                FitOptions::default().epochs(2).batch_size(2).verbose(0),
            )
            .unwrap();
    }
    assert_eq!(functional.weights(), sequential.weights(), "and the same training");
}

#[test]
fn merge_layers_have_finite_difference_gradients() {
    let merges: Vec<(&str, Merge, Vec<Vec<usize>>)> = vec![
        ("add", Add::new(), vec![vec![2, 3], vec![2, 3], vec![2, 3]]),
        ("subtract", Subtract::new(), vec![vec![2, 3], vec![2, 3]]),
        ("multiply", Multiply::new(), vec![vec![2, 3], vec![2, 3]]),
        ("average", Average::new(), vec![vec![2, 3], vec![2, 3], vec![2, 3]]),
        ("maximum", Maximum::new(), vec![vec![2, 3], vec![2, 3]]),
        ("minimum", Minimum::new(), vec![vec![2, 3], vec![2, 3], vec![2, 3]]),
        ("concatenate", Concatenate::new(-1), vec![vec![2, 2, 3], vec![2, 2, 1]]),
        (
            "concatenate axis 0",
            Concatenate::new(0),
            vec![vec![2, 2, 3], vec![2, 1, 3]],
        ),
    ];
    for (what, mut merge, shapes) in merges {
        merge.set_name(what.into());
        let per_sample: Vec<Vec<usize>> = shapes.iter().map(|s| s[1..].to_vec()).collect();
        merge
            .build(&per_sample, &mut ParamStore::new(), &mut Rng::new(0))
            .unwrap();
        let mut params = ParamStore::new();
        let ids: Vec<_> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| params.add(format!("x{i}"), uniform(s, -1.0, 1.0, 10 + i as u64), true))
            .collect();
        let error = max_gradient_error(&mut params, EPS, |g| {
            let vars: Vec<_> = ids.iter().map(|&id| g.param(id)).collect();
            let mut outputs = Vec::new();
            merge.forward(g, &vars, &mut outputs)?;
            project(g, outputs[0], 3)
        })
        .unwrap();
        assert!(error < TOLERANCE, "{what}: gradient error {error}");
    }
    // Hand-computed values.
    let mut concat = Concatenate::new(-1);
    concat
        .build(&[vec![2], vec![1]], &mut ParamStore::new(), &mut Rng::new(0))
        .unwrap();
    let params = ParamStore::new();
    let mut tape = strata::autograd::Tape::new();
    let mut g = strata::autograd::Graph::new(&mut tape, &params, false);
    let a = g.constant(&Tensor::from_vec(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap());
    let b = g.constant(&Tensor::from_vec(vec![2, 1], vec![5.0, 6.0]).unwrap());
    let mut outputs = Vec::new();
    concat.forward(&mut g, &[a, b], &mut outputs).unwrap();
    Maximum::new().forward(&mut g, &[a, a], &mut outputs).unwrap();
    let c = g.constant(&Tensor::from_vec(vec![2, 2], vec![2.0, 1.0, 5.0, 0.0]).unwrap());
    Minimum::new().forward(&mut g, &[a, c], &mut outputs).unwrap();
    let [y, m, least] = outputs[..] else {
        unreachable!("three outputs")
    };
    assert_eq!(g.value(y).data(), &[1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
    assert_eq!(g.value(m).data(), &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(g.value(least).data(), &[1.0, 1.0, 3.0, 0.0]);
}

#[test]
fn a_shared_layer_sums_the_gradients_of_its_calls() {
    // x → dense → dense (the same layer twice) against two separate layers with equal weights:
    // one SGD step moves the shared kernel by the sum of the two separate kernels' moves.
    let x = uniform(&[8, 4], -1.0, 1.0, 2);
    let y = uniform(&[8, 4], -1.0, 1.0, 3);
    let kernel = uniform(&[4, 4], -0.5, 0.5, 4);
    let step = |model: &mut Model| {
        model.compile(Sgd::new(0.1), "mse", &[]).unwrap();
        for id in model.params().ids().collect::<Vec<_>>() {
            if model.params().name(id).ends_with("kernel") {
                *model.params_mut().value_mut(id) = kernel.clone();
            }
        }
        let options = FitOptions::default().batch_size(8).shuffle(false).verbose(0);
        model.fit(&x, &y, options).unwrap();
    };
    let inputs = Input::node(&[4]);
    let shared = SharedLayer::new(Dense::new(4).activation("tanh"));
    let once = shared.call(&inputs).unwrap();
    let twice = shared.call(&once).unwrap();
    let mut shared_model = Model::functional(&inputs, &twice).unwrap();
    assert_eq!(shared_model.count_params(), 20, "one set of weights");
    step(&mut shared_model);
    let inputs = Input::node(&[4]);
    let first = Dense::new(4).activation("tanh").call(&inputs).unwrap();
    let second = Dense::new(4).activation("tanh").call(&first).unwrap();
    let mut separate = Model::functional(&inputs, &second).unwrap();
    step(&mut separate);
    let (w, s) = (shared_model.weights(), separate.weights());
    for (i, value) in w["dense/kernel"].data().iter().enumerate() {
        let expected = s["dense/kernel"].data()[i] + s["dense_1/kernel"].data()[i] - kernel.data()[i];
        assert!((value - expected).abs() < 1e-6, "element {i}: {value} vs {expected}");
    }
}

#[test]
fn summaries_show_connections_and_graphs_save_and_load() {
    let mut model = residual_mlp();
    model
        .compile("adam", "sparse_categorical_crossentropy", &["accuracy"])
        .unwrap();
    let summary = model.summary().unwrap();
    assert!(summary.contains("Connected to"), "{summary}");
    assert!(summary.contains("add (Add)"), "{summary}");
    let add_row = summary.lines().find(|l| l.contains("add (Add)")).unwrap();
    assert!(add_row.contains("input_layer[0][0]"), "{summary}");
    let next = summary.lines().skip_while(|l| !l.contains("add (Add)")).nth(1).unwrap();
    assert!(next.contains("dense[0][0]"), "{summary}");
    assert!(summary.contains("Total params: 75"), "{summary}");

    let x = uniform(&[10, 6], -1.0, 1.0, 5);
    let y = Tensor::from_vec(vec![10], (0..10).map(|i| (i % 3) as f32).collect()).unwrap();
    model
        .fit(&x, &y, FitOptions::default().epochs(2).batch_size(5).verbose(0))
        .unwrap();
    let path = std::env::temp_dir().join(format!("strata-functional-{}.safetensors", common::run_id()));
    model.save(&path).unwrap();
    let mut loaded = strata::load_model(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(loaded.config(), model.config());
    assert_eq!(
        loaded.predict(&x, 5).unwrap().data(),
        model.predict(&x, 5).unwrap().data()
    );
    assert_eq!(loaded.summary().unwrap(), summary);
}

#[test]
fn graph_mistakes_are_errors_naming_the_layers() {
    let inputs = Input::node(&[4]);
    let wide = Dense::new(5).call(&inputs).unwrap();
    let error = Add::new().call_many(&[&inputs, &wide]).err().unwrap().to_string();
    assert!(
        error.contains("add") && error.contains("(None, 4)") && error.contains("(None, 5)"),
        "{error}"
    );

    let other = Input::node(&[4]);
    let out = Dense::new(2).call(&other).unwrap();
    let error = Model::functional(&inputs, &out).err().unwrap().to_string();
    assert!(error.contains("not connected"), "{error}");

    let shared = SharedLayer::new(Dense::new(3).name("shared"));
    shared.call(&inputs).unwrap();
    let error = shared.call(&wide).err().unwrap().to_string();
    assert!(error.contains("shared"), "{error}");

    // A description with a cycle: a reads b, b reads a.
    let cyclic = r#"{"class_name": "Functional", "config": {"name": "loop", "layers": [
        {"class_name": "InputLayer", "name": "in", "config": {"name": "in", "batch_shape": [null, 3]}, "inbound_nodes": []},
        {"class_name": "Dense", "name": "a", "config": {"name": "a", "units": 3}, "inbound_nodes": [[["b", 0, 0, {}]]]},
        {"class_name": "Dense", "name": "b", "config": {"name": "b", "units": 3}, "inbound_nodes": [[["a", 0, 0, {}]]]}
    ]}}"#;
    let error = strata::io::config::parse(cyclic, strata::io::config::Format::Json, "loop.json")
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("a, b") && error.contains("cycle"), "{error}");
}

#[test]
fn named_residual_models_build_with_their_parameter_counts() {
    for (name, total, non_trainable) in [("resmlp", 233_866, 0), ("resnet", 176_090, 1_120)] {
        let spec = strata::io::config::load_model_spec(name).unwrap();
        let mut model = spec.model;
        let summary = model.summary().unwrap();
        // summary() builds nothing: compile builds for the declared input shape.
        model.compile("sgd", "mse", &[]).unwrap();
        let (all, trainable) = model.params().counts();
        assert_eq!((all, all - trainable), (total, non_trainable), "{name}\n{summary}");
        assert!(summary.contains("Connected to"), "{summary}");
    }
}

/// The issue's bar for the named ResNet: one epoch of MNIST (batch 64, Adam with a cosine decay
/// over the epoch, from models/resnet.toml) reaches 0.98 test accuracy (0.990 measured).
#[test]
fn resnet_reaches_98_percent_after_one_epoch_of_mnist() {
    use strata::data::{mnist, scale};
    let spec = strata::io::config::load_model_spec("resnet").unwrap();
    let mut model = spec.model;
    let learning_rate = spec.optimizer.learning_rate();
    assert!(
        (learning_rate - 0.003).abs() < 1e-7,
        "cosine decay starts at 0.003, not {learning_rate}"
    );
    model.compile(spec.optimizer, spec.loss, &["accuracy"]).unwrap();
    let ((x_train, y_train), (x_test, y_test)) = mnist::load_data().unwrap();
    let x_train = scale(&x_train, 1.0 / 255.0).reshape(&[60_000, 28, 28, 1]).unwrap();
    let x_test = scale(&x_test, 1.0 / 255.0).reshape(&[10_000, 28, 28, 1]).unwrap();
    model
        .fit(
            &x_train,
            &y_train,
            FitOptions::default().batch_size(spec.batch_size).verbose(0),
        )
        .unwrap();
    let accuracy = model.evaluate(&x_test, &y_test, 500).unwrap().accuracy.unwrap();
    assert!(accuracy >= 0.98, "resnet after one epoch: test accuracy {accuracy}");
    let final_rate = model.optimizer().unwrap().learning_rate();
    assert!(
        final_rate < 1e-5,
        "the decay ends near 0 after 938 steps, not {final_rate}"
    );
}

/// A base with a skip connection, as the Python package describes a model used as a layer.
fn nested_base_entry() -> serde_json::Value {
    serde_json::json!({
        "class_name": "Functional",
        "name": "base",
        "config": {
            "name": "base",
            "layers": [
                {"class_name": "InputLayer", "name": "pixels", "config": {"name": "pixels", "shape": [4]}, "inbound_nodes": []},
                {"class_name": "Dense", "name": "inner", "config": {"name": "inner", "units": 4, "activation": "tanh"},
                 "inbound_nodes": [[["pixels", 0, 0, {}]]]},
                {"class_name": "Add", "name": "skip", "config": {"name": "skip"},
                 "inbound_nodes": [[["pixels", 0, 0, {}], ["inner", 0, 0, {}]]]}
            ],
            "input_layers": [["pixels", 0, 0]],
            "output_layers": [["skip", 0, 0]]
        }
    })
}

#[test]
fn descriptions_holding_a_model_as_a_layer_open_it_up_and_record_it() {
    let head = serde_json::json!({"class_name": "Dense", "config": {"name": "head", "units": 2}});
    let input = serde_json::json!({"class_name": "InputLayer", "config": {"name": "image", "shape": [4]}});
    // Sequential([Input, base, Dense]) and Model(image, head(base(image))).
    let sequential = serde_json::json!({"class_name": "Sequential", "config": {"name": "outer",
        "layers": [input, nested_base_entry(), head]}});
    let mut called = nested_base_entry();
    called["inbound_nodes"] = serde_json::json!([[["image", 0, 0]]]);
    let mut head_called = head.clone();
    head_called["name"] = "head".into();
    head_called["inbound_nodes"] = serde_json::json!([[["base", 0, 0]]]);
    let mut input_entry = input.clone();
    input_entry["name"] = "image".into();
    input_entry["inbound_nodes"] = serde_json::json!([]);
    let functional = serde_json::json!({"class_name": "Functional", "config": {"name": "outer",
        "layers": [input_entry, called, head_called],
        "input_layers": [["image", 0, 0]], "output_layers": [["head", 0, 0]]}});
    let x = Tensor::from_vec(vec![2, 4], (0..8).map(|i| (i as f32 * 0.37).sin()).collect()).unwrap();
    let mut outputs = Vec::new();
    for description in [sequential, functional] {
        let text = description.to_string();
        let mut model = strata::io::config::parse(&text, strata::io::config::Format::Json, "description")
            .unwrap()
            .model;
        let names: Vec<&str> = model.layers().iter().map(|l| l.name()).collect();
        assert_eq!(names, ["image", "inner", "skip", "head"], "{text}");
        let nested = model.nested_models();
        assert_eq!(nested.len(), 1);
        assert_eq!(nested[0].layer_names(), ["inner", "skip"]);
        model.seed(7);
        model.build(&[4]).unwrap();
        outputs.push(model.predict(&x, 2).unwrap());
    }
    // The same graph either way: the same weights (same seed, same layer order), same outputs.
    assert_eq!(outputs[0].data(), outputs[1].data());
}

/// A functional description of 10,000 Dense layers listed in reverse order of their calls
/// (each reads the one listed after it): placing the calls used to rescan every waiting call,
/// with linear name and node look-ups, after each one placed (cubic: hours here); now each
/// call is placed once its inputs are, in a pass over the graph.
#[test]
fn a_long_chain_listed_backwards_is_read_in_linear_time() {
    const LAYERS: usize = 10_000;
    let mut layers = vec![serde_json::json!({"class_name": "InputLayer", "name": "in",
        "config": {"name": "in", "batch_shape": [null, 1]}, "inbound_nodes": []})];
    for k in (0..LAYERS).rev() {
        let read = if k == 0 {
            "in".to_string()
        } else {
            format!("d{}", k - 1)
        };
        let name = format!("d{k}");
        layers.push(serde_json::json!({"class_name": "Dense", "name": name,
            "config": {"name": name, "units": 1}, "inbound_nodes": [[[read, 0, 0, {}]]]}));
    }
    let description = serde_json::json!({"class_name": "Functional", "config": {"name": "chain", "layers": layers,
        "input_layers": [["in", 0, 0]], "output_layers": [[format!("d{}", LAYERS - 1), 0, 0]]}});
    let text = description.to_string();
    let model = strata::io::config::parse(&text, strata::io::config::Format::Json, "chain.json")
        .unwrap()
        .model;
    assert_eq!(model.layers().len(), LAYERS + 1);
    assert_eq!(model.output_names(), [format!("d{}", LAYERS - 1)]);
}
