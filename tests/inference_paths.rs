//! `predict`'s inference fast paths: BatchNormalization folded into the convolution before it
//! (and a ReLU fused into it) gives the plain path's outputs within 1e-5; the cached Winograd
//! kernels and folded weights follow every change of the weights; the kernels that split a
//! single image over threads give the same bits on one and two threads; a ReLU fused into
//! the convolution it reads (no normalization between them) changes no bit; and residual
//! connections (`Add`, then a ReLU or not) fused into the convolution on one side give the
//! plain outputs on every convolution path.

use strata::Tensor;
use strata::prelude::*;
use strata::rng::Rng;

fn random(shape: &[usize], seed: u64, low: f32, high: f32) -> Tensor {
    let mut rng = Rng::new(seed);
    let n = shape.iter().product();
    Tensor::from_vec(shape.to_vec(), (0..n).map(|_| rng.uniform(low, high)).collect()).unwrap()
}

/// Every kind of convolution `predict` fuses or splits: Winograd (3×3, stride 1, channels a
/// multiple of 8, on a map large enough for several blocks per image), a 1×1 convolution, an
/// im2col one (stride 2), a depthwise one, each followed by BatchNormalization and a ReLU,
/// ReLU6 or nothing; the last Winograd one has 256 filters on a 6×6 map, so one image's
/// products are split over groups of filters.
fn network(seed: u64) -> Model {
    let mut model = Sequential::new();
    model.seed(seed);
    model
        .add(Input::new(&[26, 26, 16]))
        .add(Conv2D::new(32, 3).padding("same"))
        .add(BatchNormalization::new())
        .add(ReLU::new())
        .add(Conv2D::new(16, 1).use_bias(false))
        .add(BatchNormalization::new())
        .add(Activation::new("relu"))
        .add(Conv2D::new(32, 3).strides(2))
        .add(BatchNormalization::new())
        .add(ReLU::new().max_value(6.0))
        .add(DepthwiseConv2D::new(3).padding("same"))
        .add(BatchNormalization::new())
        .add(Conv2D::new(256, 3).padding("same").strides(2))
        .add(Conv2D::new(256, 3).padding("same"))
        .add(BatchNormalization::new())
        .add(GlobalAveragePooling2D::new())
        .add(Dense::new(5));
    model.build(&[26, 26, 16]).unwrap();
    randomize_normalizations(&mut model, seed);
    model
}

/// Normalizations and biases that do something: statistics and affine weights away from 0 and
/// 1, biases away from 0.
fn randomize_normalizations(model: &mut Model, seed: u64) {
    let ids: Vec<_> = model.params().ids().collect();
    for (k, id) in ids.into_iter().enumerate() {
        let name = model.params().name(id).to_string();
        let shape = model.params().value(id).shape().to_vec();
        let (low, high) = match name.rsplit('/').next().unwrap_or("") {
            "moving_variance" | "gamma" => (0.5, 1.5),
            "moving_mean" | "beta" | "bias" => (-0.5, 0.5),
            _ => continue,
        };
        *model.params_mut().value_mut(id) = random(&shape, seed * 100 + k as u64, low, high);
    }
}

fn images(batch: usize, seed: u64) -> Tensor {
    random(&[batch, 26, 26, 16], seed, -1.0, 1.0)
}

fn assert_close(fused: &Tensor, plain: &Tensor, what: &str) {
    assert_eq!(fused.shape(), plain.shape(), "{what}");
    for (i, (a, b)) in fused.data().iter().zip(plain.data()).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
            "{what}: output {i}: fused {a}, plain {b}"
        );
    }
}

#[test]
fn folded_normalization_gives_the_plain_outputs() {
    let mut model = network(1);
    let x = images(3, 2);
    let fused = model.predict(&x, 2).unwrap();
    model.set_inference_fusion(false);
    let plain = model.predict(&x, 2).unwrap();
    assert_close(&fused, &plain, "batch of 3 in batches of 2");
    model.set_inference_fusion(true);
    // Again: now from the cached folded weights and transformed kernels.
    assert_eq!(model.predict(&x, 2).unwrap().data(), fused.data());
}

