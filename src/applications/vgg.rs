//! VGG16 and VGG19, as `keras/src/applications/vgg16.py` and `vgg19.py` build them: five
//! blocks of 3×3 ReLU convolutions each ending in 2×2 max pooling, then (with the classifier)
//! two 4096-wide ReLU layers.

use super::options::{AutoNames, Options, graph, image_input, pool};
use crate::error::Result;
use crate::layers::{Conv2D, Dense, Flatten, MaxPooling2D};
use crate::model::{LayerCall, Model};

/// VGG with `convolutions[b]` convolutions in block `b + 1` (`[2, 2, 3, 3, 3]` is VGG16),
/// named `name`, not built.
pub(super) fn vgg(options: &Options, convolutions: [usize; 5], name: &str, architecture: &str) -> Result<Model> {
    options.no_family_arguments(architecture)?;
    let shape = options.image_shape(architecture, 224, 32)?;
    let mut auto = AutoNames::default();
    let input = image_input(options, shape);
    let mut x = input.clone();
    for (b, (&count, filters)) in convolutions.iter().zip([64, 128, 256, 512, 512]).enumerate() {
        for c in 1..=count {
            x = Conv2D::new(filters, 3)
                .activation("relu")
                .padding("same")
                .name(&format!("block{}_conv{c}", b + 1))
                .call(&x)?;
        }
        x = MaxPooling2D::new(2)
            .strides(2)
            .name(&format!("block{}_pool", b + 1))
            .call(&x)?;
    }
    let x = match options.include_top {
        true => {
            let x = Flatten::new().name("flatten").call(&x)?;
            let x = Dense::new(4096).activation("relu").name("fc1").call(&x)?;
            let x = Dense::new(4096).activation("relu").name("fc2").call(&x)?;
            Dense::new(options.classes)
                .activation(options.activation())
                .name("predictions")
                .call(&x)?
        }
        false => pool(x, options, (None, None), &mut auto)?,
    };
    graph(&input, &x, options.name.as_deref().unwrap_or(name))
}
