//! InceptionV3, as `keras/src/applications/inception_v3.py` builds it: a convolution stem, then
//! the "mixed" blocks, each concatenating parallel branches of factorized convolutions and a
//! pooling. Keras leaves its convolutions unnamed (`conv2d_17`, `batch_normalization_17`,
//! `activation_17`): they are named here in Keras's creation order.

use super::options::{AutoNames, Options, graph, image_input, pool};
use crate::error::Result;
use crate::layers::{
    Activation, AveragePooling2D, BatchNormalization, Concatenate, Conv2D, Dense, GlobalAveragePooling2D, MaxPooling2D,
};
use crate::model::{LayerCall, Model, Node};

/// The builder's state: Keras's automatic names.
struct Inception {
    auto: AutoNames,
}

impl Inception {
    /// Keras's `conv2d_bn`: a `rows`×`cols` convolution without bias, BatchNormalization
    /// without scale, ReLU; `same` padding and stride 1 unless told.
    fn conv_bn(
        &mut self,
        x: &Node,
        filters: usize,
        (rows, cols): (usize, usize),
        stride: usize,
        padding: &str,
    ) -> Result<Node> {
        let x = Conv2D::new(filters, (rows, cols))
            .strides(stride)
            .padding(padding)
            .use_bias(false)
            .name(&self.auto.next("conv2d"))
            .call(x)?;
        let x = BatchNormalization::new()
            .scale(false)
            .name(&self.auto.next("batch_normalization"))
            .call(&x)?;
        Activation::new("relu").name(&self.auto.next("activation")).call(&x)
    }

    /// `conv_bn` with `same` padding and stride 1.
    fn conv(&mut self, x: &Node, filters: usize, kernel: (usize, usize)) -> Result<Node> {
        self.conv_bn(x, filters, kernel, 1, "same")
    }

    fn average_pool(&mut self, x: &Node) -> Result<Node> {
        AveragePooling2D::new(3)
            .strides(1)
            .padding("same")
            .name(&self.auto.next("average_pooling2d"))
            .call(x)
    }

    fn max_pool(&mut self, x: &Node) -> Result<Node> {
        MaxPooling2D::new(3)
            .strides(2)
            .name(&self.auto.next("max_pooling2d"))
            .call(x)
    }

    /// mixed0–2: 1×1, 5×5, double 3×3 and pooled branches (`pool_filters` on the last).
    fn block_35(&mut self, x: &Node, pool_filters: usize, name: &str) -> Result<Node> {
        let b1 = self.conv(x, 64, (1, 1))?;
        let b5 = self.conv(x, 48, (1, 1))?;
        let b5 = self.conv(&b5, 64, (5, 5))?;
        let b3 = self.conv(x, 64, (1, 1))?;
        let b3 = self.conv(&b3, 96, (3, 3))?;
        let b3 = self.conv(&b3, 96, (3, 3))?;
        let bp = self.average_pool(x)?;
        let bp = self.conv(&bp, pool_filters, (1, 1))?;
        Concatenate::new(-1).name(name).call_many(&[&b1, &b5, &b3, &bp])
    }

    /// mixed4–7: 1×1, factorized 7×7, double factorized 7×7 (`width` wide inside) and pooled.
    fn block_17(&mut self, x: &Node, width: usize, name: &str) -> Result<Node> {
        let b1 = self.conv(x, 192, (1, 1))?;
        let b7 = self.conv(x, width, (1, 1))?;
        let b7 = self.conv(&b7, width, (1, 7))?;
        let b7 = self.conv(&b7, 192, (7, 1))?;
        let bd = self.conv(x, width, (1, 1))?;
        let bd = self.conv(&bd, width, (7, 1))?;
        let bd = self.conv(&bd, width, (1, 7))?;
        let bd = self.conv(&bd, width, (7, 1))?;
        let bd = self.conv(&bd, 192, (1, 7))?;
        let bp = self.average_pool(x)?;
        let bp = self.conv(&bp, 192, (1, 1))?;
        Concatenate::new(-1).name(name).call_many(&[&b1, &b7, &bd, &bp])
    }