/// A fresh copy of `model`'s weights in a new model: nothing cached.
fn fresh_copy(model: &Model) -> Model {
    let mut copy = network(9);
    let weights = model.weights();
    let ids: Vec<_> = copy.params().ids().collect();
    for id in ids {
        let name = copy.params().name(id).to_string();
        *copy.params_mut().value_mut(id) = weights[&name].clone();
    }
    copy
}

#[test]
fn cached_kernels_follow_every_change_of_the_weights() {
    let mut model = network(3);
    let x = images(2, 4);
    let before = model.predict(&x, 2).unwrap();
    // Change one convolution's kernel and one normalization's statistics in place.
    let ids: Vec<_> = model.params().ids().collect();
    for id in ids {
        let name = model.params().name(id).to_string();
        if name.ends_with("kernel") || name.ends_with("moving_mean") {
            let value = model.params_mut().value_mut(id);
            value.data_mut().iter_mut().for_each(|v| *v = *v * 1.5 + 0.01);
        }
    }
    let after = model.predict(&x, 2).unwrap();
    assert_ne!(before.data(), after.data());
    assert_eq!(after.data(), fresh_copy(&model).predict(&x, 2).unwrap().data());
    // An optimizer step changes the weights too.
    model.compile(Sgd::new(0.5), "mse", &[]).unwrap();
    let options = FitOptions::default().epochs(1).batch_size(2).verbose(0);
    model.fit(&x, &random(&[2, 5], 5, -1.0, 1.0), options).unwrap();
    let trained = model.predict(&x, 2).unwrap();
    assert_ne!(trained.data(), after.data());
    assert_eq!(trained.data(), fresh_copy(&model).predict(&x, 2).unwrap().data());
}

fn on_threads<T: Send>(threads: usize, work: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(work)
}

#[test]
fn one_and_two_threads_give_the_same_bits() {
    let x = images(3, 6);
    for fused in [true, false] {
        let run = |threads| {
            on_threads(threads, || {
                let mut model = network(7);
                model.set_inference_fusion(fused);
                let single = model.predict(&x, 1).unwrap();
                let batch = model.predict(&x, 3).unwrap();
                (single, batch)
            })
        };
        let (one, two) = (run(1), run(2));
        assert_eq!(one.0.data(), two.0.data(), "batch 1, fused {fused}");
        assert_eq!(one.1.data(), two.1.data(), "batch 3, fused {fused}");
    }
}

/// The direct convolution of one image (three channels) cuts its output rows over the threads;
/// Winograd convolutions of one small image (the MNIST cnn's second layer: 9 tiles of 4×4 on
/// an 11×11 map; a 15×15 map: 16 tiles), too small for bands of tile rows, cut their tiles
/// evenly over the threads, a single tile (3×3 map) its filters, and max pooling its rows:
/// the same bits on one and two threads, fused or not, at batch 1 and batch 3.
#[test]
fn a_small_image_split_over_threads_keeps_its_bits() {
    let small_maps = || {
        let mut model = Sequential::new();
        model.seed(3);
        model
            .add(Input::new(&[15, 15, 3]))
            .add(Conv2D::new(32, 3).activation("relu"))
            .add(Conv2D::new(64, 3).activation("relu"))
            .add(ZeroPadding2D::new(2))
            .add(Conv2D::new(32, 3).padding("same"))
            .add(MaxPooling2D::new(3))
            .add(Conv2D::new(64, 3))
            .add(Flatten::new())
            .add(Dense::new(3));
        model.build(&[15, 15, 3]).unwrap();
        model
    };
    let x = random(&[3, 15, 15, 3], 8, -1.0, 1.0);
    for fused in [true, false] {
        let run = |threads| {
            on_threads(threads, || {
                let mut model = small_maps();
                model.set_inference_fusion(fused);
                (model.predict(&x, 1).unwrap(), model.predict(&x, 3).unwrap())
            })
        };
        let (one, two) = (run(1), run(2));
        assert_eq!(one.0.data(), two.0.data(), "batch 1, fused {fused}");
        assert_eq!(one.1.data(), two.1.data(), "batch 3, fused {fused}");
    }
}

