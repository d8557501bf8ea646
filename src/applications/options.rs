//! Keras's arguments to every `keras.applications` builder, and what the builders share: the
//! input shape check (`obtain_input_shape`), the pooling of a model without its classifier,
//! Keras's automatic layer names, and loading a weights file by layer name.

use crate::error::{Error, Result};
use crate::layers::{GlobalAveragePooling2D, GlobalMaxPooling2D, Input};
use crate::model::{LayerCall, Model, Node};
use std::collections::HashMap;
use std::path::PathBuf;

/// What pools the last feature map of a model built without its classifier
/// (`include_top: false`), as Keras's `pooling="avg"` / `"max"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// `GlobalAveragePooling2D`: the output is `(None, channels)`.
    Avg,
    /// `GlobalMaxPooling2D`: the output is `(None, channels)`.
    Max,
}

impl Pooling {
    /// Keras's name: `"avg"` or `"max"`.
    pub fn from_name(name: &str) -> Result<Pooling> {
        match name {
            "avg" => Ok(Pooling::Avg),
            "max" => Ok(Pooling::Max),
            other => Err(Error::unknown("pooling", other, &["avg", "max"])),
        }
    }
}

/// Keras's `weights="imagenet"`, as [`Options::weights`] takes it: the ImageNet weights Keras
/// keeps under `~/.keras/models/` (or `$KERAS_HOME/models/`) once it has downloaded them.
/// strata downloads nothing: the file must be there.
pub const IMAGENET: &str = "imagenet";

/// Keras's arguments to an application builder, with Keras's defaults
/// (`Options::default()`): the full classifier for 1000 classes at the architecture's default
/// input size, random weights.
///
/// ```
/// use strata::applications::{self, Options};
/// # fn main() -> strata::Result<()> {
/// // keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), include_top=False,
/// //                                pooling="avg", weights=None)
/// let base = applications::mobilenet_v2(&Options {
///     alpha: 0.35,
///     input_shape: Some([96, 96, 3]),
///     include_top: false,
///     pooling: Some(applications::Pooling::Avg),
///     ..Options::default()
/// })?;
/// assert_eq!(base.output_shape(), Some(&[1280][..]));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    /// Per-sample `(height, width, channels)`. Defaults to the architecture's own size
    /// (224×224×3 for most, 299×299×3 for InceptionV3 and Xception, 600×600×3 for
    /// EfficientNetB7); each has a smallest size (32, 75 for InceptionV3, 71 for Xception).
    pub input_shape: Option<[usize; 3]>,
    /// Keras's `input_tensor`: a node of a functional graph under construction to build the
    /// model on, instead of a new input; the model's inputs are the inputs that node comes from
    /// (layers before it become the model's first layers). Its shape is the input shape
    /// (`input_shape`, if given too, must equal it). Defaults to none.
    pub input_tensor: Option<Node>,
    /// Whether the classifier (the "top": pooling and `Dense(classes)`) is built. Defaults to
    /// true.
    pub include_top: bool,
    /// A weights file to load into the model by layer name: a Keras `.h5` weights file (the
    /// ones `weights="imagenet"` downloads to `~/.keras/models/`), a Keras `.keras` archive of
    /// the same architecture, a strata `.safetensors` file, or [`IMAGENET`] (`"imagenet"`: the
    /// file Keras would download, read from Keras's cache). Defaults to none (random weights,
    /// as Keras's `weights=None`).
    pub weights: Option<PathBuf>,
    /// With `include_top: false`, pools the last feature map: `Avg`, `Max` or none (the 4-D
    /// feature map is the output). Defaults to none; ignored with the classifier.
    pub pooling: Option<Pooling>,
    /// Number of classes of the classifier. Defaults to 1000 (which ImageNet weights need).
    pub classes: usize,
    /// The classifier's activation; `None` gives the logits. Defaults to `"softmax"`; with
    /// weights, only `"softmax"` or none (as Keras's `validate_activation`).
    pub classifier_activation: Option<String>,
    /// Width multiplier of the MobileNets (each layer's filters times `alpha`). Defaults to
    /// 1.0; the other architectures have no such argument and refuse any other value.
    pub alpha: f32,
    /// MobileNet's `depth_multiplier`: output channels per input channel of each depthwise
    /// convolution. Defaults to 1; only MobileNet takes another value.
    pub depth_multiplier: usize,
    /// The dropout rate before the classifier: MobileNet's `dropout` (Keras's default 0.001)
    /// and MobileNetV3's `dropout_rate` (0.2; 0 leaves the Dropout layer out). `None`: the
    /// family's default; the other architectures refuse a value.
    pub dropout: Option<f32>,
    /// MobileNetV3's `minimalistic`: 3×3 kernels, ReLU and no squeeze-and-excitation
    /// throughout. Defaults to false; only MobileNetV3 takes true.
    pub minimalistic: bool,
    /// MobileNetV3's and EfficientNetV2's `include_preprocessing`: whether the model scales
    /// 0–255 pixels itself (a `Rescaling`, and for EfficientNetV2 a `Normalization`). Defaults
    /// to true; only those two families take false, and then expect pixels prepared as
    /// Keras's "tf" (MobileNetV3) or "torch" (EfficientNetV2) mode does.
    pub include_preprocessing: bool,
    /// The model's name. Defaults to Keras's (`resnet50`, `mobilenetv2_1.00_224`, ...).
    pub name: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            input_shape: None,
            input_tensor: None,
            include_top: true,
            weights: None,
            pooling: None,
            classes: 1000,
            classifier_activation: Some("softmax".into()),
            alpha: 1.0,
            depth_multiplier: 1,
            dropout: None,
            minimalistic: false,
            include_preprocessing: true,
            name: None,
        }
    }
}

