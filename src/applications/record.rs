//! How a model's images must be prepared, kept with the model: the size they are resized to
//! and the [`Mode`] their pixels go through. A model trained on image folders records what its
//! training did; an imported Keras application records its family's `preprocess_input` mode, so
//! prediction prepares new images the same way without being told.

use super::imagenet::Mode;
use crate::error::{Error, Result};
use crate::model::Model;
use serde::{Deserialize, Serialize};

/// The attachment key of a model's [`ImageInput`].
pub const IMAGE_INPUT: &str = "image_input";

/// How images are prepared for a model: resized to `image_size` (`(height, width)`; `None`: the
/// model's input size), then their 0–255 pixels prepared as `mode` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInput {
    /// `(height, width)` images are resized to.
    pub image_size: Option<(usize, usize)>,
    /// What is done to the pixels.
    pub mode: Mode,
}

impl ImageInput {
    /// The record `model` carries, if any; an unreadable one is an error naming it.
    pub fn of(model: &Model) -> Result<Option<ImageInput>> {
        model
            .attachment(IMAGE_INPUT)
            .map(|json| {
                serde_json::from_str(json).map_err(|e| {
                    Error::Data(format!(
                        "the model's image preparation record ('{IMAGE_INPUT}') is unreadable ({e})"
                    ))
                })
            })
            .transpose()
    }

    /// Keeps the record with `model` (saved and loaded with it).
    pub fn attach_to(&self, model: &mut Model) {
        let json = serde_json::to_string(self).expect("an image input record always serializes");
        model.set_attachment(IMAGE_INPUT, json);
    }

    /// The record of an imported Keras application: its input size and its family's mode, when
    /// `model`'s name is one Keras gives an application ([`keras_application_mode`]).
    pub fn of_keras_application(model: &Model) -> Option<ImageInput> {
        let mode = keras_application_mode(model.name())?;
        let image_size = match model.input_shape() {
            Some(&[height, width, _]) => Some((height, width)),
            _ => None,
        };
        Some(ImageInput { image_size, mode })
    }
}

/// The `preprocess_input` mode of the Keras application whose model Keras names `name`
/// (`"mobilenetv2_1.00_224"`, `"resnet50"`, ...), as each `keras.applications` module sets it;
/// `None` for other names.
pub fn keras_application_mode(name: &str) -> Option<Mode> {
    let name = name.to_ascii_lowercase();
    // ResNet V2 is "tf" where ResNet (V1) is "caffe": test the V2 names first.
    let prefixes: [(&str, Mode); 14] = [
        ("vgg16", Mode::Caffe),
        ("vgg19", Mode::Caffe),
        ("resnet50v2", Mode::Tf),
        ("resnet101v2", Mode::Tf),
        ("resnet152v2", Mode::Tf),
        ("resnet", Mode::Caffe),
        ("inception_", Mode::Tf),
        ("xception", Mode::Tf),
        ("mobilenetv3", Mode::Raw),
        ("mobilenet", Mode::Tf),
        ("nasnet", Mode::Tf),
        ("densenet", Mode::Torch),
        ("efficientnet", Mode::Raw),
        ("convnext", Mode::Raw),
    ];
    prefixes
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|&(_, mode)| mode)
}