/// Convolutions read directly by a ReLU, without a normalization between them (an imported
/// ONNX graph, whose exporter folded the normalization into the convolution's bias): the ReLU
/// is fused into the convolution, which changes no bit (`max(·, 0)` is exact); a ReLU6 and a
/// convolution read twice stay as they are.
#[test]
fn relu_after_a_convolution_fuses_without_normalization() {
    let input = Input::node(&[26, 26, 16]);
    let x = Conv2D::new(32, 3).padding("same").call(&input).unwrap();
    let x = ReLU::new().call(&x).unwrap();
    let x = Conv2D::new(16, 1).call(&x).unwrap();
    let x = Activation::new("relu").call(&x).unwrap();
    let x = Conv2D::new(16, 3).strides(2).call(&x).unwrap();
    let x = ReLU::new().max_value(6.0).call(&x).unwrap();
    let y = Conv2D::new(16, 3).padding("same").call(&x).unwrap();
    let relu = ReLU::new().call(&y).unwrap();
    let x = Add::new().call_many(&[&relu, &y]).unwrap();
    let x = GlobalAveragePooling2D::new().call(&x).unwrap();
    let output = Dense::new(5).call(&x).unwrap();
    let mut model = Model::functional(&input, &output).unwrap();
    let ids: Vec<_> = model.params().ids().collect();
    for (k, id) in ids.into_iter().enumerate() {
        if model.params().name(id).ends_with("bias") {
            let shape = model.params().value(id).shape().to_vec();
            *model.params_mut().value_mut(id) = random(&shape, 40 + k as u64, -0.5, 0.5);
        }
    }
    let x = images(3, 12);
    for batch in [1, 3] {
        let fused = model.predict(&x, batch).unwrap();
        model.set_inference_fusion(false);
        let plain = model.predict(&x, batch).unwrap();
        model.set_inference_fusion(true);
        assert_eq!(fused.data(), plain.data(), "batches of {batch}");
    }
}

/// Residual blocks of every shape `predict` fuses the `Add` (and the ReLU after it) of: an
/// identity shortcut around a Winograd convolution with no normalization (an imported ONNX
/// graph); Keras's ResNet block (a strided 1×1 shortcut convolution and normalization called
/// before the main branch, whose last 1×1 convolution and normalization join it); torchvision's
/// order (the shortcut convolution called after the main branch's last one, here a direct-kernel
/// convolution, so the fused one runs later than its own place); and MobileNetV2's join without
/// a ReLU. The fused outputs equal the plain ones within 1e-5 (bit for bit where nothing is
/// folded), and do not depend on the thread count.
fn residual_network(seed: u64) -> Model {
    let input = Input::node(&[26, 26, 16]);
    let a = Conv2D::new(16, 3).padding("same").call(&input).unwrap();
    let a = Add::new().call_many(&[&input, &a]).unwrap();
    let a = ReLU::new().call(&a).unwrap();
    let shortcut = Conv2D::new(32, 1).strides(2).call(&a).unwrap();
    let shortcut = BatchNormalization::new().call(&shortcut).unwrap();
    let m = Conv2D::new(16, 1).strides(2).call(&a).unwrap();
    let m = BatchNormalization::new().call(&m).unwrap();
    let m = ReLU::new().call(&m).unwrap();
    let m = Conv2D::new(16, 3).padding("same").call(&m).unwrap();
    let m = BatchNormalization::new().call(&m).unwrap();
    let m = ReLU::new().call(&m).unwrap();
    let m = Conv2D::new(32, 1).use_bias(false).call(&m).unwrap();
    let m = BatchNormalization::new().call(&m).unwrap();
    let b = Add::new().call_many(&[&shortcut, &m]).unwrap();
    let b = Activation::new("relu").call(&b).unwrap();
    let narrow = Conv2D::new(8, 1).call(&b).unwrap();
    let narrow = ReLU::new().call(&narrow).unwrap();
    let main = Conv2D::new(16, 1).call(&narrow).unwrap();
    let shortcut = Conv2D::new(16, 1).call(&b).unwrap();
    let c = Add::new().call_many(&[&main, &shortcut]).unwrap();
    let c = ReLU::new().call(&c).unwrap();
    let d = Conv2D::new(16, 3).padding("same").call(&c).unwrap();
    let d = BatchNormalization::new().call(&d).unwrap();
    let d = Add::new().call_many(&[&c, &d]).unwrap();
    let x = GlobalAveragePooling2D::new().call(&d).unwrap();
    let output = Dense::new(5).call(&x).unwrap();
    let mut model = Model::functional(&input, &output).unwrap();
    randomize_normalizations(&mut model, seed);
    model
}

