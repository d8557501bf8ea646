//! MobileNetV3Small and MobileNetV3Large, as `keras/src/applications/mobilenet_v3.py` builds
//! them (not minimalistic, with preprocessing): inverted residual blocks with
//! squeeze-and-excitation, ReLU or hard swish. The model takes 0–255 pixels and rescales them
//! itself. Keras writes hard sigmoid as arithmetic, `ReLU(6)(x + 3) * (1 / 6)`, saved as
//! operations named `add` and `multiply`; strata runs each as a `Rescaling` of that name.

use super::options::{AutoNames, Options, correct_pad, graph, image_input, pool};
use crate::error::Result;
use crate::layers::{
    Activation, Add, BatchNormalization, Conv2D, DepthwiseConv2D, Dropout, Flatten, GlobalAveragePooling2D, Multiply,
    ReLU, Rescaling, ZeroPadding2D,
};
use crate::model::{LayerCall, Model, Node};

/// Keras's `_depth`: `value` rounded to a multiple of 8 (at least 8), never 10% below.
fn depth(value: f64) -> usize {
    let rounded = ((value + 4.0) as usize / 8 * 8).max(8);
    match (rounded as f64) < 0.9 * value {
        true => rounded + 8,
        false => rounded,
    }
}

/// The two activations of the blocks.
#[derive(Clone, Copy, PartialEq)]
enum Act {
    Relu,
    HardSwish,
}

/// The builder's state: Keras's automatic names (`re_lu_3`, `activation_2`, `add_1`, ...).
struct Builder {
    auto: AutoNames,
}

impl Builder {
    fn activation(&mut self, x: &Node, act: Act) -> Result<Node> {
        match act {
            Act::Relu => ReLU::new().name(&self.auto.next("re_lu")).call(x),
            Act::HardSwish => Activation::new("hard_silu").name(&self.auto.next("activation")).call(x),
        }
    }

    /// Keras's `hard_sigmoid`: `ReLU(6)(x + 3) * (1 / 6)`.
    fn hard_sigmoid(&mut self, x: &Node) -> Result<Node> {
        let x = Rescaling::new(1.0).offset(3.0).name(&self.auto.next("add")).call(x)?;
        let x = ReLU::new().max_value(6.0).name(&self.auto.next("re_lu")).call(&x)?;
        Rescaling::new(1.0 / 6.0).name(&self.auto.next("multiply")).call(&x)
    }

    /// Squeeze and excitation: pooled, reduced to a quarter, ReLU, expanded, hard sigmoid,
    /// multiplied with the input.
    fn squeeze_excite(&mut self, x: &Node, filters: usize, prefix: &str) -> Result<Node> {
        let s = GlobalAveragePooling2D::new()
            .keepdims(true)
            .name(&format!("{prefix}squeeze_excite_avg_pool"))
            .call(x)?;
        let s = Conv2D::new(depth(filters as f64 * 0.25), 1)
            .padding("same")
            .name(&format!("{prefix}squeeze_excite_conv"))
            .call(&s)?;
        let s = ReLU::new().name(&format!("{prefix}squeeze_excite_relu")).call(&s)?;
        let s = Conv2D::new(filters, 1)
            .padding("same")
            .name(&format!("{prefix}squeeze_excite_conv_1"))
            .call(&s)?;
        let s = self.hard_sigmoid(&s)?;
        Multiply::new()
            .name(&format!("{prefix}squeeze_excite_mul"))
            .call_many(&[x, &s])
    }

    /// Keras's `_inverted_res_block` number `block`.
    #[allow(clippy::too_many_arguments)]
    fn inverted_residual(
        &mut self,
        x: &Node,
        expansion: f64,
        filters: usize,
        kernel: usize,
        stride: usize,
        se: bool,
        act: Act,
        block: usize,
    ) -> Result<Node> {
        let in_filters = x.shape()[2];
        let expanded = depth(in_filters as f64 * expansion);
        let mut prefix = "expanded_conv_".to_string();
        let mut y = x.clone();
        if block > 0 {
            prefix = format!("expanded_conv_{block}_");
            y = Conv2D::new(expanded, 1)
                .padding("same")
                .use_bias(false)
                .name(&format!("{prefix}expand"))
                .call(&y)?;
            y = bn(&format!("{prefix}expand_bn")).call(&y)?;
            y = self.activation(&y, act)?;
        }
        if stride == 2 {
            y = ZeroPadding2D::new(correct_pad(&y, kernel))
                .name(&format!("{prefix}depthwise_pad"))
                .call(&y)?;
        }
        let y = DepthwiseConv2D::new(kernel)
            .strides(stride)
            .padding(if stride == 1 { "same" } else { "valid" })
            .use_bias(false)
            .name(&format!("{prefix}depthwise"))
            .call(&y)?;
        let y = bn(&format!("{prefix}depthwise_bn")).call(&y)?;
        let mut y = self.activation(&y, act)?;
        if se {
            y = self.squeeze_excite(&y, expanded, &prefix)?;
        }
        let y = Conv2D::new(filters, 1)
            .padding("same")
            .use_bias(false)
            .name(&format!("{prefix}project"))
            .call(&y)?;
        let y = bn(&format!("{prefix}project_bn")).call(&y)?;
        match stride == 1 && in_filters == filters {
            true => Add::new().name(&format!("{prefix}add")).call_many(&[x, &y]),
            false => Ok(y),
        }
    }
}

