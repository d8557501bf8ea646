//! The augmentation layers (`RandomFlip`, `RandomRotation`, `RandomTranslation`, `RandomZoom`,
//! `RandomContrast`, `RandomCrop`): hand-computed forwards, identity at inference, seeding,
//! thread-count independence, saving, errors, and `ImageAugmentation::layers` in a model.
mod common;

use strata::Error;
use strata::autograd::{Graph, ParamStore, Tape};
use strata::data::ImageAugmentation;
use strata::io::with_preprocessing;
use strata::prelude::*;
use strata::rng::Rng;

/// `copies` images `(rows, columns, 1)`, each the given rows.
fn images(rows: &[&[f32]], copies: usize) -> Tensor {
    let image: Vec<f32> = rows.iter().flat_map(|row| row.iter().copied()).collect();
    let values = (0..copies).flat_map(|_| image.iter().copied()).collect();
    Tensor::from_vec(vec![copies, rows.len(), rows[0].len(), 1], values).unwrap()
}

/// `n` images `(height, width, channels)` of distinct values in [0, 1).
fn random_batch(shape: [usize; 4], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let len = shape.iter().product();
    Tensor::from_vec(shape.to_vec(), (0..len).map(|_| rng.uniform(0.0, 1.0)).collect()).unwrap()
}

/// The layer's output for `x` in one pass with `noise_seed` (the model's seed and step).
fn apply(layer: &mut dyn Layer, x: &Tensor, training: bool, noise_seed: u64) -> Result<Tensor> {
    let (mut tape, mut params) = (Tape::new(), ParamStore::new());
    layer.build_one(&x.shape()[1..], &mut params, &mut Rng::new(0))?;
    let mut graph = Graph::new(&mut tape, &params, training).with_noise_seed(noise_seed);
    let input = graph.constant(x);
    let output = layer.forward_one(&mut graph, input)?;
    Ok(graph.value(output).clone())
}

/// Image `i` of a batch.
fn image(batch: &Tensor, i: usize) -> Vec<f32> {
    batch.slice_rows(i, i + 1).data().to_vec()
}

/// Every layer, set to change its images.
fn every_layer() -> Vec<Box<dyn Layer>> {
    vec![
        Box::new(RandomFlip::new("horizontal_and_vertical")),
        Box::new(RandomRotation::new(0.1).fill_mode("constant").fill_value(0.5)),
        Box::new(RandomTranslation::new(0.2, (-0.1, 0.3)).fill_mode("wrap")),
        Box::new(RandomZoom::new(0.2).width_factor((-0.3, 0.1))),
        Box::new(RandomContrast::new(0.4).value_range(0.0, 1.0)),
        Box::new(RandomCrop::new(5, 4)),
    ]
}

#[test]
fn a_flip_mirrors_a_2x3_image_or_leaves_it() {
    let batch = images(&[&[1., 2., 3.], &[4., 5., 6.]], 16);
    let outputs = |mode: &str| apply(&mut RandomFlip::new(mode).seed(1), &batch, true, 7).unwrap();
    let seen = |mode: &str, flipped: &[f32]| {
        let output = outputs(mode);
        let kinds: Vec<bool> = (0..16)
            .map(|i| {
                let image = image(&output, i);
                assert!(image == batch.data()[..6] || image == flipped, "{mode}: {image:?}");
                image == flipped
            })
            .collect();
        assert!(kinds.contains(&true) && kinds.contains(&false), "{mode}: {kinds:?}");
    };
    seen("horizontal", &[3., 2., 1., 6., 5., 4.]);
    seen("vertical", &[4., 5., 6., 1., 2., 3.]);
    seen("horizontal_and_vertical", &[6., 5., 4., 3., 2., 1.]);
}

#[test]
fn a_quarter_turn_rotates_counter_clockwise() {
    let batch = images(&[&[1., 2., 3.], &[4., 5., 6.], &[7., 8., 9.]], 2);
    let output = apply(&mut RandomRotation::new((0.25, 0.25)), &batch, true, 3).unwrap();
    for i in 0..2 {
        assert_eq!(image(&output, i), [3., 6., 9., 2., 5., 8., 1., 4., 7.]);
    }
}

#[test]
fn a_one_pixel_translation_moves_the_content_and_fills_the_edge() {
    let batch = images(&[&[1., 2., 3., 4.], &[5., 6., 7., 8.]], 2);
    // A quarter of the width of 4 is one pixel, to the right.
    let mut right = RandomTranslation::new((0.0, 0.0), (0.25, 0.25)).fill_mode("constant");
    let output = apply(&mut right, &batch, true, 3).unwrap();
    assert_eq!(image(&output, 0), [0., 1., 2., 3., 0., 5., 6., 7.]);
    // Half the height of 2 is one row, down; "nearest" repeats the top row.
    let mut down = RandomTranslation::new((0.5, 0.5), 0.0).fill_mode("nearest");
    let output = apply(&mut down, &batch, true, 3).unwrap();
    assert_eq!(image(&output, 1), [1., 2., 3., 4., 1., 2., 3., 4.]);
}