#[test]
fn residual_adds_fuse_into_the_convolution_before_them() {
    let x = images(3, 14);
    let run = |threads| {
        on_threads(threads, || {
            let mut model = residual_network(15);
            let fused = (model.predict(&x, 1).unwrap(), model.predict(&x, 3).unwrap());
            model.set_inference_fusion(false);
            let plain = (model.predict(&x, 1).unwrap(), model.predict(&x, 3).unwrap());
            (fused, plain)
        })
    };
    let (one, two) = (run(1), run(2));
    assert_close(&one.0.0, &one.1.0, "batch 1");
    assert_close(&one.0.1, &one.1.1, "batch 3");
    assert_eq!(one.0.0.data(), two.0.0.data(), "batch 1 on one and two threads");
    assert_eq!(one.0.1.data(), two.0.1.data(), "batch 3 on one and two threads");
}

/// The `cnn`'s layout: a ReLU `Conv2D` read only by a `MaxPooling2D` runs with the pooling
/// folded into the direct kernel (the first layer) or into Winograd's output transform (the
/// second); a ReLU convolution read twice keeps its output. Fused or not, one thread or two,
/// batch 1 or 3: the same bits.
#[test]
fn a_max_pooling_folds_into_the_relu_convolution_before_it() {
    let cnn = || {
        let input = Input::node(&[28, 28, 1]);
        let x = Conv2D::new(32, 3).activation("relu").call(&input).unwrap();
        let x = MaxPooling2D::new(2).call(&x).unwrap();
        let x = Conv2D::new(16, 3).activation("relu").call(&x).unwrap();
        let x = MaxPooling2D::new(2).call(&x).unwrap();
        let twice = Conv2D::new(8, (1, 1)).activation("relu").call(&x).unwrap();
        let pooled = MaxPooling2D::new(2).call(&twice).unwrap();
        let x = Flatten::new().call(&pooled).unwrap();
        let mean = GlobalAveragePooling2D::new().call(&twice).unwrap();
        let x = Concatenate::new(-1).call_many(&[&x, &mean]).unwrap();
        let output = Dense::new(10).call(&x).unwrap();
        Model::functional(&input, &output).unwrap()
    };
    let x = random(&[3, 28, 28, 1], 21, 0.0, 1.0);
    let run = |threads, fused| {
        on_threads(threads, || {
            let mut model = cnn();
            model.set_inference_fusion(fused);
            (model.predict(&x, 1).unwrap(), model.predict(&x, 3).unwrap())
        })
    };
    let reference = run(2, false);
    for (threads, fused) in [(1, true), (2, true), (1, false)] {
        let (one, three) = run(threads, fused);
        assert_eq!(
            one.data(),
            reference.0.data(),
            "batch 1, {threads} threads, fused {fused}"
        );
        assert_eq!(
            three.data(),
            reference.1.data(),
            "batch 3, {threads} threads, fused {fused}"
        );
    }
}

/// From its second batch of a shape on, `predict` hands the buffers of values nothing reads
/// any more on to the values it computes next (`autograd/recycle.rs`): batches recorded,
/// batches recycled and batches of another size in between give the bits of a fresh model
/// predicting each batch alone, on the residual network (values read again far ahead) and the
/// fused convolutions.
#[test]
fn buffers_handed_on_between_values_change_no_bit() {
    let x = images(7, 16);
    for (name, build) in [
        ("residual", residual_network as fn(u64) -> Model),
        ("convolutions", network),
    ] {
        let mut model = build(17);
        for batch_size in [1, 3, 1, 2, 2] {
            let all = model.predict(&x, batch_size).unwrap();
            for start in (0..7).step_by(batch_size) {
                let end = (start + batch_size).min(7);
                let alone = build(17).predict(&x.slice_rows(start, end), batch_size).unwrap();
                assert_eq!(
                    all.slice_rows(start, end).data(),
                    alone.data(),
                    "{name}: samples {start}..{end} in batches of {batch_size}"
                );
            }
        }
    }
}