/// The arguments only some families take, by Keras's names.
const FAMILY_ARGUMENTS: [&str; 5] = [
    "alpha",
    "depth_multiplier",
    "dropout",
    "minimalistic",
    "include_preprocessing",
];

impl Options {
    /// Whether the weights are Keras's ImageNet ones (`weights="imagenet"`).
    pub(super) fn imagenet(&self) -> bool {
        self.weights.as_deref() == Some(std::path::Path::new(IMAGENET))
    }

    /// The per-sample input shape: `input_tensor`'s, `input_shape`, or `default_size`² × 3.
    /// Checked as Keras's builders and `obtain_input_shape` check it: at least `min_size` high
    /// and wide, some channels; ImageNet weights with the classifier need 1000 classes and the
    /// default size, and ImageNet weights 3 channels; weights with the classifier take only a
    /// softmax or no activation.
    pub(super) fn image_shape(&self, architecture: &str, default_size: usize, min_size: usize) -> Result<[usize; 3]> {
        let usage = |message: String| Err(Error::Usage(format!("{architecture}: {message}")));
        let imagenet = self.imagenet();
        if imagenet && self.include_top && self.classes != 1000 {
            return usage(format!(
                "weights=\"imagenet\" with include_top needs classes = 1000 (ImageNet's), got classes = {}",
                self.classes
            ));
        }
        let shape = match (&self.input_tensor, self.input_shape) {
            (Some(tensor), given) => {
                let shape = match *tensor.shape() {
                    [height, width, channels] => [height, width, channels],
                    _ => {
                        return usage(format!(
                            "input_tensor must be an image node (height, width, channels), got shape {:?}",
                            tensor.shape()
                        ));
                    }
                };
                if given.is_some_and(|given| given != shape) {
                    return usage(format!(
                        "input_shape {:?} and input_tensor's shape {shape:?} differ",
                        given.unwrap_or_default()
                    ));
                }
                shape
            }
            (None, given) => given.unwrap_or([default_size, default_size, 3]),
        };
        let [height, width, channels] = shape;
        let default = [default_size, default_size, 3];
        if imagenet && self.include_top && shape != default {
            return usage(format!(
                "weights=\"imagenet\" with include_top needs input_shape ({default_size}, {default_size}, 3), got \
                 ({height}, {width}, {channels})"
            ));
        }
        if imagenet && channels != 3 {
            return usage(format!(
                "weights=\"imagenet\" needs 3 input channels, got input_shape ({height}, {width}, {channels})"
            ));
        }
        if height < min_size || width < min_size || channels == 0 {
            return usage(format!(
                "input_shape ({height}, {width}, {channels}) is too small; height and width must be at least \
                 {min_size}, with at least one channel"
            ));
        }
        if self.include_top && self.classes == 0 {
            return usage("classes must be at least 1".into());
        }
        let activation = self.classifier_activation.as_deref();
        if self.include_top && self.weights.is_some() && !matches!(activation, None | Some("softmax")) {
            return usage(format!(
                "with weights, classifier_activation must be \"softmax\" or none (the logits), got \"{}\"",
                activation.unwrap_or_default()
            ));
        }
        Ok(shape)
    }

