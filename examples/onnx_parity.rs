//! Writes ONNX files and strata's predictions for `tools/check_onnx_export.py`, which runs the
//! files with ONNX Runtime and compares: `cargo run --release --example onnx_parity -- DIR`.
//!
//! For each named model (`mlp`, `mlp2`, `cnn`, `resnet`, `rnn_mnist`, `char_rnn`, `imdb_lstm`,
//! `char_transformer`, `imdb_transformer`), `layers` (a functional model using the first
//! release's layer kinds), `activations` (every exportable activation), `convolutions`,
//! `recurrent` and `sequence` (the other layer kinds and their settings), `masked` (sequence
//! masks: token id 0 is one step in six, anywhere in the sequence), with random weights
//! (BatchNormalization's statistics too, so its inference form is not the identity):
//! `DIR/NAME.onnx` and `DIR/NAME.json` holding the input's shape and values and strata's
//! output. Models that start with an `Embedding` get token ids below its vocabulary size.
//!
//! Quantized: `mlp_int8` and `cnn_int8` (`quantize("int8")`, activations per row: exported
//! weights-only; as written, compared with the f32 model holding the dequantized weights within
//! 1e-5, and fused by ONNX Runtime with strata's int8 output, `int8_output`), `mlp_int8_static`
//! and `cnn_int8_static` (calibrated: QDQ weights and activations, compared with strata's int8
//! output both ways). Their records carry their own `tolerance` and `optimized_tolerance`,
//! justified at the constants below.

use strata::Result;
use strata::io::config::load_model_spec;
use strata::layers::{
    AdditiveAttention, CenterCrop, Cropping1D, Masking, MergeMode, Permute, RMSNormalization, RandomContrast,
    RandomCrop, RandomFlip, Resizing,
};
use strata::model::QuantizeOptions;
use strata::prelude::*;
use strata::rng::Rng;

/// The vocabulary `char_rnn` and `char_transformer` get when trained on Hamlet (the bundled
/// text): its 65 characters and the padding id 0.
const HAMLET_VOCABULARY: usize = 66;

fn main() -> Result<()> {
    let folder = std::env::args().nth(1).unwrap_or_else(|| "onnx-parity".into());
    std::fs::create_dir_all(&folder).map_err(|e| strata::Error::file(&folder, e.to_string()))?;
    let names = [
        "mlp",
        "mlp2",
        "cnn",
        "resnet",
        "rnn_mnist",
        "char_rnn",
        "imdb_lstm",
        "char_transformer",
        "imdb_transformer",
        "layers",
        "activations",
        "convolutions",
        "recurrent",
        "sequence",
        "more_layers",
        "masked",
        "mlp_int8",
        "mlp_int8_static",
        "cnn_int8",
        "cnn_int8_static",
    ];
    for name in names {
        // `NAME_int8`: the named model quantized per row (Keras's), `NAME_int8_static` calibrated.
        let (base, quantization) = match name.split_once("_int8") {
            Some((base, "_static")) => (base, Some(Quantization::Calibrated)),
            Some((base, _)) => (base, Some(Quantization::PerRow)),
            None => (name, None),
        };
        let mut model = build(base)?;
        let input_shape = input_shape(&model);
        let mut rng = Rng::new(2);
        let mut shape = vec![3];
        shape.extend(&input_shape);
        let count: usize = shape.iter().product();
        let vocabulary = vocabulary(&model);
        let values = (0..count).map(|_| match vocabulary {
            Some(size) => (rng.uniform(0.0, 1.0) * size as f32).floor().min(size as f32 - 1.0),
            None => rng.uniform(0.0, 1.0),
        });
        let mut values: Vec<f32> = values.collect();
        if name == "masked" {
            // Padding before the first sample's steps and after the second's, as
            // `pad_sequences` writes it: the first step a recurrent layer takes is masked.
            values[0] = 0.0;
            values[2 * input_shape[0] - 1] = 0.0;
        }
        let x = Tensor::from_vec(shape.clone(), values)?;
        let mut record = serde_json::json!({"input_shape": shape, "input": x.data()});
        let y = match quantization {
            None => model.predict(&x, 32)?,
            Some(quantization) => quantize(&mut model, base, quantization, &x, &mut record)?,
        };
        record["output_shape"] = serde_json::json!(y.shape());
        record["output"] = serde_json::json!(y.data());
        model.save_onnx(format!("{folder}/{name}.onnx"))?;
        strata::io::write_atomic(format!("{folder}/{name}.json"), record.to_string().as_bytes())?;
        println!("{name}: {folder}/{name}.onnx");
    }
    Ok(())
}