/// MobileNetV3's BatchNormalization.
fn bn(name: &str) -> BatchNormalization {
    BatchNormalization::new().epsilon(1e-3).momentum(0.999).name(name)
}

/// One block of a stack: (expansion, filters before alpha, kernel (0: the stack's, 5), stride,
/// squeeze-excite, hard swish).
type BlockSpec = (f64, usize, usize, usize, bool, bool);

const SMALL: [BlockSpec; 11] = [
    (1.0, 16, 3, 2, true, false),
    (72.0 / 16.0, 24, 3, 2, false, false),
    (88.0 / 24.0, 24, 3, 1, false, false),
    (4.0, 40, 5, 2, true, true),
    (6.0, 40, 5, 1, true, true),
    (6.0, 40, 5, 1, true, true),
    (3.0, 48, 5, 1, true, true),
    (3.0, 48, 5, 1, true, true),
    (6.0, 96, 5, 2, true, true),
    (6.0, 96, 5, 1, true, true),
    (6.0, 96, 5, 1, true, true),
];

const LARGE: [BlockSpec; 15] = [
    (1.0, 16, 3, 1, false, false),
    (4.0, 24, 3, 2, false, false),
    (3.0, 24, 3, 1, false, false),
    (3.0, 40, 5, 2, true, false),
    (3.0, 40, 5, 1, true, false),
    (3.0, 40, 5, 1, true, false),
    (6.0, 80, 3, 2, false, true),
    (2.5, 80, 3, 1, false, true),
    (2.3, 80, 3, 1, false, true),
    (2.3, 80, 3, 1, false, true),
    (6.0, 112, 3, 1, true, true),
    (6.0, 112, 3, 1, true, true),
    (6.0, 160, 5, 2, true, true),
    (6.0, 160, 5, 1, true, true),
    (6.0, 160, 5, 1, true, true),
];

/// MobileNetV3Small (`large: false`) or MobileNetV3Large, not built.
pub(super) fn mobilenet_v3(options: &Options, large: bool) -> Result<Model> {
    let architecture = if large { "MobileNetV3Large" } else { "MobileNetV3Small" };
    options.family_arguments(
        architecture,
        &["alpha", "dropout", "minimalistic", "include_preprocessing"],
    )?;
    let (blocks, mut last_point): (&[BlockSpec], usize) = match large {
        true => (&LARGE, 1280),
        false => (&SMALL, 1024),
    };
    let shape = options.image_shape(architecture, 224, 32)?;
    let alphas: &[f32] = if options.minimalistic { &[1.0] } else { &[0.75, 1.0] };
    options.imagenet_alpha(architecture, alphas)?;
    let alpha = f64::from(options.alpha);
    // Minimalistic: 3×3 kernels, ReLU and no squeeze-and-excitation wherever the full model
    // has its stack's kernel, hard swish and squeeze-and-excitation.
    let (kernel, swish_act) = match options.minimalistic {
        true => (3, Act::Relu),
        false => (5, Act::HardSwish),
    };
    let mut b = Builder {
        auto: AutoNames::default(),
    };
    let input = image_input(options, shape);
    let x = match options.include_preprocessing {
        true => Rescaling::new(1.0 / 127.5)
            .offset(-1.0)
            .name(&b.auto.next("rescaling"))
            .call(&input)?,
        false => input.clone(),
    };
    let x = Conv2D::new(16, 3)
        .strides(2)
        .padding("same")
        .use_bias(false)
        .name("conv")
        .call(&x)?;
    let x = bn("conv_bn").call(&x)?;
    let mut x = b.activation(&x, swish_act)?;
    for (i, &(expansion, filters, block_kernel, stride, se, swish)) in blocks.iter().enumerate() {
        let act = if swish { swish_act } else { Act::Relu };
        // The 5×5 kernels are the stack's `kernel`; the 3×3 ones are fixed.
        let block_kernel = if block_kernel == 5 { kernel } else { block_kernel };
        let se = se && !options.minimalistic;
        x = b.inverted_residual(
            &x,
            expansion,
            depth(filters as f64 * alpha),
            block_kernel,
            stride,
            se,
            act,
            i,
        )?;
    }
    let last_conv = depth(x.shape()[2] as f64 * 6.0);
    if alpha > 1.0 {
        last_point = depth(last_point as f64 * alpha);
    }
    let x = Conv2D::new(last_conv, 1)
        .padding("same")
        .use_bias(false)
        .name("conv_1")
        .call(&x)?;
    let x = bn("conv_1_bn").call(&x)?;
    let x = b.activation(&x, swish_act)?;
    let x = match options.include_top {
        true => {
            let x = GlobalAveragePooling2D::new()
                .keepdims(true)
                .name(&b.auto.next("global_average_pooling2d"))
                .call(&x)?;
            let x = Conv2D::new(last_point, 1).padding("same").name("conv_2").call(&x)?;
            let mut x = b.activation(&x, swish_act)?;
            let rate = options.dropout.unwrap_or(0.2);
            if rate > 0.0 {
                x = Dropout::new(rate).name(&b.auto.next("dropout")).call(&x)?;
            }
            let x = Conv2D::new(options.classes, 1)
                .padding("same")
                .name("logits")
                .call(&x)?;
            let x = Flatten::new().name(&b.auto.next("flatten")).call(&x)?;
            Activation::new(options.activation()).name("predictions").call(&x)?
        }
        false => pool(x, options, (Some("avg_pool"), Some("max_pool")), &mut b.auto)?,
    };
    graph(&input, &x, options.name.as_deref().unwrap_or(architecture))
}