    /// Refuses the family-specific arguments (`alpha`, `depth_multiplier`, `dropout`,
    /// `minimalistic`, `include_preprocessing`) other than `takes` when they differ from their
    /// defaults: `architecture` has no such argument.
    pub(super) fn family_arguments(&self, architecture: &str, takes: &[&str]) -> Result<()> {
        let set = [
            (self.alpha != 1.0).then(|| format!("alpha = {}", self.alpha)),
            (self.depth_multiplier != 1).then(|| format!("depth_multiplier = {}", self.depth_multiplier)),
            self.dropout.map(|rate| format!("dropout = {rate}")),
            self.minimalistic.then(|| "minimalistic = true".to_string()),
            (!self.include_preprocessing).then(|| "include_preprocessing = false".to_string()),
        ];
        for (argument, value) in FAMILY_ARGUMENTS.iter().zip(set) {
            if let Some(value) = value.filter(|_| !takes.contains(argument)) {
                let takes = match takes {
                    [] => format!("it takes none of {}", FAMILY_ARGUMENTS.join(", ")),
                    _ => format!("of {} it takes only {}", FAMILY_ARGUMENTS.join(", "), takes.join(", ")),
                };
                return Err(Error::Usage(format!(
                    "{architecture} has no {argument} argument (got {value}); {takes}"
                )));
            }
        }
        if let Some(rate) = self.dropout.filter(|rate| !(0.0..1.0).contains(rate)) {
            return Err(Error::Usage(format!(
                "{architecture}: dropout must be in [0, 1), got {rate}"
            )));
        }
        if self.depth_multiplier == 0 {
            return Err(Error::Usage(format!(
                "{architecture}: depth_multiplier must be at least 1"
            )));
        }
        Ok(())
    }

    /// Refuses every family-specific argument: `architecture` takes none.
    pub(super) fn no_family_arguments(&self, architecture: &str) -> Result<()> {
        self.family_arguments(architecture, &[])
    }

    /// With ImageNet weights, refuses a width (`alpha`) Keras has no weights for.
    pub(super) fn imagenet_alpha(&self, architecture: &str, alphas: &[f32]) -> Result<()> {
        if self.imagenet() && !alphas.contains(&self.alpha) {
            let listed: Vec<String> = alphas.iter().map(f32::to_string).collect();
            return Err(Error::Usage(format!(
                "{architecture}: with weights=\"imagenet\", alpha must be one of {}, got {}",
                listed.join(", "),
                self.alpha
            )));
        }
        Ok(())
    }

    /// The classifier's activation name (`linear` for logits).
    pub(super) fn activation(&self) -> &str {
        self.classifier_activation.as_deref().unwrap_or("linear")
    }
}