    /// mixed9 and mixed10: 1×1, split 3×3, double split 3×3 and pooled branches.
    fn block_8(&mut self, x: &Node, i: usize) -> Result<Node> {
        let b1 = self.conv(x, 320, (1, 1))?;
        let b3 = self.conv(x, 384, (1, 1))?;
        let b3_1 = self.conv(&b3, 384, (1, 3))?;
        let b3_2 = self.conv(&b3, 384, (3, 1))?;
        let b3 = Concatenate::new(-1)
            .name(&format!("mixed9_{i}"))
            .call_many(&[&b3_1, &b3_2])?;
        let bd = self.conv(x, 448, (1, 1))?;
        let bd = self.conv(&bd, 384, (3, 3))?;
        let bd_1 = self.conv(&bd, 384, (1, 3))?;
        let bd_2 = self.conv(&bd, 384, (3, 1))?;
        let bd = Concatenate::new(-1)
            .name(&self.auto.next("concatenate"))
            .call_many(&[&bd_1, &bd_2])?;
        let bp = self.average_pool(x)?;
        let bp = self.conv(&bp, 192, (1, 1))?;
        Concatenate::new(-1)
            .name(&format!("mixed{}", 9 + i))
            .call_many(&[&b1, &b3, &bd, &bp])
    }
}

/// InceptionV3 (`keras.applications.InceptionV3`), not built.
pub(super) fn inception_v3(options: &Options) -> Result<Model> {
    options.no_family_arguments("InceptionV3")?;
    let shape = options.image_shape("InceptionV3", 299, 75)?;
    let mut net = Inception {
        auto: AutoNames::default(),
    };
    let input = image_input(options, shape);
    let x = net.conv_bn(&input, 32, (3, 3), 2, "valid")?;
    let x = net.conv_bn(&x, 32, (3, 3), 1, "valid")?;
    let x = net.conv(&x, 64, (3, 3))?;
    let x = net.max_pool(&x)?;
    let x = net.conv_bn(&x, 80, (1, 1), 1, "valid")?;
    let x = net.conv_bn(&x, 192, (3, 3), 1, "valid")?;
    let x = net.max_pool(&x)?;
    let x = net.block_35(&x, 32, "mixed0")?;
    let x = net.block_35(&x, 64, "mixed1")?;
    let x = net.block_35(&x, 64, "mixed2")?;
    // mixed3: a strided 3×3, a strided double 3×3 and max pooling, to 17×17.
    let b3 = net.conv_bn(&x, 384, (3, 3), 2, "valid")?;
    let bd = net.conv(&x, 64, (1, 1))?;
    let bd = net.conv(&bd, 96, (3, 3))?;
    let bd = net.conv_bn(&bd, 96, (3, 3), 2, "valid")?;
    let bp = net.max_pool(&x)?;
    let x = Concatenate::new(-1).name("mixed3").call_many(&[&b3, &bd, &bp])?;
    let x = net.block_17(&x, 128, "mixed4")?;
    let x = net.block_17(&x, 160, "mixed5")?;
    let x = net.block_17(&x, 160, "mixed6")?;
    let x = net.block_17(&x, 192, "mixed7")?;
    // mixed8: strided 3×3 and factorized 7×7 then 3×3 branches and max pooling, to 8×8.
    let b3 = net.conv(&x, 192, (1, 1))?;
    let b3 = net.conv_bn(&b3, 320, (3, 3), 2, "valid")?;
    let b7 = net.conv(&x, 192, (1, 1))?;
    let b7 = net.conv(&b7, 192, (1, 7))?;
    let b7 = net.conv(&b7, 192, (7, 1))?;
    let b7 = net.conv_bn(&b7, 192, (3, 3), 2, "valid")?;
    let bp = net.max_pool(&x)?;
    let x = Concatenate::new(-1).name("mixed8").call_many(&[&b3, &b7, &bp])?;
    let x = net.block_8(&x, 0)?;
    let x = net.block_8(&x, 1)?;
    let x = match options.include_top {
        true => {
            let x = GlobalAveragePooling2D::new().name("avg_pool").call(&x)?;
            Dense::new(options.classes)
                .activation(options.activation())
                .name("predictions")
                .call(&x)?
        }
        false => pool(x, options, (None, None), &mut net.auto)?,
    };
    graph(&input, &x, options.name.as_deref().unwrap_or("inception_v3"))
}
