//! MobileNet (v1) and MobileNetV2, as `keras/src/applications/mobilenet.py` and
//! `mobilenet_v2.py` build them: depthwise-separable convolutions with ReLU6, and (v2) inverted
//! residual blocks with linear bottlenecks. `alpha` scales every layer's width.

use super::options::{AutoNames, Options, correct_pad, graph, image_input, pool};
use crate::error::Result;
use crate::layers::{
    Activation, Add, BatchNormalization, Conv2D, Dense, DepthwiseConv2D, Dropout, GlobalAveragePooling2D, ReLU,
    Reshape, ZeroPadding2D,
};
use crate::model::{LayerCall, Model, Node};

/// Keras's `_make_divisible`: `value` rounded to the nearest multiple of `divisor` (at least
/// `divisor`), never more than 10% below `value`.
fn make_divisible(value: f32, divisor: usize) -> usize {
    let rounded = ((value + divisor as f32 / 2.0) as usize / divisor * divisor).max(divisor);
    match (rounded as f32) < 0.9 * value {
        true => rounded + divisor,
        false => rounded,
    }
}

/// Keras's name for a width-`alpha` model at `rows` (`mobilenetv2_1.00_224`).
fn model_name(options: &Options, prefix: &str, rows: usize) -> String {
    options
        .name
        .clone()
        .unwrap_or_else(|| format!("{prefix}_{:.2}_{rows}", options.alpha))
}

/// BatchNormalization as MobileNetV2 configures it.
fn bn_v2(name: &str) -> crate::layers::BatchNormalization {
    BatchNormalization::new().epsilon(1e-3).momentum(0.999).name(name)
}

/// MobileNetV2's inverted residual block: 1×1 expansion (except block 0), 3×3 depthwise
/// (stride 1 or 2), 1×1 linear projection, and a residual `Add` when the shapes allow.
fn inverted_residual(
    x: &Node,
    expansion: usize,
    stride: usize,
    alpha: f32,
    filters: usize,
    block: usize,
) -> Result<Node> {
    let in_channels = x.shape()[2];
    let pointwise_filters = make_divisible((filters as f32 * alpha).trunc(), 8);
    let (mut y, prefix) = match block {
        0 => (x.clone(), "expanded_conv_".to_string()),
        _ => {
            let prefix = format!("block_{block}_");
            let y = Conv2D::new(expansion * in_channels, 1)
                .padding("same")
                .use_bias(false)
                .name(&format!("{prefix}expand"))
                .call(x)?;
            let y = bn_v2(&format!("{prefix}expand_BN")).call(&y)?;
            (
                ReLU::new()
                    .max_value(6.0)
                    .name(&format!("{prefix}expand_relu"))
                    .call(&y)?,
                prefix,
            )
        }
    };
    if stride == 2 {
        y = ZeroPadding2D::new(correct_pad(&y, 3))
            .name(&format!("{prefix}pad"))
            .call(&y)?;
    }
    let y = DepthwiseConv2D::new(3)
        .strides(stride)
        .use_bias(false)
        .padding(if stride == 1 { "same" } else { "valid" })
        .name(&format!("{prefix}depthwise"))
        .call(&y)?;
    let y = bn_v2(&format!("{prefix}depthwise_BN")).call(&y)?;
    let y = ReLU::new()
        .max_value(6.0)
        .name(&format!("{prefix}depthwise_relu"))
        .call(&y)?;
    let y = Conv2D::new(pointwise_filters, 1)
        .padding("same")
        .use_bias(false)
        .name(&format!("{prefix}project"))
        .call(&y)?;
    let y = bn_v2(&format!("{prefix}project_BN")).call(&y)?;
    if in_channels == pointwise_filters && stride == 1 {
        return Add::new().name(&format!("{prefix}add")).call_many(&[x, &y]);
    }
    Ok(y)
}

/// Keras's default size of a MobileNet: the input's side when it is square and one of `sizes`
/// (those Keras has ImageNet weights for), else 224.
fn default_size(options: &Options, sizes: &[usize]) -> usize {
    let shape = options
        .input_tensor
        .as_ref()
        .map(|t| t.shape().to_vec())
        .or_else(|| options.input_shape.map(|s| s.to_vec()));
    match shape.as_deref() {
        Some(&[rows, cols, _]) if rows == cols && sizes.contains(&rows) => rows,
        _ => 224,
    }
}

/// MobileNetV2 (`keras.applications.MobileNetV2`), not built.
pub(super) fn mobilenet_v2(options: &Options) -> Result<Model> {
    options.family_arguments("MobileNetV2", &["alpha"])?;
    let size = default_size(options, &[96, 128, 160, 192, 224]);
    let shape = options.image_shape("MobileNetV2", size, 32)?;
    options.imagenet_alpha("MobileNetV2", &[0.35, 0.5, 0.75, 1.0, 1.3, 1.4])?;
    let alpha = options.alpha;
    let mut auto = AutoNames::default();
    let input = image_input(options, shape);
    let x = Conv2D::new(make_divisible(32.0 * alpha, 8), 3)
        .strides(2)
        .padding("same")
        .use_bias(false)
        .name("Conv1")
        .call(&input)?;
    let x = bn_v2("bn_Conv1").call(&x)?;
    let mut x = ReLU::new().max_value(6.0).name("Conv1_relu").call(&x)?;
    // (filters, stride of the first block, expansion, blocks), as Keras's 17 calls.
    let stages = [
        (16, 1, 1, 1),
        (24, 2, 6, 2),
        (32, 2, 6, 3),
        (64, 2, 6, 4),
        (96, 1, 6, 3),
        (160, 2, 6, 3),
        (320, 1, 6, 1),
    ];
    let mut block = 0;
    for (filters, first_stride, expansion, blocks) in stages {
        for i in 0..blocks {
            let stride = if i == 0 { first_stride } else { 1 };
            x = inverted_residual(&x, expansion, stride, alpha, filters, block)?;
            block += 1;
        }
    }
    // No alpha on the last convolution below 1, as in the paper.
    let last_filters = if alpha > 1.0 {
        make_divisible(1280.0 * alpha, 8)
    } else {
        1280
    };
    let x = Conv2D::new(last_filters, 1).use_bias(false).name("Conv_1").call(&x)?;
    let x = bn_v2("Conv_1_bn").call(&x)?;
    let x = ReLU::new().max_value(6.0).name("out_relu").call(&x)?;
    let x = match options.include_top {
        true => {
            let x = GlobalAveragePooling2D::new()
                .name(&auto.next("global_average_pooling2d"))
                .call(&x)?;
            Dense::new(options.classes)
                .activation(options.activation())
                .name("predictions")
                .call(&x)?
        }
        false => pool(x, options, (None, None), &mut auto)?,
    };
    graph(&input, &x, &model_name(options, "mobilenetv2", shape[0]))
}

