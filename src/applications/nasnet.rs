//! NASNetMobile, as `keras/src/applications/nasnet.py` builds it: a stem convolution, two
//! reduction cells, then three stacks of normal cells (NASNet-A) separated by reduction cells,
//! each cell reading the two cells before it (`x` and the previous path `p`, adjusted to `x`'s
//! size and width). Keras leaves the ReLU activations, the adjusting paddings and croppings, the
//! adjusting concatenations and one addition per reduction cell unnamed: they are named here in
//! Keras's creation order.

use super::options::{AutoNames, Options, correct_pad, graph, image_input, pool};
use crate::error::Result;
use crate::initializers::Initializer;
use crate::layers::{
    Activation, Add, AveragePooling2D, BatchNormalization, Concatenate, Conv2D, Cropping2D, Dense,
    GlobalAveragePooling2D, MaxPooling2D, SeparableConv2D, ZeroPadding2D,
};
use crate::model::{LayerCall, Model, Node};

/// The widths and depths of a NASNet (`NASNet(penultimate_filters, num_blocks,
/// stem_block_filters, skip_reduction, filter_multiplier)` in Keras).
struct Shape {
    penultimate_filters: usize,
    num_blocks: usize,
    stem_block_filters: usize,
    skip_reduction: bool,
    filter_multiplier: usize,
}

/// NASNetMobile's: 4 @ 1056, a 32-filter stem, the reduction paths kept.
const MOBILE: Shape = Shape {
    penultimate_filters: 1056,
    num_blocks: 4,
    stem_block_filters: 32,
    skip_reduction: false,
    filter_multiplier: 2,
};

/// BatchNormalization as NASNet configures it.
fn bn(name: &str) -> BatchNormalization {
    BatchNormalization::new().momentum(0.9997).epsilon(1e-3).name(name)
}

/// A 1×1 convolution without bias, He-normal initialized.
fn pointwise(filters: usize, name: &str) -> Conv2D {
    Conv2D::new(filters, 1)
        .padding("same")
        .use_bias(false)
        .kernel_initializer(Initializer::HeNormal)
        .name(name)
}

/// The builder's state: Keras's automatic names (`activation_12`, `zero_padding2d_1`, ...).
struct Builder {
    auto: AutoNames,
}

impl Builder {
    fn relu(&mut self, x: &Node) -> Result<Node> {
        Activation::new("relu").name(&self.auto.next("activation")).call(x)
    }

    /// Keras's `_separable_conv_block`: twice ReLU, separable convolution, BatchNormalization;
    /// the first one strided (after a centring zero padding) when `stride` is 2.
    fn separable(&mut self, x: &Node, filters: usize, kernel: usize, stride: usize, id: &str) -> Result<Node> {
        let mut y = self.relu(x)?;
        if stride == 2 {
            y = ZeroPadding2D::new(correct_pad(&y, kernel))
                .name(&format!("separable_conv_1_pad_{id}"))
                .call(&y)?;
        }
        let y = SeparableConv2D::new(filters, kernel)
            .strides(stride)
            .padding(if stride == 2 { "valid" } else { "same" })
            .use_bias(false)
            .name(&format!("separable_conv_1_{id}"))
            .call(&y)?;
        let y = bn(&format!("separable_conv_1_bn_{id}")).call(&y)?;
        let y = self.relu(&y)?;
        let y = SeparableConv2D::new(filters, kernel)
            .padding("same")
            .use_bias(false)
            .name(&format!("separable_conv_2_{id}"))
            .call(&y)?;
        bn(&format!("separable_conv_2_bn_{id}")).call(&y)
    }

