//! The applications by name, and the Rust functions that build them: `mobilenet_v2(&options)`
//! is Keras's `keras.applications.MobileNetV2(...)`.

use super::imagenet::Mode;
use super::options::{Options, load_by_name};
use super::record::ImageInput;
use super::{densenet, efficientnet, efficientnet_v2, mobilenet_v3, resnet, vgg};
use crate::error::{Error, Result};
use crate::model::Model;
use std::path::PathBuf;

/// One architecture: strata's name (as the Rust function), Keras's class name, its family's
/// `preprocess_input` mode, the function that lays out its graph, and the name of the file
/// Keras keeps its ImageNet weights in (`{notop}` stands for Keras's suffix of the weights
/// without the classifier, `_notop` in most families).
struct Application {
    name: &'static str,
    keras: &'static str,
    mode: Mode,
    graph: fn(&Options) -> Result<Model>,
    weights_file: &'static str,
}

/// Keras's common name of an ImageNet weights file: `{stem}_weights_tf_dim_ordering_tf_kernels`.
macro_rules! tf_kernels {
    ($stem:literal) => {
        concat!($stem, "_weights_tf_dim_ordering_tf_kernels{notop}.h5")
    };
}

/// Every architecture, in Keras's documentation order.
const APPLICATIONS: &[Application] = &[
    Application {
        name: "vgg16",
        keras: "VGG16",
        mode: Mode::Caffe,
        graph: |o| vgg::vgg(o, [2, 2, 3, 3, 3], "vgg16", "VGG16"),
        weights_file: tf_kernels!("vgg16"),
    },
    Application {
        name: "vgg19",
        keras: "VGG19",
        mode: Mode::Caffe,
        graph: |o| vgg::vgg(o, [2, 2, 4, 4, 4], "vgg19", "VGG19"),
        weights_file: tf_kernels!("vgg19"),
    },
    Application {
        name: "resnet50",
        keras: "ResNet50",
        mode: Mode::Caffe,
        graph: |o| resnet::resnet(o, [3, 4, 6, 3], false, "resnet50", "ResNet50"),
        weights_file: tf_kernels!("resnet50"),
    },
    Application {
        name: "resnet101",
        keras: "ResNet101",
        mode: Mode::Caffe,
        graph: |o| resnet::resnet(o, [3, 4, 23, 3], false, "resnet101", "ResNet101"),
        weights_file: tf_kernels!("resnet101"),
    },
    Application {
        name: "resnet152",
        keras: "ResNet152",
        mode: Mode::Caffe,
        graph: |o| resnet::resnet(o, [3, 8, 36, 3], false, "resnet152", "ResNet152"),
        weights_file: tf_kernels!("resnet152"),
    },
    Application {
        name: "resnet50_v2",
        keras: "ResNet50V2",
        mode: Mode::Tf,
        graph: |o| resnet::resnet(o, [3, 4, 6, 3], true, "resnet50v2", "ResNet50V2"),
        weights_file: tf_kernels!("resnet50v2"),
    },
    Application {
        name: "resnet101_v2",
        keras: "ResNet101V2",
        mode: Mode::Tf,
        graph: |o| resnet::resnet(o, [3, 4, 23, 3], true, "resnet101v2", "ResNet101V2"),
        weights_file: tf_kernels!("resnet101v2"),
    },
    Application {
        name: "resnet152_v2",
        keras: "ResNet152V2",
        mode: Mode::Tf,
        graph: |o| resnet::resnet(o, [3, 8, 36, 3], true, "resnet152v2", "ResNet152V2"),
        weights_file: tf_kernels!("resnet152v2"),
    },
    Application {
        name: "mobilenet",
        keras: "MobileNet",
        mode: Mode::Tf,
        graph: super::mobilenet::mobilenet,
        weights_file: "mobilenet_{alpha_text}_{rows}_tf{no_top}.h5",
    },
    Application {
        name: "mobilenet_v2",
        keras: "MobileNetV2",
        mode: Mode::Tf,
        graph: super::mobilenet::mobilenet_v2,
        weights_file: "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}{no_top}.h5",
    },
    Application {
        name: "mobilenet_v3_small",
        keras: "MobileNetV3Small",
        mode: Mode::Raw,
        graph: |o| mobilenet_v3::mobilenet_v3(o, false),
        weights_file: "weights_mobilenet_v3_small{minimalistic}_224_{alpha}_float{no_top_v2}.h5",
    },
    Application {
        name: "mobilenet_v3_large",
        keras: "MobileNetV3Large",
        mode: Mode::Raw,
        graph: |o| mobilenet_v3::mobilenet_v3(o, true),
        weights_file: "weights_mobilenet_v3_large{minimalistic}_224_{alpha}_float{no_top_v2}.h5",
    },
    Application {
        name: "densenet121",
        keras: "DenseNet121",
        mode: Mode::Torch,
        graph: |o| densenet::densenet(o, [6, 12, 24, 16], "densenet121", "DenseNet121"),
        weights_file: tf_kernels!("densenet121"),
    },
    Application {
        name: "densenet169",
        keras: "DenseNet169",
        mode: Mode::Torch,
        graph: |o| densenet::densenet(o, [6, 12, 32, 32], "densenet169", "DenseNet169"),
        weights_file: tf_kernels!("densenet169"),
    },
    Application {
        name: "densenet201",
        keras: "DenseNet201",
        mode: Mode::Torch,
        graph: |o| densenet::densenet(o, [6, 12, 48, 32], "densenet201", "DenseNet201"),
        weights_file: tf_kernels!("densenet201"),
    },
    Application {
        name: "efficientnet_b0",
        keras: "EfficientNetB0",
        mode: Mode::Raw,
        graph: |o| efficientnet::efficientnet(o, 0),
        weights_file: "efficientnetb0{notop}.h5",
    },
    Application {
        name: "efficientnet_b1",
        keras: "EfficientNetB1",
        mode: Mode::Raw,
        graph: |o| efficientnet::efficientnet(o, 1),
        weights_file: "efficientnetb1{notop}.h5",
    },
    Application {
        name: "efficientnet_b2",
        keras: "EfficientNetB2",
        mode: Mode::Raw,
        graph: |o| efficientnet::efficientnet(o, 2),
        weights_file: "efficientnetb2{notop}.h5",
    },
    Application {
        name: "efficientnet_b3",
        keras: "EfficientNetB3",
        mode: Mode::Raw,
        graph: |o| efficientnet::efficientnet(o, 3),
        weights_file: "efficientnetb3{notop}.h5",
    },
    Application {
        name: "efficientnet_b4",
        keras: "EfficientNetB4",
        mode: Mode::Raw,
        graph: |o| efficientnet::efficientnet(o, 4),
        weights_file: "efficientnetb4{notop}.h5",
    },
    Application {
        name: "efficientnet_b5",
        keras: "EfficientNetB5",
        mode: Mode::Raw,
        graph: |o| efficientnet::efficientnet(o, 5),
        weights_file: "efficientnetb5{notop}.h5",
    },
    Application {
        name: "efficientnet_b6",
        keras: "EfficientNetB6",
        mode: Mode::Raw,
        graph: |o| efficientnet::efficientnet(o, 6),
        weights_file: "efficientnetb6{notop}.h5",
    },
    Application {
        name: "efficientnet_b7",
        keras: "EfficientNetB7",
        mode: Mode::Raw,
        graph: |o| efficientnet::efficientnet(o, 7),
        weights_file: "efficientnetb7{notop}.h5",
    },
    Application {
        name: "efficientnet_v2_b0",
        keras: "EfficientNetV2B0",
        mode: Mode::Raw,
        graph: |o| efficientnet_v2::efficientnet_v2(o, 0),
        weights_file: "efficientnetv2-b0{notop}.h5",
    },
    Application {
        name: "efficientnet_v2_b1",
        keras: "EfficientNetV2B1",
        mode: Mode::Raw,
        graph: |o| efficientnet_v2::efficientnet_v2(o, 1),
        weights_file: "efficientnetv2-b1{notop}.h5",
    },
    Application {
        name: "efficientnet_v2_b2",
        keras: "EfficientNetV2B2",
        mode: Mode::Raw,
        graph: |o| efficientnet_v2::efficientnet_v2(o, 2),
        weights_file: "efficientnetv2-b2{notop}.h5",
    },
    Application {
        name: "efficientnet_v2_b3",
        keras: "EfficientNetV2B3",
        mode: Mode::Raw,
        graph: |o| efficientnet_v2::efficientnet_v2(o, 3),
        weights_file: "efficientnetv2-b3{notop}.h5",
    },
    Application {
        name: "inception_v3",
        keras: "InceptionV3",
        mode: Mode::Tf,
        graph: super::inception_v3::inception_v3,
        weights_file: tf_kernels!("inception_v3"),
    },
    Application {
        name: "xception",
        keras: "Xception",
        mode: Mode::Tf,
        graph: super::xception::xception,
        weights_file: tf_kernels!("xception"),
    },
    Application {
        name: "nasnet_mobile",
        keras: "NASNetMobile",
        mode: Mode::Tf,
        graph: super::nasnet::nasnet_mobile,
        weights_file: "nasnet_mobile{no_top}.h5",
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

/// Every application as `(strata's name, Keras's name, its family's preprocessing mode)`, in
/// Keras's documentation order: `("mobilenet_v2", "MobileNetV2", Mode::Tf)`, ...
pub fn keras_names() -> Vec<(&'static str, &'static str, Mode)> {
    APPLICATIONS.iter().map(|a| (a.name, a.keras, a.mode)).collect()
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
/// weights of `options.weights` loaded by layer name. The model records how its images are
/// prepared (its family's `preprocess_input` mode, or "tf" / "torch" for a MobileNetV3 /
/// EfficientNetV2 built without its own preprocessing), so `strata predict` prepares them.
pub fn application(name: &str, options: &Options) -> Result<Model> {
    let entry = find(name)?;
    let mut model = (entry.graph)(options)?;
    let shape = model
        .layers()
        .first()
        .and_then(|l| l.declared_input_shape())
        .map(<[usize]>::to_vec)
        .ok_or_else(|| Error::Usage(format!("{}: the graph has no input shape", entry.keras)))?;
    // Keras's cached file is found before any weight is made: a missing one fails at once.
    let weights = match &options.weights {
        Some(_) if options.imagenet() => Some(imagenet_weights(entry, options, &shape)?),
        other => other.clone(),
    };
    model.build(&shape)?;
    if let Some(path) = weights {
        load_by_name(&mut model, &path)?;
    }
    let mode = match (options.include_preprocessing, entry.name) {
        (false, family) if family.starts_with("mobilenet_v3") => Mode::Tf,
        (false, family) if family.starts_with("efficientnet_v2") => Mode::Torch,
        _ => entry.mode,
    };
    let image_size = Some((shape[0], shape[1]));
    ImageInput { image_size, mode }.attach_to(&mut model);
    Ok(model)
}

/// The name of the file Keras keeps `entry`'s ImageNet weights in for `options` and the
/// per-sample input `shape` (`weights="imagenet"` downloads it under that name).
fn imagenet_file_name(entry: &Application, options: &Options, shape: &[usize]) -> String {
    let top = options.include_top;
    let alpha = options.alpha;
    // Python's str(float(alpha)): 1.0, 0.35, 0.5.
    let python_alpha = match alpha.fract() == 0.0 {
        true => format!("{alpha:.1}"),
        false => alpha.to_string(),
    };
    let alpha_text = [(1.0, "1_0"), (0.75, "7_5"), (0.5, "5_0")]
        .iter()
        .find(|(a, _)| *a == alpha)
        .map_or("2_5", |(_, text)| *text);
    // Sizes other than the ones Keras has weights for load the 224×224 ones.
    let sizes: &[usize] = match entry.name {
        "mobilenet" => &[128, 160, 192, 224],
        _ => &[96, 128, 160, 192, 224],
    };
    let rows = match shape {
        &[rows, cols, _] if rows == cols && sizes.contains(&rows) => rows,
        _ => 224,
    };
    let suffix = |text: &str| if top { String::new() } else { text.to_string() };
    entry
        .weights_file
        .replace("{notop}", &suffix("_notop"))
        .replace("{no_top_v2}", &suffix("_no_top_v2"))
        .replace("{no_top}", &suffix("_no_top"))
        .replace("{alpha_text}", alpha_text)
        .replace("{alpha}", &python_alpha)
        .replace("{rows}", &rows.to_string())
        .replace(
            "{minimalistic}",
            if options.minimalistic { "_minimalistic" } else { "" },
        )
}

/// Where Keras keeps `entry`'s ImageNet weights: `$KERAS_HOME/models/` or `~/.keras/models/`,
/// the first holding the file. strata downloads nothing: a missing file is an error naming it
/// and how to get it.
fn imagenet_weights(entry: &Application, options: &Options, shape: &[usize]) -> Result<PathBuf> {
    let file = imagenet_file_name(entry, options, shape);
    let mut folders = Vec::new();
    if let Some(home) = std::env::var_os("KERAS_HOME").filter(|h| !h.is_empty()) {
        folders.push(PathBuf::from(home).join("models"));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        folders.push(PathBuf::from(home).join(".keras").join("models"));
    }
    let candidates: Vec<PathBuf> = folders.iter().map(|folder| folder.join(&file)).collect();
    if let Some(found) = candidates.iter().find(|path| path.is_file()) {
        return Ok(found.clone());
    }
    let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(Error::Usage(format!(
        "{}: weights=\"imagenet\" reads Keras's cached {file}, which is not in {}; strata downloads nothing: \
         run keras.applications.{}(weights=\"imagenet\") once with Keras (or copy the file there), or give the \
         file's path as weights",
        entry.keras,
        match looked.is_empty() {
            true => "any Keras folder (neither KERAS_HOME nor HOME is set)".to_string(),
            false => looked.join(" or "),
        },
        entry.keras
    )))
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
    nasnet_mobile => "NASNetMobile",
);