/// A named model or one of the functional models below, built, with random weights.
fn build(name: &str) -> Result<Model> {
    let mut model = match name {
        "layers" => every_layer()?,
        "activations" => every_activation()?,
        "convolutions" => convolutions()?,
        "recurrent" => recurrent()?,
        "sequence" => sequence()?,
        "more_layers" => more_layers()?,
        "masked" => masked()?,
        // The character models leave their vocabulary to the text they train on (`"auto"`):
        // Hamlet's, 65 characters and the padding id, so ids and outputs are not a toy 2.
        _ => load_model_spec(name)?.with_vocabulary(HAMLET_VOCABULARY)?.model,
    };
    model.build(&input_shape(&model))?;
    randomize(&mut model, 1);
    Ok(model)
}

/// The per-sample input shape the model's first layer declares.
fn input_shape(model: &Model) -> Vec<usize> {
    model.layers()[0]
        .declared_input_shape()
        .map(<[usize]>::to_vec)
        .unwrap_or_default()
}

/// How a `*_int8` file's model is quantized.
#[derive(Clone, Copy)]
enum Quantization {
    /// `quantize("int8")`: each row's activations scaled on the fly. ONNX has no such
    /// operator, so the file is weights-only QDQ.
    PerRow,
    /// Calibrated on a sample (the checked input and 61 more random rows): fixed input scales,
    /// written as `QuantizeLinear` → `DequantizeLinear`.
    Calibrated,
}

/// ONNX Runtime's default optimizations rewrite parts of a QDQ graph (1.32: Q/DQ pairs moved
/// around pooling and transposes in calibrated files, a weights-only Dense made its 8-bit
/// `MatMulNBits`, which quantizes activations its own way), which round differently; with
/// optimizations off it runs the graph as written. The checker runs both: the graph as written against `tolerance`, the fused one
/// against strata's int8 `predict` within these.
///
/// Calibrated files, against strata's int8 `predict` (outputs are softmax probabilities). The
/// int8 values agree except where a scaled value lies within a float rounding of a half step
/// (ONNX divides by `1 / scale` where strata multiplies by `scale`; fused kernels requantize in
/// their own order): there one input of a layer moves by one step, `max|x| / 127`. In the last
/// Dense (weights up to `2 / √fan_in` ≈ 0.25, inputs up to ~5) that moves a logit by up to ~0.01
/// and a probability by up to half that; 2e-2 allows a few such steps. The file's
/// int32 biases (rounded to the sums' unit) and uint8 outputs after a ReLU (255 levels where
/// strata clips at 127, for values past the f32 calibration range) add differences of the same
/// kind. Measured: cnn 1.2e-3 as written and fused, mlp 9e-7. As written the cnn was at 6e-8
/// before the biases were int32: their rounding (half the sums' unit) moves outputs
/// near a half step by one integer (found by elimination, not traced value by value), as ONNX Runtime's fused kernels always
/// did; no quantized value of the checked input passes 116 of 127 levels, so the uint8 range
/// after a ReLU plays no part.
const CALIBRATED_TOLERANCE: f64 = 2e-2;
/// Weights-only files against strata's per-row int8 `predict`: ONNX Runtime keeps the
/// activations in f32 (as written) or quantizes them per tensor to uint8 (fused), strata rounds
/// each to 127 levels of its row's largest magnitude, every value by up to half a step. Summed
/// over the 784 and 128 inputs of the mlp's layers (the cnn's 9 to 1600), the errors move the
/// logits by about a hundredth; probabilities by half that. Measured: 1.1e-3 (mlp) and 3.1e-3
/// (cnn) as written, 1.0e-3 and 3.4e-3 fused.
const PER_ROW_TOLERANCE: f64 = 2e-2;