    /// Keras's `_adjust_block`: the previous path `p` brought to `ip`'s size (two half-width
    /// strided 1×1 paths, one shifted by a pixel, concatenated) or to `filters` channels (a 1×1
    /// projection); `ip` itself when there is no previous path.
    fn adjust(&mut self, p: Option<&Node>, ip: &Node, filters: usize, id: &str) -> Result<Node> {
        let Some(p) = p else {
            return Ok(ip.clone());
        };
        if p.shape()[1] != ip.shape()[1] {
            let p = Activation::new("relu").name(&format!("adjust_relu_1_{id}")).call(p)?;
            let p1 = AveragePooling2D::new(1)
                .strides(2)
                .name(&format!("adjust_avg_pool_1_{id}"))
                .call(&p)?;
            let p1 = pointwise(filters / 2, &format!("adjust_conv_1_{id}")).call(&p1)?;
            let p2 = ZeroPadding2D::new(((0, 1), (0, 1)))
                .name(&self.auto.next("zero_padding2d"))
                .call(&p)?;
            let p2 = Cropping2D::new(((1, 0), (1, 0)))
                .name(&self.auto.next("cropping2d"))
                .call(&p2)?;
            let p2 = AveragePooling2D::new(1)
                .strides(2)
                .name(&format!("adjust_avg_pool_2_{id}"))
                .call(&p2)?;
            let p2 = pointwise(filters / 2, &format!("adjust_conv_2_{id}")).call(&p2)?;
            let p = Concatenate::new(-1)
                .name(&self.auto.next("concatenate"))
                .call_many(&[&p1, &p2])?;
            return bn(&format!("adjust_bn_{id}")).call(&p);
        }
        if p.shape()[2] != filters {
            let p = self.relu(p)?;
            let p = pointwise(filters, &format!("adjust_conv_projection_{id}")).call(&p)?;
            return bn(&format!("adjust_bn_{id}")).call(&p);
        }
        Ok(p.clone())
    }

    /// `ip` through a ReLU, a 1×1 convolution to `filters` and BatchNormalization, the first
    /// step of both cells (`kind` is `normal` or `reduction`).
    fn squeeze(&mut self, ip: &Node, filters: usize, kind: &str, id: &str) -> Result<Node> {
        let h = self.relu(ip)?;
        let h = pointwise(filters, &format!("{kind}_conv_1_{id}")).call(&h)?;
        bn(&format!("{kind}_bn_1_{id}")).call(&h)
    }

    /// Keras's `_normal_a_cell`: five additions of separable convolutions, average poolings
    /// and identities of `ip` and `p`, concatenated with `p`. Returns `(x, ip)`.
    fn normal_cell(&mut self, ip: &Node, p: Option<&Node>, filters: usize, id: &str) -> Result<(Node, Node)> {
        let p = self.adjust(p, ip, filters, id)?;
        let h = self.squeeze(ip, filters, "normal", id)?;
        let add = |name: String, a: &Node, b: &Node| Add::new().name(&name).call_many(&[a, b]);
        let average = |name: String, x: &Node| AveragePooling2D::new(3).strides(1).padding("same").name(&name).call(x);
        let x1_1 = self.separable(&h, filters, 5, 1, &format!("normal_left1_{id}"))?;
        let x1_2 = self.separable(&p, filters, 3, 1, &format!("normal_right1_{id}"))?;
        let x1 = add(format!("normal_add_1_{id}"), &x1_1, &x1_2)?;
        let x2_1 = self.separable(&p, filters, 5, 1, &format!("normal_left2_{id}"))?;
        let x2_2 = self.separable(&p, filters, 3, 1, &format!("normal_right2_{id}"))?;
        let x2 = add(format!("normal_add_2_{id}"), &x2_1, &x2_2)?;
        let x3 = average(format!("normal_left3_{id}"), &h)?;
        let x3 = add(format!("normal_add_3_{id}"), &x3, &p)?;
        let x4_1 = average(format!("normal_left4_{id}"), &p)?;
        let x4_2 = average(format!("normal_right4_{id}"), &p)?;
        let x4 = add(format!("normal_add_4_{id}"), &x4_1, &x4_2)?;
        let x5 = self.separable(&h, filters, 3, 1, &format!("normal_left5_{id}"))?;
        let x5 = add(format!("normal_add_5_{id}"), &x5, &h)?;
        let x = Concatenate::new(-1)
            .name(&format!("normal_concat_{id}"))
            .call_many(&[&p, &x1, &x2, &x3, &x4, &x5])?;
        Ok((x, ip.clone()))
    }