/// Keras's automatic layer names for the layers a builder leaves unnamed (`zero_padding2d`,
/// `zero_padding2d_1`, ...), counted per base name in the order the layers are made, as a
/// fresh Keras session names them.
#[derive(Default)]
pub(super) struct AutoNames(HashMap<&'static str, usize>);

impl AutoNames {
    /// The next name for a layer of snake-case class `base`.
    pub(super) fn next(&mut self, base: &'static str) -> String {
        let count = self.0.entry(base).or_insert(0);
        let name = match *count {
            0 => base.to_string(),
            n => format!("{base}_{n}"),
        };
        *count += 1;
        name
    }
}

/// The input node of an application: `options.input_tensor`, else a new input of `shape`
/// (Keras's `input_layer`).
pub(super) fn image_input(options: &Options, shape: [usize; 3]) -> Node {
    options.input_tensor.clone().unwrap_or_else(|| Input::node(&shape))
}

/// The pooling of a model without its classifier, under `names` (`(avg, max)`: Keras names
/// them in some families, e.g. ResNet's `avg_pool`, and leaves them to automatic names in
/// others).
pub(super) fn pool(
    x: Node,
    options: &Options,
    names: (Option<&str>, Option<&str>),
    auto: &mut AutoNames,
) -> Result<Node> {
    match options.pooling {
        None => Ok(x),
        Some(Pooling::Avg) => {
            let name = names
                .0
                .map_or_else(|| auto.next("global_average_pooling2d"), str::to_string);
            GlobalAveragePooling2D::new().name(&name).call(&x)
        }
        Some(Pooling::Max) => {
            let name = names
                .1
                .map_or_else(|| auto.next("global_max_pooling2d"), str::to_string);
            GlobalMaxPooling2D::new().name(&name).call(&x)
        }
    }
}

/// Keras's `correct_pad`: the zero padding before a stride-2 `valid` convolution of `kernel`
/// that centres the windows as `same` padding would, for an input of `height`×`width`:
/// `((k/2 - adjust, k/2), (k/2 - adjust, k/2))`, one fewer row (column) on top (left) when
/// the size is even.
pub(super) fn correct_pad(x: &Node, kernel: usize) -> ((usize, usize), (usize, usize)) {
    let half = kernel / 2;
    let adjust = |size: usize| usize::from(size.is_multiple_of(2));
    let (height, width) = (x.shape()[0], x.shape()[1]);
    ((half - adjust(height), half), (half - adjust(width), half))
}

/// The finished graph `input → output` as a model named `name`, not built yet (its weights
/// are made when it is first used, or by [`Model::build`]). An `input` made by other layers
/// (Keras's `input_tensor`) brings them along: the model starts from its source inputs.
pub(super) fn graph(input: &Node, output: &Node, name: &str) -> Result<Model> {
    let sources = input.source_inputs();
    let sources: Vec<&Node> = sources.iter().collect();
    let mut model = Model::functional_graph(&sources, &[output])?;
    model.set_name(name);
    Ok(model)
}

/// Loads `path` into the built `model` by layer name: a Keras `.keras` archive (imported,
/// then its weights copied by name), or what [`Model::load_weights`] reads (a Keras `.h5`
/// weights or model file, a strata file). Every weight of the model must be in the file with
/// its shape, and the file must hold no other; else an error names the first mismatch.
pub(super) fn load_by_name(model: &mut Model, path: &std::path::Path) -> Result<()> {
    let bytes = crate::fs::read_whole(path)?;
    if !bytes.starts_with(b"PK\x03\x04") {
        return model.load_weights(path);
    }
    let source = crate::io::import_keras_from(std::io::Cursor::new(bytes), path)?;
    let mut stored = source.weights();
    let mut loaded = Vec::new();
    for id in model.params().ids() {
        let name = model.params().name(id).to_string();
        let tensor = stored.remove(&name).ok_or_else(|| {
            Error::file(
                path,
                format!(
                    "has no weight '{name}' (model '{}' has a layer of that name)",
                    model.name()
                ),
            )
        })?;
        let expected = model.params().value(id).shape();
        if tensor.shape() != expected {
            return Err(Error::file(
                path,
                format!(
                    "weight '{name}' has shape {:?}, model '{}' expects {expected:?}",
                    tensor.shape(),
                    model.name()
                ),
            ));
        }
        loaded.push((id, tensor));
    }
    if let Some(extra) = stored.keys().min() {
        return Err(Error::file(
            path,
            format!(
                "holds weight '{extra}', which model '{}' does not have (and {} more)",
                model.name(),
                stored.len() - 1
            ),
        ));
    }
    for (id, tensor) in loaded {
        *model.params_mut().value_mut(id) = tensor;
    }
    Ok(())
}