/// Quantizes `model` (a built `base` model) and returns the output the ONNX file must match,
/// with the tolerance and, for a weights-only file, strata's int8 output and how far ONNX
/// Runtime may be from it, added to `record`.
fn quantize(
    model: &mut Model,
    base: &str,
    quantization: Quantization,
    x: &Tensor,
    record: &mut serde_json::Value,
) -> Result<Tensor> {
    moderate(model);
    match quantization {
        Quantization::Calibrated => {
            let mut rng = Rng::new(3);
            let mut values = x.data().to_vec();
            let per_row = values.len() / x.rows();
            values.extend((0..61 * per_row).map(|_| rng.uniform(0.0, 1.0)));
            let mut shape = x.shape().to_vec();
            shape[0] = values.len() / per_row;
            let sample = Tensor::from_vec(shape, values)?;
            let options = QuantizeOptions {
                calibration: Some(&sample),
                ..Default::default()
            };
            model.quantize_with_options("int8", options)?;
            record["tolerance"] = serde_json::json!(CALIBRATED_TOLERANCE);
            record["optimized_tolerance"] = serde_json::json!(CALIBRATED_TOLERANCE);
            record["note"] = serde_json::json!("calibrated int8: QDQ weights and activations");
            // The checker also asserts that ONNX Runtime fuses every product into an int8 one.
            record["fused"] = serde_json::json!(true);
            model.predict(x, 32)
        }
        Quantization::PerRow => {
            model.quantize("int8")?;
            let int8 = model.predict(x, 32)?;
            // What the weights-only graph computes: the f32 model with the dequantized
            // kernels (the quantized model's f32 weights are those).
            let mut dequantized = build(base)?;
            let ids: Vec<_> = model.params().ids().collect();
            for id in ids {
                *dequantized.params_mut().value_mut(id) = model.params().value(id).clone();
            }
            record["tolerance"] = serde_json::json!(1e-5);
            record["int8_output"] = serde_json::json!(int8.data());
            record["optimized_tolerance"] = serde_json::json!(PER_ROW_TOLERANCE);
            record["note"] = serde_json::json!(
                "per-row int8: weights-only QDQ (f32 activations) vs the dequantized f32 model; int8_output is strata's int8 predict"
            );
            dequantized.predict(x, 32)
        }
    }
}

/// The smallest vocabulary of the model's `Embedding` layers, if it has any.
fn vocabulary(model: &Model) -> Option<usize> {
    let layers = model.layers();
    let embeddings = layers.iter().filter(|l| l.class_name() == "Embedding");
    embeddings
        .filter_map(|l| l.config()["input_dim"].as_u64())
        .min()
        .map(|n| n as usize)
}

/// Sets every weight to small random values; variances stay positive.
fn randomize(model: &mut Model, seed: u64) {
    let mut rng = Rng::new(seed);
    let ids: Vec<_> = model.params().ids().collect();
    for id in ids {
        let variance = model.params().name(id).ends_with("variance");
        for v in model.params_mut().value_mut(id).data_mut() {
            *v = if variance {
                rng.uniform(0.5, 1.5)
            } else {
                rng.uniform(-0.5, 0.5)
            };
        }
    }
}

/// Scales each kernel by `4 / √fan_in` (about He's initialization for these uniform values),
/// so the quantized models' logits stay near 1 and their softmax is not saturated: a
/// difference in an int8 layer then shows in the probabilities the files are compared on.
fn moderate(model: &mut Model) {
    let ids: Vec<_> = model.params().ids().collect();
    for id in ids {
        let shape = model.params().value(id).shape().to_vec();
        if shape.len() < 2 {
            continue;
        }
        let fan_in: usize = shape[..shape.len() - 1].iter().product();
        let factor = 4.0 / (fan_in.max(1) as f32).sqrt();
        for v in model.params_mut().value_mut(id).data_mut() {
            *v *= factor;
        }
    }
}