    /// Keras's `_reduction_a_cell`: strided separable convolutions and poolings halving the
    /// size, four sums concatenated. Returns `(x, ip)`.
    fn reduction_cell(&mut self, ip: &Node, p: Option<&Node>, filters: usize, id: &str) -> Result<(Node, Node)> {
        let p = self.adjust(p, ip, filters, id)?;
        let h = self.squeeze(ip, filters, "reduction", id)?;
        let h3 = ZeroPadding2D::new(correct_pad(&h, 3))
            .name(&format!("reduction_pad_1_{id}"))
            .call(&h)?;
        let add = |name: String, a: &Node, b: &Node| Add::new().name(&name).call_many(&[a, b]);
        let x1_1 = self.separable(&h, filters, 5, 2, &format!("reduction_left1_{id}"))?;
        let x1_2 = self.separable(&p, filters, 7, 2, &format!("reduction_right1_{id}"))?;
        let x1 = add(format!("reduction_add_1_{id}"), &x1_1, &x1_2)?;
        let x2_1 = MaxPooling2D::new(3)
            .strides(2)
            .name(&format!("reduction_left2_{id}"))
            .call(&h3)?;
        let x2_2 = self.separable(&p, filters, 7, 2, &format!("reduction_right2_{id}"))?;
        let x2 = add(format!("reduction_add_2_{id}"), &x2_1, &x2_2)?;
        let x3_1 = AveragePooling2D::new(3)
            .strides(2)
            .name(&format!("reduction_left3_{id}"))
            .call(&h3)?;
        let x3_2 = self.separable(&p, filters, 5, 2, &format!("reduction_right3_{id}"))?;
        let x3 = add(format!("reduction_add3_{id}"), &x3_1, &x3_2)?;
        let x4 = AveragePooling2D::new(3)
            .strides(1)
            .padding("same")
            .name(&format!("reduction_left4_{id}"))
            .call(&x1)?;
        let x4 = add(self.auto.next("add"), &x2, &x4)?;
        let x5_1 = self.separable(&x1, filters, 3, 1, &format!("reduction_left4_{id}"))?;
        let x5_2 = MaxPooling2D::new(3)
            .strides(2)
            .name(&format!("reduction_right5_{id}"))
            .call(&h3)?;
        let x5 = add(format!("reduction_add4_{id}"), &x5_1, &x5_2)?;
        let x = Concatenate::new(-1)
            .name(&format!("reduction_concat_{id}"))
            .call_many(&[&x2, &x3, &x4, &x5])?;
        Ok((x, ip.clone()))
    }
}

/// NASNetMobile (`keras.applications.NASNetMobile`), not built.
pub(super) fn nasnet_mobile(options: &Options) -> Result<Model> {
    nasnet(options, &MOBILE, 224, "NASNetMobile", "nasnet_mobile")
}

/// Keras's `NASNet(...)` of `shape` at `default_size`, named `name` unless the options say.
fn nasnet(options: &Options, shape: &Shape, default_size: usize, architecture: &str, name: &str) -> Result<Model> {
    options.no_family_arguments(architecture)?;
    let image = options.image_shape(architecture, default_size, 32)?;
    let mut b = Builder {
        auto: AutoNames::default(),
    };
    let input = image_input(options, image);
    let m = shape.filter_multiplier;
    let filters = shape.penultimate_filters / 24;
    let x = Conv2D::new(shape.stem_block_filters, 3)
        .strides(2)
        .use_bias(false)
        .kernel_initializer(Initializer::HeNormal)
        .name("stem_conv1")
        .call(&input)?;
    let x = bn("stem_bn1").call(&x)?;
    let (x, p) = b.reduction_cell(&x, None, filters / (m * m), "stem_1")?;
    let (mut x, mut p) = b.reduction_cell(&x, Some(&p), filters / m, "stem_2")?;
    let n = shape.num_blocks;
    for (stack, width) in [filters, filters * m, filters * m * m].into_iter().enumerate() {
        if stack > 0 {
            let (reduced, p0) = b.reduction_cell(&x, Some(&p), width, &format!("reduce_{}", stack * n))?;
            x = reduced;
            if !shape.skip_reduction {
                p = p0;
            }
        }
        for i in 0..n {
            let id = match stack {
                0 => i.to_string(),
                _ => (stack * n + i + 1).to_string(),
            };
            (x, p) = b.normal_cell(&x, Some(&p), width, &id)?;
        }
    }
    let x = b.relu(&x)?;
    let x = match options.include_top {
        true => {
            let x = GlobalAveragePooling2D::new()
                .name(&b.auto.next("global_average_pooling2d"))
                .call(&x)?;
            Dense::new(options.classes)
                .activation(options.activation())
                .name("predictions")
                .call(&x)?
        }
        false => pool(x, options, (None, None), &mut b.auto)?,
    };
    graph(&input, &x, options.name.as_deref().unwrap_or(name))
}
