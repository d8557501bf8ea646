//! The applications by name, and the Rust functions that build them: `mobilenet_v2(&options)`
//! is Keras's `keras.applications.MobileNetV2(...)`.

use super::imagenet::Mode;
use super::options::{Options, load_by_name};
use super::record::ImageInput;
use super::{densenet, efficientnet, efficientnet_v2, mobilenet_v3, resnet, vgg};
use crate::error::{Error, Result};
use crate::model::Model;

/// One architecture: strata's name (as the Rust function), Keras's class name, its family's
/// `preprocess_input` mode, and the function that lays out its graph.
struct Application {
    name: &'static str,
    keras: &'static str,
    mode: Mode,
    graph: fn(&Options) -> Result<Model>,
}

/// Every architecture, in Keras's documentation order.
const APPLICATIONS: &[Application] = &[
    Application {
        name: "vgg16",
        keras: "VGG16",
        mode: Mode::Caffe,
        graph: |o| vgg::vgg(o, [2, 2, 3, 3, 3], "vgg16", "VGG16"),
    },
    Application {
        name: "vgg19",
        keras: "VGG19",
        mode: Mode::Caffe,
        graph: |o| vgg::vgg(o, [2, 2, 4, 4, 4], "vgg19", "VGG19"),
    },
    Application {
        name: "resnet50",
        keras: "ResNet50",
        mode: Mode::Caffe,
        graph: |o| resnet::resnet(o, [3, 4, 6, 3], false, "resnet50", "ResNet50"),
    },
    Application {
        name: "resnet101",
        keras: "ResNet101",
        mode: Mode::Caffe,
        graph: |o| resnet::resnet(o, [3, 4, 23, 3], false, "resnet101", "ResNet101"),
    },
    Application {
        name: "resnet152",
        keras: "ResNet152",
        mode: Mode::Caffe,
        graph: |o| resnet::resnet(o, [3, 8, 36, 3], false, "resnet152", "ResNet152"),
    },
    Application {
        name: "resnet50_v2",
        keras: "ResNet50V2",
        mode: Mode::Tf,
        graph: |o| resnet::resnet(o, [3, 4, 6, 3], true, "resnet50v2", "ResNet50V2"),
    },
    Application {
        name: "resnet101_v2",
        keras: "ResNet101V2",
        mode: Mode::Tf,
        graph: |o| resnet::resnet(o, [3, 4, 23, 3], true, "resnet101v2", "ResNet101V2"),
    },
    Application {
        name: "resnet152_v2",
        keras: "ResNet152V2",
        mode: Mode::Tf,
        graph: |o| resnet::resnet(o, [3, 8, 36, 3], true, "resnet152v2", "ResNet152V2"),
    },
    Application {
        name: "mobilenet",
        keras: "MobileNet",
        mode: Mode::Tf,
        graph: super::mobilenet::mobilenet,
    },
    Application {
        name: "mobilenet_v2",
        keras: "MobileNetV2",
        mode: Mode::Tf,
        graph: super::mobilenet::mobilenet_v2,
    },
    Application {
        name: "mobilenet_v3_small",
        keras: "MobileNetV3Small",
        mode: Mode::Raw,
        graph: |o| mobilenet_v3::mobilenet_v3(o, false),
    },
    Application {
        name: "mobilenet_v3_large",
        keras: "MobileNetV3Large",
        mode: Mode::Raw,
        graph: |o| mobilenet_v3::mobilenet_v3(o, true),
    },
    Application {
        name: "densenet121",
        keras: "DenseNet121",
        mode: Mode::Torch,
        graph: |o| densenet::densenet(o, [6, 12, 24, 16], "densenet121", "DenseNet121"),
    },
    Application {
        name: "densenet169",
        keras: "DenseNet169",
        mode: Mode::Torch,
        graph: |o| densenet::densenet(o, [6, 12, 32, 32], "densenet169", "DenseNet169"),
    },
    Application {
        name: "densenet201",
        keras: "DenseNet201",
        mode: Mode::Torch,
        graph: |o| densenet::densenet(o, [6, 12, 48, 32], "densenet201", "DenseNet201"),
    },
    Application {
        name: "efficientnet_b0",
        keras: "EfficientNetB0",
        mode: Mode::Raw,
        graph: |o| efficientnet::efficientnet(o, 0),
    },
    Application {
        name: "efficientnet_b1",
        keras: "EfficientNetB1",
        mode: Mode::Raw,
        graph: |o| efficientnet::efficientnet(o, 1),
    },
    Application {
        name: "efficientnet_b2",
        keras: "EfficientNetB2",
        mode: Mode::Raw,
        graph: |o| efficientnet::efficientnet(o, 2),
    },
    Application {
        name: "efficientnet_b3",
        keras: "EfficientNetB3",
        mode: Mode::Raw,
        graph: |o| efficientnet::efficientnet(o, 3),
    },
    Application {
        name: "efficientnet_b4",
        keras: "EfficientNetB4",
        mode: Mode::Raw,
        graph: |o| efficientnet::efficientnet(o, 4),
    },
    Application {
        name: "efficientnet_b5",
        keras: "EfficientNetB5",
        mode: Mode::Raw,
        graph: |o| efficientnet::efficientnet(o, 5),
    },
    Application {
        name: "efficientnet_b6",
        keras: "EfficientNetB6",
        mode: Mode::Raw,
        graph: |o| efficientnet::efficientnet(o, 6),
    },
    Application {
        name: "efficientnet_b7",
        keras: "EfficientNetB7",
        mode: Mode::Raw,
        graph: |o| efficientnet::efficientnet(o, 7),
    },
    Application {
        name: "efficientnet_v2_b0",
        keras: "EfficientNetV2B0",
        mode: Mode::Raw,
        graph: |o| efficientnet_v2::efficientnet_v2(o, 0),
    },
    Application {
        name: "efficientnet_v2_b1",
        keras: "EfficientNetV2B1",
        mode: Mode::Raw,
        graph: |o| efficientnet_v2::efficientnet_v2(o, 1),
    },
    Application {
        name: "efficientnet_v2_b2",
        keras: "EfficientNetV2B2",
        mode: Mode::Raw,
        graph: |o| efficientnet_v2::efficientnet_v2(o, 2),
    },
    Application {
        name: "efficientnet_v2_b3",
        keras: "EfficientNetV2B3",
        mode: Mode::Raw,
        graph: |o| efficientnet_v2::efficientnet_v2(o, 3),
    },
    Application {
        name: "inception_v3",
        keras: "InceptionV3",
        mode: Mode::Tf,
        graph: super::inception_v3::inception_v3,
    },
    Application {
        name: "xception",
        keras: "Xception",
        mode: Mode::Tf,
        graph: super::xception::xception,
    },
];