/// A functional model with the layer kinds and activations export supports beyond the named
/// models': padding, "same" average pooling, rescaling, merges, reshapes, Dense on (batch, steps, features) and without bias.
fn every_layer() -> Result<Model> {
    let inputs = Input::node(&[9, 7, 3]);
    let x = Rescaling::new(1.0 / 2.0).offset(vec![0.1, -0.2, 0.3]).call(&inputs)?;
    let x = ZeroPadding2D::new(((1, 0), (2, 1))).call(&x)?;
    let a = Conv2D::new(4, 3)
        .strides(2)
        .padding("same")
        .activation("gelu")
        .call(&x)?;
    let b = Conv2D::new(4, (2, 3))
        .strides((2, 2))
        .padding("same")
        .activation("silu")
        .call(&x)?;
    let sum = Add::new().call_many(&[&a, &b])?;
    let difference = Subtract::new().call_many(&[&a, &b])?;
    let product = Multiply::new().call_many(&[&sum, &difference])?;
    let x = Concatenate::new(-1).call_many(&[&product, &a])?;
    let x = BatchNormalization::new().call(&x)?;
    let x = ReLU::new().max_value(6.0).call(&x)?;
    let x = AveragePooling2D::new(2).padding("same").call(&x)?;
    let pooled = GlobalMaxPooling2D::new().call(&x)?;
    let x = MaxPooling2D::new(2).padding("same").call(&x)?;
    let x = Reshape::new(&[4, 8]).call(&x)?;
    let x = Dense::new(3).activation("sigmoid").call(&x)?; // on (batch, steps, features): MatMul + Add
    let x = Activation::new("tanh").call(&x)?;
    let x = Flatten::new().call(&x)?;
    let x = Dense::new(5).activation("elu").use_bias(false).call(&x)?;
    let x = Concatenate::new(-1).call_many(&[&x, &pooled])?;
    let x = Dropout::new(0.5).call(&x)?;
    let x = Dense::new(6).activation("leaky_relu").call(&x)?;
    // Linear: a softmax would hide differences in the layers before it.
    let outputs = Dense::new(4).call(&x)?;
    Model::functional(&inputs, &outputs)
}

/// Every exportable activation on one input, side by side, with the merges the other models
/// leave out (`Average`, `Maximum`, `Minimum`) and a leaky `ReLU` layer. Inputs span [-4, 4] (see `main`'s
/// scaling) so each function's curved parts are exercised.
fn every_activation() -> Result<Model> {
    let inputs = Input::node(&[6]);
    let x = Rescaling::new(8.0).offset(-4.0).call(&inputs)?;
    let mut branches = Vec::new();
    for name in strata::io::onnx::EXPORTABLE_ACTIVATIONS {
        branches.push(Activation::new(name).call(&x)?);
    }
    branches.push(ReLU::new().negative_slope(0.1).call(&x)?);
    let average = Average::new().call_many(&[&branches[1], &branches[2]])?;
    let maximum = Maximum::new().call_many(&[&branches[3], &branches[4], &branches[5]])?;
    let minimum = Minimum::new().call_many(&[&branches[6], &branches[7]])?;
    branches.extend([average, maximum, minimum]);
    let all: Vec<&Node> = branches.iter().collect();
    Concatenate::new(-1)
        .call_many(&all)
        .and_then(|outputs| Model::functional(&inputs, &outputs))
}

/// The advanced activation layers (`LeakyReLU`, `ELU`, `PReLU` with random slopes, `Softmax`,
/// `Identity`) and the sequence layers that came with them: `RepeatVector`,
/// `SpatialDropout1D` (gone at inference), `AveragePooling1D` ("same", odd length) and
/// `GlobalMaxPooling1D`.
fn more_layers() -> Result<Model> {
    use strata::layers::{
        AveragePooling1D, ELU, GlobalMaxPooling1D, Identity, LeakyReLU, PReLU, RepeatVector, Softmax, SpatialDropout1D,
    };
    let inputs = Input::node(&[6]);
    let x = Rescaling::new(8.0).offset(-4.0).call(&inputs)?;
    let x = Dense::new(5).call(&x)?;
    let leaky = LeakyReLU::new(0.2).call(&x)?;
    let elu = ELU::new(0.7).call(&x)?;
    let prelu = PReLU::new().call(&x)?;
    let probabilities = Softmax::new().call(&x)?;
    let same = Identity::new().call(&x)?;
    let x = Concatenate::new(-1).call_many(&[&leaky, &elu, &prelu, &probabilities, &same])?;
    let steps = RepeatVector::new(5).call(&x)?;
    let steps = SpatialDropout1D::new(0.3).call(&steps)?;
    let steps = Dense::new(4).activation("tanh").call(&steps)?;
    let steps = strata::layers::UpSampling1D::new(3).call(&steps)?;
    let pooled = AveragePooling1D::new(2).padding("same").call(&steps)?;
    let pooled = GlobalMaxPooling1D::new().call(&pooled)?;
    let repeated = Flatten::new().call(&steps)?;
    let outputs = Concatenate::new(-1).call_many(&[&pooled, &repeated])?;
    Model::functional(&inputs, &outputs)
}