#[test]
fn a_zoom_of_two_reads_twice_as_far_from_the_centre() {
    // Width 5, centre column 2: output column x reads 2 + 2 (x - 2), within the image for 1..=3.
    let batch = images(&[&[0., 1., 2., 3., 4.]], 1);
    let output = apply(
        &mut RandomZoom::new((1.0, 1.0))
            .width_factor((1.0, 1.0))
            .fill_mode("constant"),
        &batch,
        true,
        3,
    )
    .unwrap();
    assert_eq!(image(&output, 0), [0., 0., 2., 4., 0.]);
}

#[test]
fn contrast_scales_each_image_about_its_mean_by_one_factor_in_range() {
    let batch = images(&[&[0.2, 0.4], &[0.6, 0.8]], 8);
    let output = apply(&mut RandomContrast::new(0.5), &batch, true, 11).unwrap();
    let mut factors = Vec::new();
    for i in 0..8 {
        let out = image(&output, i);
        // Mean 0.5: each value becomes 0.5 + (x - 0.5) c.
        let c = (out[0] - 0.5) / (0.2 - 0.5);
        assert!((0.5..=1.5).contains(&c), "{c}");
        for (x, y) in [0.2f32, 0.4, 0.6, 0.8].iter().zip(&out) {
            assert!((0.5 + (x - 0.5) * c - y).abs() < 1e-6, "{out:?}");
        }
        factors.push(c);
    }
    assert!(factors.windows(2).any(|pair| pair[0] != pair[1]));
    // value_range clips: a factor of at most 2 on [0, 1] images with value_range (0.3, 0.7).
    let mut clipped = RandomContrast::new((1.0, 1.0)).value_range(0.3, 0.7);
    let output = apply(&mut clipped, &batch, true, 11).unwrap();
    assert!(output.data().iter().all(|v| (0.3..=0.7).contains(v)));
}

#[test]
fn crop_takes_one_random_window_per_batch_in_training_and_the_centre_at_inference() {
    let rows: Vec<Vec<f32>> = (0..4).map(|r| (0..4).map(|c| (4 * r + c) as f32).collect()).collect();
    let rows: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
    let batch = images(&rows, 6);
    let centre = apply(&mut RandomCrop::new(2, 2), &batch, false, 0).unwrap();
    assert_eq!(centre.shape(), [6, 2, 2, 1]);
    // The largest centred window of the target's aspect ratio is the whole image, resized with
    // half-pixel centres: each output pixel averages a 2×2 block.
    assert_eq!(image(&centre, 5), [2.5, 4.5, 10.5, 12.5]);
    let mut windows = std::collections::HashSet::new();
    for step in 0..20 {
        let output = apply(&mut RandomCrop::new(2, 2), &batch, true, step).unwrap();
        let first = image(&output, 0);
        let (top, left) = ((first[0] as usize) / 4, (first[0] as usize) % 4);
        assert_eq!(first, [first[0], first[0] + 1., first[0] + 4., first[0] + 5.]);
        assert!(top <= 2 && left <= 2);
        assert!((1..6).all(|i| image(&output, i) == first), "one window per batch");
        windows.insert((top, left));
    }
    assert!(windows.len() > 1);
    // A 2×4 image to 2×2 at inference: the centred 2×2 window, no resize needed.
    let wide = images(&[&[1., 2., 3., 4.], &[5., 6., 7., 8.]], 1);
    let output = apply(&mut RandomCrop::new(2, 2), &wide, false, 0).unwrap();
    assert_eq!(output.data(), [2., 3., 6., 7.]);
    // Up to 4×4 from 2×2: half-pixel bilinear resize, edges clamped.
    let small = images(&[&[0., 1.], &[2., 3.]], 1);
    let output = apply(&mut RandomCrop::new(4, 4), &small, true, 0).unwrap();
    assert_eq!(&output.data()[..4], [0., 0.25, 0.75, 1.]);
}

#[test]
fn every_layer_is_the_identity_at_inference_except_the_crop() {
    let batch = random_batch([16, 6, 5, 3], 1);
    for mut layer in every_layer() {
        let output = apply(layer.as_mut(), &batch, false, 9).unwrap();
        if layer.class_name() == "RandomCrop" {
            assert_eq!(output.shape(), [16, 5, 4, 3]);
        } else {
            assert!(output == batch, "{}", layer.class_name());
            assert!(
                apply(layer.as_mut(), &batch, true, 9).unwrap() != batch,
                "{}",
                layer.class_name()
            );
        }
    }
}