/// `evaluate` hands buffers on as `predict` does (its passes under keys of their own): the
/// scores of batches recorded, recycled, of another size in between, and after a `predict` and
/// a training step on the same tape, equal a fresh model's, bit for bit.
#[test]
fn evaluation_passes_handing_buffers_on_change_no_score() {
    let x = images(7, 16);
    let y = random(&[7, 5], 18, -1.0, 1.0);
    let compiled = |build: fn(u64) -> Model| {
        let mut model = build(17);
        model.compile(Sgd::new(0.01), "mse", &["mae"]).unwrap();
        model
    };
    for (name, build) in [
        ("residual", residual_network as fn(u64) -> Model),
        ("convolutions", network),
    ] {
        let mut model = compiled(build);
        for batch_size in [1, 3, 1, 2, 2] {
            let scores = model.evaluate(&x, &y, batch_size).unwrap();
            let alone = compiled(build).evaluate(&x, &y, batch_size).unwrap();
            assert_eq!(scores, alone, "{name}: batches of {batch_size}");
            model.predict(&x, batch_size).unwrap();
        }
        let options = FitOptions::default().epochs(1).batch_size(3).verbose(0);
        model.fit(&x, &y, options).unwrap();
        let trained = model.evaluate(&x, &y, 2).unwrap();
        let mut fresh = compiled(build);
        let weights = model.weights();
        let ids: Vec<_> = fresh.params().ids().collect();
        for id in ids {
            let name = fresh.params().name(id).to_string();
            *fresh.params_mut().value_mut(id) = weights[&name].clone();
        }
        assert_eq!(
            trained,
            fresh.evaluate(&x, &y, 2).unwrap(),
            "{name}: after a training step"
        );
    }
}

/// A MobileNet block on a 64×64 image: its expansion writes 1 MiB per image, everything after
/// the strided depthwise layer at most 256 KiB.
fn split_network(seed: u64) -> Model {
    let mut model = Sequential::new();
    model.seed(seed);
    model
        .add(Input::new(&[64, 64, 3]))
        .add(Conv2D::new(64, 1).use_bias(false))
        .add(BatchNormalization::new())
        .add(ReLU::new().max_value(6.0))
        .add(DepthwiseConv2D::new(3).strides(2).padding("same"))
        .add(BatchNormalization::new())
        .add(ReLU::new())
        .add(Conv2D::new(16, 1))
        .add(GlobalAveragePooling2D::new())
        .add(Dense::new(5));
    model.build(&[64, 64, 3]).unwrap();
    model
}