/// The convolutions beyond Conv2D and the image layers: augmentations (the identity at
/// inference, but RandomCrop's centred crop: a slice, and a slice resized), Resizing,
/// CenterCrop, Permute, Dense on each pixel, Normalization,
/// depthwise (with a depth multiplier, "same", stride 2), separable, transposed ("same" and
/// "valid" with a stride above the window), cropping and both upsamplings.
fn convolutions() -> Result<Model> {
    let inputs = Input::node(&[9, 8, 3]);
    let x = RandomFlip::new("horizontal").call(&inputs)?;
    let x = RandomContrast::new(0.2).call(&x)?;
    // At inference a centred crop: of the target's size (a slice), and resized to it.
    let sliced = RandomCrop::new(6, 8).call(&x)?;
    let resized = RandomCrop::new(5, 7).call(&x)?;
    // Resizing bilinear and nearest, to the aspect ratio; CenterCrop by a slice and resized up.
    let bilinear = Resizing::new(5, 11).call(&x)?;
    let nearest = Resizing::new(4, 3).interpolation("nearest").call(&x)?;
    let aspect = Resizing::new(4, 6).crop_to_aspect_ratio(true).call(&x)?;
    let centre = CenterCrop::new(5, 4).call(&x)?;
    let grown = CenterCrop::new(10, 6).call(&x)?;
    let channels_first = Permute::new(&[3, 1, 2]).call(&x)?;
    let per_pixel = Dense::new(3).activation("tanh").call(&x)?;
    let resized_all: Vec<Node> = [
        &sliced,
        &resized,
        &bilinear,
        &nearest,
        &aspect,
        &centre,
        &grown,
        &channels_first,
        &per_pixel,
    ]
    .into_iter()
    .map(|image| Flatten::new().call(image))
    .collect::<Result<_>>()?;
    let crops = Concatenate::new(-1).call_many(&resized_all.iter().collect::<Vec<_>>())?;
    let x = Normalization::new().call(&x)?;
    // Each image row a step: a Conv1D applied to every row.
    let rows = TimeDistributed::new(Conv1D::new(2, 3).padding("same")).call(&x)?;
    let rows = Flatten::new().call(&rows)?;
    let x = DepthwiseConv2D::new(3)
        .depth_multiplier(2)
        .strides(2)
        .padding("same")
        .activation("relu")
        .call(&x)?;
    let x = SeparableConv2D::new(5, (2, 3)).activation("tanh").call(&x)?;
    let up = Conv2DTranspose::new(4, 3).strides(2).padding("same").call(&x)?;
    let wide = Conv2DTranspose::new(4, (1, 2)).strides((2, 3)).call(&x)?;
    let wide = Cropping2D::new(((1, 1), (2, 2))).call(&wide)?;
    let up = Cropping2D::new(((1, 1), (2, 0))).call(&up)?;
    let x = Concatenate::new(-1).call_many(&[&up, &wide])?;
    let nearest = UpSampling2D::new((2, 1)).call(&x)?;
    let bilinear = UpSampling2D::new(2).interpolation("bilinear").call(&x)?;
    let nearest = Flatten::new().call(&nearest)?;
    let bilinear = Flatten::new().call(&bilinear)?;
    let depthwise = DepthwiseConv2D::new(2).use_bias(false).call(&x)?;
    let depthwise = Flatten::new().call(&depthwise)?;
    let outputs = Concatenate::new(-1).call_many(&[&nearest, &bilinear, &depthwise, &rows, &crops])?;
    Model::functional(&inputs, &outputs)
}