#[test]
fn same_seed_same_output_other_steps_other_transforms() {
    let batch = random_batch([8, 6, 5, 3], 2);
    for (mut layer, mut again) in every_layer().into_iter().zip(every_layer()) {
        let name = layer.class_name();
        let first = apply(layer.as_mut(), &batch, true, 5).unwrap();
        assert_eq!(first, apply(again.as_mut(), &batch, true, 5).unwrap(), "{name}");
        let other_steps: Vec<Tensor> = (6..10)
            .map(|step| apply(layer.as_mut(), &batch, true, step).unwrap())
            .collect();
        assert!(other_steps.iter().any(|output| *output != first), "{name}");
    }
    // A layer's own seed changes its draws too.
    let seeded = |seed| apply(&mut RandomRotation::new(0.2).seed(seed), &batch, true, 5).unwrap();
    assert_eq!(seeded(1), seeded(1));
    assert_ne!(seeded(1), seeded(2));
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let batch = random_batch([64, 28, 28, 3], 3);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            every_layer()
                .into_iter()
                .map(|mut layer| apply(layer.as_mut(), &batch, true, 4).unwrap())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(run(1), run(4));
}

#[test]
fn a_model_with_every_layer_trains_saves_and_loads_with_keras_configs() {
    let mut model = Sequential::new();
    model.seed(1).add(Input::new(&[6, 5, 3]));
    for layer in every_layer() {
        model.add_boxed(layer);
    }
    model.add(Flatten::new()).add(Dense::new(2).activation("softmax"));
    model
        .compile(Adam::new(0.01), "sparse_categorical_crossentropy", &[])
        .unwrap();
    let x = random_batch([32, 6, 5, 3], 5);
    let y = Tensor::from_vec(vec![32], (0..32).map(|i| (i % 2) as f32).collect()).unwrap();
    model
        .fit(&x, &y, FitOptions::default().epochs(2).batch_size(8).verbose(0))
        .unwrap();
    let config = model.config();
    let layers = config["config"]["layers"].as_array().unwrap();
    assert_eq!(layers[1]["config"]["mode"], "horizontal_and_vertical");
    assert_eq!(layers[2]["config"]["factor"], serde_json::json!([-0.1f32, 0.1f32]));
    assert_eq!(layers[2]["config"]["fill_mode"], "constant");
    assert_eq!(
        layers[3]["config"]["width_factor"],
        serde_json::json!([-0.1f32, 0.3f32])
    );
    assert_eq!(
        layers[4]["config"]["width_factor"],
        serde_json::json!([-0.3f32, 0.1f32])
    );
    assert_eq!(layers[5]["config"]["value_range"], serde_json::json!([0.0, 1.0]));
    assert_eq!(
        (
            layers[6]["config"]["height"].as_u64(),
            layers[6]["config"]["width"].as_u64()
        ),
        (Some(5), Some(4))
    );

    let path = std::env::temp_dir().join(format!("strata-preprocessing-{}.safetensors", common::run_id()));
    model.save(&path).unwrap();
    let mut loaded = strata::load_model(&path).unwrap();
    assert_eq!(loaded.config(), config);
    // At inference the layers change nothing (the crop is the same centre crop), so predictions agree.
    assert_eq!(loaded.predict(&x, 8).unwrap(), model.predict(&x, 8).unwrap());
    let _ = std::fs::remove_file(path);
}

#[test]
fn bad_arguments_name_the_layer_and_the_argument() {
    let batch = random_batch([2, 6, 5, 3], 1);
    let refused = |mut layer: Box<dyn Layer>, argument: &str| match apply(layer.as_mut(), &batch, true, 0) {
        Err(Error::InvalidArgument { name, reason, .. }) => {
            assert_eq!(name, argument);
            assert!(reason.contains(layer.class_name()), "{reason}");
        }
        other => panic!("{argument}: expected InvalidArgument, got {other:?}"),
    };
    refused(Box::new(RandomFlip::new("diagonal")), "mode");
    refused(Box::new(RandomRotation::new(1.5)), "factor");
    refused(Box::new(RandomRotation::new(0.1).fill_mode("mirror")), "fill_mode");
    refused(
        Box::new(RandomRotation::new(0.1).interpolation("nearest")),
        "interpolation",
    );
    refused(Box::new(RandomTranslation::new(0.1, f32::NAN)), "width_factor");
    refused(Box::new(RandomZoom::new((-1.0, 0.5))), "height_factor");
    refused(Box::new(RandomZoom::new(0.1).fill_value(f32::INFINITY)), "fill_value");
    refused(Box::new(RandomContrast::new(1.5)), "factor");
    refused(Box::new(RandomContrast::new(0.1).value_range(1.0, 0.0)), "value_range");
    refused(Box::new(RandomCrop::new(0, 3)), "height");

    let from_config = |class: &str, config: serde_json::Value| strata::layers::from_config(class, &config);
    assert!(
        from_config(
            "RandomRotation",
            serde_json::json!({"factor": 0.1, "data_format": "channels_first"})
        )
        .is_err()
    );
    assert!(from_config("RandomCrop", serde_json::json!({"height": 3})).is_err());
    assert!(from_config("RandomTranslation", serde_json::json!({"height_factor": 0.1})).is_err());

    // Not an image: the shape error names the layer.
    let flat = Tensor::zeros(&[2, 10]);
    match apply(&mut RandomFlip::new("horizontal").name("flip"), &flat, true, 0) {
        Err(Error::LayerShape { layer, .. }) => assert_eq!(layer, "flip"),
        other => panic!("expected LayerShape, got {other:?}"),
    }
}

