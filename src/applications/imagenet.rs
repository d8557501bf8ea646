//! Keras's `keras/src/applications/imagenet_utils.py`: `preprocess_input` and
//! `decode_predictions`, on channels-last tensors.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::sync::OnceLock;

/// The 1000 ImageNet classes in the order ImageNet-1k models number their outputs, one
/// `wnid name` line each (see `imagenet_classes.README.md` beside it for its source and license).
const IMAGENET_CLASS_LIST: &str = include_str!("imagenet_classes.txt");

/// The number of ImageNet-1k classes.
pub const IMAGENET_CLASSES: usize = 1000;

/// The ImageNet channel means Keras subtracts in "caffe" mode, in BGR order, on 0–255 pixels.
const CAFFE_BGR_MEANS: [f32; 3] = [103.939, 116.779, 123.68];
/// The ImageNet channel means and standard deviations of "torch" mode, RGB, on [0, 1] pixels.
const TORCH_MEANS: [f32; 3] = [0.485, 0.456, 0.406];
const TORCH_STDS: [f32; 3] = [0.229, 0.224, 0.225];

/// How pixels of 0–255 are prepared for a model: Keras's three `preprocess_input` modes, and
/// two that Keras writes by hand (`x / 255`, and nothing at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// RGB → BGR, then the ImageNet BGR means subtracted, no scaling (VGG, ResNet). Keras's
    /// default mode.
    Caffe,
    /// `x / 127.5 − 1`, into [−1, 1] (MobileNet, MobileNetV2, Inception, Xception, ResNetV2,
    /// NASNet).
    Tf,
    /// `x / 255`, then each channel normalized with the ImageNet mean and standard deviation
    /// (DenseNet).
    Torch,
    /// `x / 255`, into [0, 1]: how strata prepares MNIST and image folders (`rescale=1/255`).
    Unit,
    /// The pixels as they are, 0–255, for models that rescale inside (EfficientNet,
    /// MobileNetV3, ConvNeXt). Written `"none"`.
    #[serde(rename = "none")]
    Raw,
}

impl Mode {
    /// Every mode's name, as [`Mode::parse`] reads them.
    pub const NAMES: [&'static str; 5] = ["caffe", "tf", "torch", "unit", "none"];

    /// The mode named `name` (`"caffe"`, `"tf"`, `"torch"`, `"unit"`, `"none"`); any other
    /// name is an error listing them.
    pub fn parse(name: &str) -> Result<Mode> {
        match name {
            "caffe" => Ok(Mode::Caffe),
            "tf" => Ok(Mode::Tf),
            "torch" => Ok(Mode::Torch),
            "unit" => Ok(Mode::Unit),
            "none" => Ok(Mode::Raw),
            other => Err(Error::unknown("preprocessing mode", other, &Mode::NAMES)),
        }
    }

    /// The mode's name, as [`Mode::parse`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Caffe => "caffe",
            Mode::Tf => "tf",
            Mode::Torch => "torch",
            Mode::Unit => "unit",
            Mode::Raw => "none",
        }
    }
}

/// Keras's `preprocess_input(x, mode=...)` on channels-last images of 0–255 pixels (any rank,
/// the channels last): a new tensor of the same shape. "caffe" and "torch" work per channel on
/// RGB images, so they need 3 channels; the others take any.
pub fn preprocess_input(images: &Tensor, mode: Mode) -> Result<Tensor> {
    let mut out = images.clone();
    prepare_in_place(&mut out, mode)?;
    Ok(out)
}

/// [`preprocess_input`] in place, for data sets too large to copy.
pub fn prepare_in_place(images: &mut Tensor, mode: Mode) -> Result<()> {
    let channels = images.shape().last().copied().unwrap_or(0);
    if matches!(mode, Mode::Caffe | Mode::Torch) && channels != 3 {
        return Err(Error::invalid(
            "images",
            shape_text(images.shape()),
            format!(
                "\"{}\" mode prepares RGB images: the last axis must hold 3 channels",
                mode.name()
            ),
        ));
    }
    match mode {
        Mode::Tf => images.map_in_place(|v| v / 127.5 - 1.0),
        Mode::Unit => images.map_in_place(|v| v / 255.0),
        Mode::Raw => {}
        Mode::Torch => {
            for pixel in images.data_mut().chunks_exact_mut(3) {
                for (c, v) in pixel.iter_mut().enumerate() {
                    *v = (*v / 255.0 - TORCH_MEANS[c]) / TORCH_STDS[c];
                }
            }
        }
        Mode::Caffe => {
            for pixel in images.data_mut().chunks_exact_mut(3) {
                pixel.reverse();
                for (c, v) in pixel.iter_mut().enumerate() {
                    *v -= CAFFE_BGR_MEANS[c];
                }
            }
        }
    }
    Ok(())
}

/// One of the most probable classes of a sample, as Keras's `decode_predictions` gives them.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The output's index.
    pub index: usize,
    /// The class's WordNet id (`"n02123045"`).
    pub wnid: &'static str,
    /// The class's name (`"tabby"`).
    pub name: &'static str,
    /// The model's output for it.
    pub probability: f32,
}

/// Keras's `decode_predictions(preds, top)`: the `top` most probable ImageNet classes of each
/// sample of `preds` `(samples, 1000)`, most probable first. Another shape, or `top` 0, is an
/// error; `top` above 1000 gives all 1000.
pub fn decode_predictions(preds: &Tensor, top: usize) -> Result<Vec<Vec<Prediction>>> {
    if preds.shape().len() != 2 || preds.shape()[1] != IMAGENET_CLASSES {
        return Err(Error::invalid(
            "preds",
            shape_text(preds.shape()),
            "decode_predictions expects a batch of predictions of shape (samples, 1000)",
        ));
    }
    if top == 0 {
        return Err(Error::invalid("top", 0, "must be at least 1"));
    }
    let classes = imagenet_classes();
    Ok(preds
        .data()
        .chunks_exact(IMAGENET_CLASSES)
        .map(|row| {
            top_k(row, top)
                .into_iter()
                .map(|(index, probability)| Prediction {
                    index,
                    wnid: classes[index].0,
                    name: classes[index].1,
                    probability,
                })
                .collect()
        })
        .collect())
}

/// The `k` largest values of `row` with their indices, largest first (ties: lower index first).
pub(crate) fn top_k(row: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut ranked: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(k);
    ranked
}

/// The 1000 ImageNet classes as `(wnid, name)`, in output order: the names Keras's
/// `imagenet_class_index.json` gives them (`"tench"`, ..., `"toilet_tissue"`).
pub fn imagenet_classes() -> &'static [(&'static str, &'static str)] {
    static CLASSES: OnceLock<Vec<(&'static str, &'static str)>> = OnceLock::new();
    CLASSES.get_or_init(|| {
        IMAGENET_CLASS_LIST
            .lines()
            .map(|line| line.split_once(' ').expect("each bundled line is `wnid name`"))
            .collect()
    })
}

/// A whole tensor's shape as Keras prints an array's: `(2, 224, 224, 3)`.
fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("({})", dims.join(", "))
}