/// SimpleRNN, GRU and LSTM with their settings: sequences returned, read backwards, other
/// activations, no bias; Bidirectional with three merge modes; TimeDistributed.
fn recurrent() -> Result<Model> {
    let inputs = Input::node(&[6, 4]);
    let a = SimpleRNN::new(5)
        .activation("relu")
        .return_sequences(true)
        .call(&inputs)?;
    let b = GRU::new(4)
        .recurrent_activation("hard_sigmoid")
        .return_sequences(true)
        .go_backwards(true)
        .call(&a)?;
    let c = LSTM::new(3).go_backwards(true).call(&b)?;
    let d = GRU::new(2).use_bias(false).call(&inputs)?;
    let e = SimpleRNN::new(2).activation("linear").call(&inputs)?;
    let f = LSTM::new(3).return_sequences(true).call(&inputs)?;
    let f = Flatten::new().call(&f)?;
    let g = Bidirectional::new(GRU::new(3).return_sequences(true)).call(&inputs)?;
    let g = Bidirectional::new(LSTM::new(2)).merge_mode(MergeMode::Ave).call(&g)?;
    let h = Bidirectional::new(SimpleRNN::new(2).go_backwards(true).return_sequences(true))
        .merge_mode(MergeMode::Mul)
        .call(&inputs)?;
    let h = Flatten::new().call(&h)?;
    let steps = TimeDistributed::new(Dense::new(3).activation("tanh")).call(&b)?;
    let steps = Flatten::new().call(&steps)?;
    let outputs = Concatenate::new(-1).call_many(&[&c, &d, &e, &f, &g, &h, &steps])?;
    Model::functional(&inputs, &outputs)
}

/// Token sequences: Embedding, both position layers, RoBERTa's position ids, two class tokens,
/// attention with a separate key and other widths, dot-product Attention (scaled, causal),
/// AdditiveAttention (a learned scale; causal without one), LayerNormalization without a scale,
/// RMSNormalization, Conv1D, MaxPooling1D, Cropping1D and GlobalAveragePooling1D.
fn sequence() -> Result<Model> {
    let inputs = Input::node(&[10]);
    let tokens = Embedding::new(20, 8).call(&inputs)?;
    let positions = PositionEmbedding::new(12).call(&tokens)?;
    let sines = SinePositionEncoding::new().call(&tokens)?;
    let counted = strata::layers::PositionIds::new(1).call(&inputs)?;
    let counted = Embedding::new(14, 8).call(&counted)?;
    let x = Add::new().call_many(&[&tokens, &positions, &sines, &counted])?;
    let x = strata::layers::ClassToken::new().tokens(2).call(&x)?;
    let key = Dense::new(5).call(&x)?;
    let attended = MultiHeadAttention::new(2, 4)
        .value_dim(3)
        .output_shape(6)
        .call_many(&[&x, &x, &key])?;
    let causal = MultiHeadAttention::new(2, 3)
        .use_causal_mask(true)
        .use_bias(false)
        .call_many(&[&x, &x])?;
    let dot = strata::layers::Attention::new()
        .use_scale(true)
        .call_many(&[&x, &key, &x])?;
    let dot_causal = strata::layers::Attention::new()
        .use_causal_mask(true)
        .call_many(&[&causal, &x])?;
    let heads = strata::layers::DotProductAttention::new(2)
        .scale(0.3)
        .use_causal_mask(true)
        .call_many(&[&x, &x])?;
    let additive = AdditiveAttention::new().call_many(&[&x, &x])?;
    let additive_causal = AdditiveAttention::new()
        .use_scale(false)
        .use_causal_mask(true)
        .call_many(&[&causal, &x, &x])?;
    let x = Concatenate::new(-1).call_many(&[
        &attended,
        &causal,
        &dot,
        &dot_causal,
        &heads,
        &additive,
        &additive_causal,
    ])?;
    let x = LayerNormalization::new().scale(false).epsilon(1e-5).call(&x)?;
    let x = RMSNormalization::new().epsilon(1e-5).call(&x)?;
    let x = Conv1D::new(4, 3)
        .padding("same")
        .strides(2)
        .activation("gelu")
        .call(&x)?;
    let x = MaxPooling1D::new(2).padding("same").call(&x)?;
    let x = Cropping1D::new(1, 0).call(&x)?;
    let x = GlobalAveragePooling1D::new().call(&x)?;
    let outputs = Dense::new(3).call(&x)?;
    Model::functional(&inputs, &outputs)
}