/// Finds an application by strata's name (`mobilenet_v2`) or Keras's (`MobileNetV2`): case and
/// underscores do not matter.
fn find(name: &str) -> Result<&'static Application> {
    let key = |s: &str| s.to_ascii_lowercase().replace('_', "");
    APPLICATIONS
        .iter()
        .find(|a| key(a.name) == key(name))
        .ok_or_else(|| Error::unknown("application", name, &names()))
}

/// strata's names of every application, as [`application`] and description files take them.
pub fn names() -> Vec<&'static str> {
    APPLICATIONS.iter().map(|a| a.name).collect()
}

/// The architecture `name` (strata's `mobilenet_v2` or Keras's `MobileNetV2`) with `options`,
/// not built: the graph with Keras's layer names, whose weights are made when the model is
/// first used ([`Model::build`], `compile`, `predict`). `options.weights` is not read here.
/// Summaries and parameter counts of any size cost no weight memory this way.
pub fn architecture(name: &str, options: &Options) -> Result<Model> {
    (find(name)?.graph)(options)
}

/// The application `name` (strata's `mobilenet_v2` or Keras's `MobileNetV2`) with `options`,
/// as Keras's builder makes it: built with random weights (Keras's initializers), then the
/// weights of `options.weights` loaded by layer name. The model records its family's
/// `preprocess_input` mode, so `strata predict` prepares images for it.
pub fn application(name: &str, options: &Options) -> Result<Model> {
    let entry = find(name)?;
    let mut model = (entry.graph)(options)?;
    let shape = options.input_shape.map(|s| s.to_vec());
    let shape = match shape {
        Some(shape) => shape,
        None => model
            .layers()
            .first()
            .and_then(|l| l.declared_input_shape())
            .map(<[usize]>::to_vec)
            .ok_or_else(|| Error::Usage(format!("{}: the graph has no input shape", entry.keras)))?,
    };
    model.build(&shape)?;
    if let Some(path) = &options.weights {
        load_by_name(&mut model, path)?;
    }
    let image_size = Some((shape[0], shape[1]));
    ImageInput {
        image_size,
        mode: entry.mode,
    }
    .attach_to(&mut model);
    Ok(model)
}

/// One public function per application, each Keras's builder of that name.
macro_rules! application_functions {
    ($($function:ident => $keras:literal),* $(,)?) => {
        $(
            #[doc = concat!("Keras's `keras.applications.", $keras, "(...)`: see [`application`] and [`Options`].")]
            pub fn $function(options: &Options) -> Result<Model> {
                application(stringify!($function), options)
            }
        )*
    };
}

application_functions!(
    vgg16 => "VGG16",
    vgg19 => "VGG19",
    resnet50 => "ResNet50",
    resnet101 => "ResNet101",
    resnet152 => "ResNet152",
    resnet50_v2 => "ResNet50V2",
    resnet101_v2 => "ResNet101V2",
    resnet152_v2 => "ResNet152V2",
    mobilenet => "MobileNet",
    mobilenet_v2 => "MobileNetV2",
    mobilenet_v3_small => "MobileNetV3Small",
    mobilenet_v3_large => "MobileNetV3Large",
    densenet121 => "DenseNet121",
    densenet169 => "DenseNet169",
    densenet201 => "DenseNet201",
    efficientnet_b0 => "EfficientNetB0",
    efficientnet_b1 => "EfficientNetB1",
    efficientnet_b2 => "EfficientNetB2",
    efficientnet_b3 => "EfficientNetB3",
    efficientnet_b4 => "EfficientNetB4",
    efficientnet_b5 => "EfficientNetB5",
    efficientnet_b6 => "EfficientNetB6",
    efficientnet_b7 => "EfficientNetB7",
    efficientnet_v2_b0 => "EfficientNetV2B0",
    efficientnet_v2_b1 => "EfficientNetV2B1",
    efficientnet_v2_b2 => "EfficientNetV2B2",
    efficientnet_v2_b3 => "EfficientNetV2B3",
    inception_v3 => "InceptionV3",
    xception => "Xception",
);