/// `predict` runs a batch's large early layers image by image and the rest on the whole batch
/// (`model/predict_split.rs`) where the early layers do little arithmetic per value: the
/// outputs are those of the batch run whole within rounding, the same bits on one and two
/// threads; a network whose early layers are 3×3 convolutions over 64 channels (1,152
/// operations per value) runs its batches whole.
#[test]
fn early_layers_image_by_image_give_the_batch_outputs() {
    let x = random(&[5, 64, 64, 3], 18, -1.0, 1.0);
    let run = |threads| {
        on_threads(threads, || {
            let mut model = split_network(19);
            let split = model.predict(&x, 5).unwrap();
            assert!(model.inference_split().is_some(), "the MobileNet block splits");
            let alone = model.predict(&x, 1).unwrap();
            model.set_inference_fusion(false);
            let plain = model.predict(&x, 5).unwrap();
            (split, alone, plain)
        })
    };
    let ((split, alone, plain), (split_two, _, _)) = (run(1), run(2));
    assert_close(&split, &alone, "split batch against images one by one");
    assert_close(&split, &plain, "split batch against the layers one by one");
    assert_eq!(split.data(), split_two.data(), "one and two threads");

    let mut heavy = Sequential::new();
    heavy
        .add(Input::new(&[64, 64, 64]))
        .add(Conv2D::new(64, 3).padding("same").activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(GlobalAveragePooling2D::new())
        .add(Dense::new(3));
    heavy.build(&[64, 64, 64]).unwrap();
    heavy.predict(&random(&[2, 64, 64, 64], 20, -1.0, 1.0), 2).unwrap();
    assert_eq!(heavy.inference_split(), None, "arithmetic-bound early layers");
}

/// A `ZeroPadding2D` read only by a `MaxPooling2D` (ResNet's stem) is folded into the pooling:
/// on inputs below zero the padding's zeros win at the edges, and the fused pooling must count
/// them (not skip them, as "same" pooling does). Uneven sides, strides, a "same" pooling after
/// the padding, and channel counts on the vector (16) and plain (5) paths; the same bits.
#[test]
fn a_zero_padding_folds_into_the_max_pooling_after_it() {
    for channels in [16, 5] {
        let input = Input::node(&[11, 12, channels]);
        let x = ZeroPadding2D::new(((1, 2), (2, 1))).call(&input).unwrap();
        let x = MaxPooling2D::new(3).strides(2).call(&x).unwrap();
        let x = ZeroPadding2D::new(1).call(&x).unwrap();
        let x = MaxPooling2D::new(2).padding("same").call(&x).unwrap();
        let output = Flatten::new().call(&x).unwrap();
        let mut model = Model::functional(&input, &output).unwrap();
        let x = random(&[3, 11, 12, channels], 7, -1.0, 0.5);
        for batch in [1, 3] {
            let fused = model.predict(&x, batch).unwrap();
            model.set_inference_fusion(false);
            let plain = model.predict(&x, batch).unwrap();
            model.set_inference_fusion(true);
            assert_eq!(fused.data(), plain.data(), "{channels} channels, batches of {batch}");
            assert!(plain.data().contains(&0.0), "the padding's zeros never won");
        }
    }
}

/// A ReLU6 after a convolution (`ReLU(max_value=6)`, directly or after a BatchNormalization)
/// is fused into the convolution's output on every path: the direct kernel (3 channels), the
/// Winograd one (3×3, stride 1), the packed product (stride 2, 32 filters) and gemm (10
/// filters). Inputs large enough that the cap is reached; the fused outputs equal the plain
/// ones within 1e-5.
#[test]
fn a_relu6_after_a_convolution_fuses_into_it() {
    let input = Input::node(&[20, 20, 3]);
    let x = Conv2D::new(16, 3).strides(2).padding("same").call(&input).unwrap();
    let x = ReLU::new().max_value(6.0).call(&x).unwrap();
    let x = Conv2D::new(16, 3).padding("same").call(&x).unwrap();
    let x = BatchNormalization::new().call(&x).unwrap();
    let x = ReLU::new().max_value(6.0).call(&x).unwrap();
    let x = Conv2D::new(32, 3).strides(2).call(&x).unwrap();
    let x = ReLU::new().max_value(6.0).call(&x).unwrap();
    let x = Conv2D::new(10, 2).call(&x).unwrap();
    let x = ReLU::new().max_value(6.0).call(&x).unwrap();
    let output = Flatten::new().call(&x).unwrap();
    let mut model = Model::functional(&input, &output).unwrap();
    // Biases from −8 to 8: some outputs of every layer above the cap, some below zero.
    let ids: Vec<_> = model.params().ids().collect();
    for (k, id) in ids.into_iter().enumerate() {
        if model.params().name(id).ends_with("bias") || model.params().name(id).ends_with("beta") {
            let shape = model.params().value(id).shape().to_vec();
            *model.params_mut().value_mut(id) = random(&shape, 60 + k as u64, -8.0, 8.0);
        }
    }
    let x = random(&[3, 20, 20, 3], 21, -30.0, 30.0);
    for batch in [1, 3] {
        let fused = model.predict(&x, batch).unwrap();
        model.set_inference_fusion(false);
        let plain = model.predict(&x, batch).unwrap();
        model.set_inference_fusion(true);
        assert_close(&fused, &plain, &format!("batches of {batch}"));
        assert!(plain.data().contains(&6.0), "the cap was never reached");
        assert!(
            plain.data().iter().any(|&v| v > 0.0 && v < 6.0),
            "every output at a bound"
        );
    }
}

/// MobileNetV2's inverted residual blocks as Keras builds them (1×1 expansion without bias,
/// BatchNormalization, ReLU6; a zero padding and a stride-2 depthwise convolution, or a "same"
/// one; a 1×1 projection with BatchNormalization, then the residual `Add`) and as an ONNX
/// import gives them (biases, no normalization, a ReLU after the `Add`), plus one without
/// expansion (MobileNetV2's first) and one whose widths the one-pass kernel does not take.
fn inverted_residual_network(seed: u64) -> Model {
    let input = Input::node(&[13, 12, 16]);
    let relu6 = || ReLU::new().max_value(6.0);
    // First block: no expansion, a "same" depthwise convolution, the projection's ReLU6.
    let mut x = DepthwiseConv2D::new(3).padding("same").call(&input).unwrap();
    x = relu6().call(&x).unwrap();
    x = Conv2D::new(16, 1).call(&x).unwrap();
    x = relu6().call(&x).unwrap();
    // Keras: expansion, depthwise, normalized projection, residual.
    let mut y = Conv2D::new(96, 1).use_bias(false).call(&x).unwrap();
    y = BatchNormalization::new().call(&y).unwrap();
    y = relu6().call(&y).unwrap();
    y = DepthwiseConv2D::new(3)
        .padding("same")
        .use_bias(false)
        .call(&y)
        .unwrap();
    y = BatchNormalization::new().call(&y).unwrap();
    y = relu6().call(&y).unwrap();
    y = Conv2D::new(16, 1).use_bias(false).call(&y).unwrap();
    y = BatchNormalization::new().call(&y).unwrap();
    x = Add::new().call_many(&[&x, &y]).unwrap();
    // Keras: a stride-2 block after an explicit padding, 24 filters out.
    x = Conv2D::new(96, 1).use_bias(false).call(&x).unwrap();
    x = BatchNormalization::new().call(&x).unwrap();
    x = relu6().call(&x).unwrap();
    x = ZeroPadding2D::new(((0, 1), (0, 1))).call(&x).unwrap();
    x = DepthwiseConv2D::new(3).strides(2).use_bias(false).call(&x).unwrap();
    x = BatchNormalization::new().call(&x).unwrap();
    x = relu6().call(&x).unwrap();
    x = Conv2D::new(24, 1).use_bias(false).call(&x).unwrap();
    x = BatchNormalization::new().call(&x).unwrap();
    // ONNX: biases in place of normalizations, a ReLU after the residual `Add`.
    let mut y = Conv2D::new(144, 1).call(&x).unwrap();
    y = relu6().call(&y).unwrap();
    y = DepthwiseConv2D::new(3).padding("same").call(&y).unwrap();
    y = relu6().call(&y).unwrap();
    y = Conv2D::new(24, 1).call(&y).unwrap();
    x = Add::new().call_many(&[&y, &x]).unwrap();
    x = ReLU::new().call(&x).unwrap();
    // An expansion to 36 channels, not whole vectors: run layer by layer, the residual still
    // added in the projection's output pass.
    let mut y = Conv2D::new(36, 1).call(&x).unwrap();
    y = relu6().call(&y).unwrap();
    y = DepthwiseConv2D::new(3).padding("same").call(&y).unwrap();
    y = relu6().call(&y).unwrap();
    y = Conv2D::new(24, 1).call(&y).unwrap();
    x = Add::new().call_many(&[&x, &y]).unwrap();
    x = ReLU::new().call(&x).unwrap();
    let x = GlobalAveragePooling2D::new().call(&x).unwrap();
    let output = Dense::new(5).call(&x).unwrap();
    let mut model = Model::functional(&input, &output).unwrap();
    model.seed(seed);
    randomize_normalizations(&mut model, seed);
    model
}

/// The blocks run as one pass each give the layers' outputs within rounding, at batch 1 and
/// 3, and the same bits on one and two threads.
#[test]
fn inverted_residual_blocks_give_the_layers_outputs() {
    let x = random(&[3, 13, 12, 16], 21, -3.0, 3.0);
    let run = |threads: usize, fused: bool| {
        on_threads(threads, || {
            let mut model = inverted_residual_network(22);
            model.set_inference_fusion(fused);
            let outputs = (model.predict(&x, 1).unwrap(), model.predict(&x, 3).unwrap());
            (outputs, model.inference_blocks())
        })
    };
    let ((single, batch), blocks) = run(2, true);
    assert_eq!(blocks, 5, "blocks planned as one step");
    let ((plain_single, plain_batch), _) = run(2, false);
    assert_close(&single, &plain_single, "batch 1");
    assert_close(&batch, &plain_batch, "batch 3");
    let ((one_single, one_batch), _) = run(1, true);
    assert_eq!(one_single.data(), single.data(), "batch 1 on one thread");
    assert_eq!(one_batch.data(), batch.data(), "batch 3 on one thread");
}