/// MobileNet v1's depthwise-separable block: (padding,) 3×3 depthwise, BN, ReLU6, 1×1
/// pointwise, BN, ReLU6.
fn depthwise_separable(x: &Node, filters: usize, options: &Options, stride: usize, block: usize) -> Result<Node> {
    let filters = (filters as f32 * options.alpha) as usize;
    let x = match stride {
        1 => x.clone(),
        _ => ZeroPadding2D::new(((0, 1), (0, 1)))
            .name(&format!("conv_pad_{block}"))
            .call(x)?,
    };
    let x = DepthwiseConv2D::new(3)
        .padding(if stride == 1 { "same" } else { "valid" })
        .depth_multiplier(options.depth_multiplier)
        .strides(stride)
        .use_bias(false)
        .name(&format!("conv_dw_{block}"))
        .call(&x)?;
    let x = BatchNormalization::new()
        .name(&format!("conv_dw_{block}_bn"))
        .call(&x)?;
    let x = ReLU::new()
        .max_value(6.0)
        .name(&format!("conv_dw_{block}_relu"))
        .call(&x)?;
    let x = Conv2D::new(filters, 1)
        .padding("same")
        .use_bias(false)
        .name(&format!("conv_pw_{block}"))
        .call(&x)?;
    let x = BatchNormalization::new()
        .name(&format!("conv_pw_{block}_bn"))
        .call(&x)?;
    ReLU::new()
        .max_value(6.0)
        .name(&format!("conv_pw_{block}_relu"))
        .call(&x)
}

/// MobileNet (`keras.applications.MobileNet`), not built.
pub(super) fn mobilenet(options: &Options) -> Result<Model> {
    options.family_arguments("MobileNet", &["alpha", "depth_multiplier", "dropout"])?;
    let size = default_size(options, &[128, 160, 192, 224]);
    let shape = options.image_shape("MobileNet", size, 32)?;
    options.imagenet_alpha("MobileNet", &[0.25, 0.5, 0.75, 1.0])?;
    if options.imagenet() && options.depth_multiplier != 1 {
        return Err(crate::error::Error::Usage(format!(
            "MobileNet: with weights=\"imagenet\", depth_multiplier must be 1, got {}",
            options.depth_multiplier
        )));
    }
    let alpha = options.alpha;
    let mut auto = AutoNames::default();
    let input = image_input(options, shape);
    let x = Conv2D::new((32.0 * alpha) as usize, 3)
        .padding("same")
        .use_bias(false)
        .strides(2)
        .name("conv1")
        .call(&input)?;
    let x = BatchNormalization::new().name("conv1_bn").call(&x)?;
    let mut x = ReLU::new().max_value(6.0).name("conv1_relu").call(&x)?;
    // (pointwise filters, stride) of blocks 1 to 13.
    let blocks = [
        (64, 1),
        (128, 2),
        (128, 1),
        (256, 2),
        (256, 1),
        (512, 2),
        (512, 1),
        (512, 1),
        (512, 1),
        (512, 1),
        (512, 1),
        (1024, 2),
        (1024, 1),
    ];
    for (i, (filters, stride)) in blocks.into_iter().enumerate() {
        x = depthwise_separable(&x, filters, options, stride, i + 1)?;
    }
    let x = match options.include_top {
        true => {
            let x = GlobalAveragePooling2D::new()
                .keepdims(true)
                .name(&auto.next("global_average_pooling2d"))
                .call(&x)?;
            let x = Dropout::new(options.dropout.unwrap_or(1e-3)).name("dropout").call(&x)?;
            let x = Conv2D::new(options.classes, 1)
                .padding("same")
                .name("conv_preds")
                .call(&x)?;
            let x = Reshape::new(&[options.classes]).name("reshape_2").call(&x)?;
            Activation::new(options.activation()).name("predictions").call(&x)?
        }
        false => pool(x, options, (None, None), &mut auto)?,
    };
    graph(&input, &x, &model_name(options, "mobilenet", shape[0]))
}

#[cfg(test)]
mod tests {
    use super::make_divisible;

    #[test]
    fn make_divisible_rounds_as_keras() {
        // Keras: _make_divisible(32 * 0.35, 8) == 16 (11.2 rounds to 8, more than 10% below).
        assert_eq!(make_divisible(32.0 * 0.35, 8), 16);
        assert_eq!(make_divisible(16.0 * 0.35, 8), 8);
        assert_eq!(make_divisible(1280.0 * 1.4, 8), 1792);
        assert_eq!(make_divisible(24.0, 8), 24);
    }
}
