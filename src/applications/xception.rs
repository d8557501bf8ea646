//! Xception, as `keras/src/applications/xception.py` builds it: an entry flow of separable
//! convolutions with strided 1×1 convolution shortcuts, eight middle-flow blocks with identity
//! shortcuts, an exit flow. Keras leaves the shortcuts and additions unnamed (`conv2d_1`,
//! `batch_normalization_1`, `add_1`): they are named here in Keras's creation order.

use super::options::{AutoNames, Options, graph, image_input, pool};
use crate::error::Result;
use crate::layers::{
    Activation, Add, BatchNormalization, Conv2D, Dense, GlobalAveragePooling2D, MaxPooling2D, SeparableConv2D,
};
use crate::model::{LayerCall, Model, Node};

fn relu(x: &Node, name: &str) -> Result<Node> {
    Activation::new("relu").name(name).call(x)
}

/// A 3×3 separable convolution without bias and its BatchNormalization, named `name` and
/// `{name}_bn`.
fn separable_bn(x: &Node, filters: usize, name: &str) -> Result<Node> {
    let x = SeparableConv2D::new(filters, 3)
        .padding("same")
        .use_bias(false)
        .name(name)
        .call(x)?;
    BatchNormalization::new().name(&format!("{name}_bn")).call(&x)
}

/// An entry- or exit-flow block `block{b}`: a strided 1×1 convolution shortcut to `filters.1`
/// (made first, as in Keras), \[ReLU,\] separable to `filters.0`, ReLU, separable to `filters.1`,
/// 3×3 stride-2 max pooling, added to the shortcut. Block 2 starts without the ReLU.
fn downsampling_block(x: &Node, filters: (usize, usize), b: usize, auto: &mut AutoNames) -> Result<Node> {
    let residual = Conv2D::new(filters.1, 1)
        .strides(2)
        .padding("same")
        .use_bias(false)
        .name(&auto.next("conv2d"))
        .call(x)?;
    let residual = BatchNormalization::new()
        .name(&auto.next("batch_normalization"))
        .call(&residual)?;
    let y = match b {
        2 => x.clone(),
        _ => relu(x, &format!("block{b}_sepconv1_act"))?,
    };
    let y = separable_bn(&y, filters.0, &format!("block{b}_sepconv1"))?;
    let y = relu(&y, &format!("block{b}_sepconv2_act"))?;
    let y = separable_bn(&y, filters.1, &format!("block{b}_sepconv2"))?;
    let y = MaxPooling2D::new(3)
        .strides(2)
        .padding("same")
        .name(&format!("block{b}_pool"))
        .call(&y)?;
    Add::new().name(&auto.next("add")).call_many(&[&y, &residual])
}

/// Xception (`keras.applications.Xception`), not built.
pub(super) fn xception(options: &Options) -> Result<Model> {
    options.no_family_arguments("Xception")?;
    let shape = options.image_shape("Xception", 299, 71)?;
    let mut auto = AutoNames::default();
    let input = image_input(options, shape);
    let x = Conv2D::new(32, 3)
        .strides(2)
        .use_bias(false)
        .name("block1_conv1")
        .call(&input)?;
    let x = BatchNormalization::new().name("block1_conv1_bn").call(&x)?;
    let x = relu(&x, "block1_conv1_act")?;
    let x = Conv2D::new(64, 3).use_bias(false).name("block1_conv2").call(&x)?;
    let x = BatchNormalization::new().name("block1_conv2_bn").call(&x)?;
    let mut x = relu(&x, "block1_conv2_act")?;
    for (b, filters) in [(2, (128, 128)), (3, (256, 256)), (4, (728, 728))] {
        x = downsampling_block(&x, filters, b, &mut auto)?;
    }
    for b in 5..13 {
        let residual = x.clone();
        for s in 1..=3 {
            x = relu(&x, &format!("block{b}_sepconv{s}_act"))?;
            x = separable_bn(&x, 728, &format!("block{b}_sepconv{s}"))?;
        }
        x = Add::new().name(&auto.next("add")).call_many(&[&x, &residual])?;
    }
    let x = downsampling_block(&x, (728, 1024), 13, &mut auto)?;
    let x = separable_bn(&x, 1536, "block14_sepconv1")?;
    let x = relu(&x, "block14_sepconv1_act")?;
    let x = separable_bn(&x, 2048, "block14_sepconv2")?;
    let x = relu(&x, "block14_sepconv2_act")?;
    let x = match options.include_top {
        true => {
            let x = GlobalAveragePooling2D::new().name("avg_pool").call(&x)?;
            Dense::new(options.classes)
                .activation(options.activation())
                .name("predictions")
                .call(&x)?
        }
        false => pool(x, options, (None, None), &mut auto)?,
    };
    graph(&input, &x, options.name.as_deref().unwrap_or("xception"))
}