#[test]
fn a_preprocessing_layer_after_a_computed_value_is_an_error() {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[4, 4, 1]))
        .add(Conv2D::new(2, 3))
        .add(RandomFlip::new("horizontal").name("late_flip"))
        .add(Flatten::new())
        .add(Dense::new(2));
    model
        .compile(Adam::new(0.01), "sparse_categorical_crossentropy", &[])
        .unwrap();
    let x = random_batch([4, 4, 4, 1], 1);
    let y = Tensor::zeros(&[4]);
    match model.fit(&x, &y, FitOptions::default().verbose(0)) {
        Err(Error::Usage(message)) => assert!(
            message.contains("late_flip") && message.contains("gradient"),
            "{message}"
        ),
        other => panic!("expected a usage error, got {other:?}"),
    }
}

#[test]
fn image_augmentation_builds_its_layers_and_inserts_them_after_the_input() {
    let augmentation = ImageAugmentation::new()
        .rotation_range(36.0)
        .width_shift_range(0.1)
        .zoom_range(0.2)
        .horizontal_flip(true)
        .fill_mode("Constant");
    let layers = augmentation.layers().unwrap();
    let classes: Vec<&str> = layers.iter().map(|l| l.class_name()).collect();
    assert_eq!(
        classes,
        ["RandomFlip", "RandomZoom", "RandomRotation", "RandomTranslation"]
    );
    let configs: Vec<serde_json::Value> = layers.iter().map(|l| l.config()).collect();
    assert_eq!(configs[2]["factor"], serde_json::json!([-0.1f32, 0.1f32]));
    assert_eq!(configs[2]["fill_mode"], "constant");
    assert_eq!(configs[1]["width_factor"], serde_json::json!([-0.2f32, 0.2f32]));
    assert_eq!(configs[3]["height_factor"], serde_json::json!([0.0, 0.0]));
    assert!(ImageAugmentation::new().layers().unwrap().is_empty());
    assert!(ImageAugmentation::new().zoom_range(2.0).layers().is_err());

    // Into a stack whose first layer declares the input shape: an Input takes it over.
    let mut model = Sequential::new();
    model.add(Flatten::new().input_shape(&[28, 28])).add(Dense::new(10));
    let model = with_preprocessing(model, layers).unwrap();
    let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
    assert_eq!(
        classes,
        [
            "InputLayer",
            "RandomFlip",
            "RandomZoom",
            "RandomRotation",
            "RandomTranslation",
            "Flatten",
            "Dense"
        ]
    );
    // A functional model: the layers go between its input and the layers that read it, residual
    // branches included.
    let input = Input::node(&[28, 28, 1]);
    let flat = Flatten::new().call(&input).unwrap();
    let dense = Dense::new(784).call(&flat).unwrap();
    let sum = Add::new().call_many(&[&flat, &dense]).unwrap();
    let functional = Model::functional(&input, &sum).unwrap();
    let flip: Box<dyn Layer> = Box::new(RandomFlip::new("horizontal"));
    let mut model = with_preprocessing(functional, vec![flip]).unwrap();
    let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
    assert_eq!(classes, ["InputLayer", "RandomFlip", "Flatten", "Dense", "Add"]);
    model.compile("sgd", "mse", &[]).unwrap();
    let image = Tensor::from_vec(vec![1, 28, 28, 1], (0..784).map(|v| v as f32).collect()).unwrap();
    // At inference the flip is the identity, so the output is the input's sum with its Dense.
    let out = model.predict(&image, 1).unwrap();
    assert_eq!(out.shape(), &[1, 784]);
    // Two inputs: which ones to preprocess is the user's choice, so it is an error.
    let (a, b) = (Input::node(&[4]), Input::node(&[4]));
    let both = Add::new().call_many(&[&a, &b]).unwrap();
    let two = Model::functional_multi(&[&a, &b], &[&both]).unwrap();
    let flip: Box<dyn Layer> = Box::new(RandomFlip::new("horizontal"));
    assert!(matches!(with_preprocessing(two, vec![flip]), Err(Error::Usage(_))));
}