/// Masked sequences: `Embedding(mask_zero=True)` and `Masking` (on the ids as one feature, so id
/// 0 is masked there too) read by every recurrent kind in every direction, returning the last
/// output and every step's, through layers that pass the mask on (Dense, Activation, ReLU,
/// BatchNormalization, LayerNormalization, Dropout, Add), GlobalAveragePooling1D's mean over
/// the unmasked steps, the three attention layers (self-attention, causal, a key of its own,
/// and a query without a mask), two different masks joined by `Add` and by `Concatenate` along
/// the steps, and a masked sequence concatenated with an unmasked one both ways.
fn masked() -> Result<Model> {
    let inputs = Input::node(&[12]);
    let tokens = Embedding::new(6, 4).mask_zero(true).call(&inputs)?;
    let a = LSTM::new(3).return_sequences(true).call(&tokens)?;
    let a = Activation::new("tanh").call(&a)?;
    let a = GRU::new(2).go_backwards(true).call(&a)?;
    let b = Bidirectional::new(SimpleRNN::new(2).return_sequences(true)).call(&tokens)?;
    let b = GlobalAveragePooling1D::new().call(&b)?;
    let c = Dense::new(4).call(&tokens)?;
    let c = ReLU::new().call(&c)?;
    let c = BatchNormalization::new().call(&c)?;
    let c = LayerNormalization::new().call(&c)?;
    let c = Dropout::new(0.5).call(&c)?;
    let c = Add::new().call_many(&[&c, &tokens])?;
    let c = Bidirectional::new(LSTM::new(2).go_backwards(true)).call(&c)?;
    let d = LSTM::new(2).go_backwards(true).return_sequences(true).call(&tokens)?;
    let d = GlobalAveragePooling1D::new().call(&d)?;
    let e = Bidirectional::new(GRU::new(2))
        .merge_mode(MergeMode::Sum)
        .call(&tokens)?;
    let ids = Reshape::new(&[12, 1]).call(&inputs)?;
    let f = Masking::new(0.0).call(&ids)?;
    let f = SimpleRNN::new(3).call(&f)?;
    let query = Dense::new(4).call(&ids)?;
    let key = Dense::new(4).activation("tanh").call(&tokens)?;
    let g = MultiHeadAttention::new(2, 3).call_many(&[&tokens, &tokens])?;
    let g = MultiHeadAttention::new(2, 2)
        .use_causal_mask(true)
        .call_many(&[&g, &tokens, &key])?;
    let g = GlobalAveragePooling1D::new().call(&g)?;
    let h = MultiHeadAttention::new(1, 3).call_many(&[&query, &tokens])?;
    let h = Flatten::new().call(&h)?;
    let i = strata::layers::Attention::new()
        .use_causal_mask(true)
        .call_many(&[&tokens, &tokens])?;
    // Flattened: the query's masked rows, zeroed, count.
    let i = Flatten::new().call(&i)?;
    let j = strata::layers::Attention::new().call_many(&[&query, &tokens])?;
    let j = Flatten::new().call(&j)?;
    let k = AdditiveAttention::new()
        .use_causal_mask(true)
        .call_many(&[&tokens, &tokens])?;
    // Flattened: the query's masked rows, zeroed, count.
    let k = Flatten::new().call(&k)?;
    let l = AdditiveAttention::new().call_many(&[&query, &tokens])?;
    let l = Flatten::new().call(&l)?;
    // Two different masks joined: their union by Add, side by side along the steps.
    let threes = Masking::new(3.0).call(&ids)?;
    let threes = Dense::new(4).call(&threes)?;
    let m = Add::new().call_many(&[&tokens, &threes])?;
    let m = LSTM::new(2).call(&m)?;
    let n = Concatenate::new(1).call_many(&[&tokens, &threes])?;
    let n = GRU::new(2).call(&n)?;
    // A masked and an unmasked sequence (`query`) joined: every step real along the features,
    // ones then the tokens' mask along the steps.
    let o = Concatenate::new(-1).call_many(&[&tokens, &query])?;
    let o = LSTM::new(2).call(&o)?;
    let p = Concatenate::new(1).call_many(&[&query, &tokens])?;
    let p = GRU::new(2).call(&p)?;
    let outputs = Concatenate::new(-1).call_many(&[&a, &b, &c, &d, &e, &f, &g, &h, &i, &j, &k, &l, &m, &n, &o, &p])?;
    let outputs = Dense::new(3).call(&outputs)?;
    Model::functional(&inputs, &outputs)
}
