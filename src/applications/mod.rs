//! Keras's `keras.applications`: the pre-trained image architectures built in Rust with
//! Keras's layer names and arguments ([`mobilenet_v2`], [`resnet50`], ... with [`Options`]),
//! so Keras's weight files load into them by layer name; the input preparation each family was
//! trained with ([`preprocess_input`]: Keras's "caffe", "tf" and "torch" modes), the reading of
//! ImageNet predictions ([`decode_predictions`], with the 1000 class names bundled), and the
//! record a model keeps of how its images must be prepared ([`ImageInput`]), so
//! `strata predict` prepares them without flags.
//!
//! ```
//! use strata::applications::{self, Options};
//! # fn main() -> strata::Result<()> {
//! // keras.applications.ResNet50(weights=None, classes=10, input_shape=(64, 64, 3))
//! let model = applications::architecture("resnet50", &Options {
//!     classes: 10,
//!     input_shape: Some([64, 64, 3]),
//!     ..Options::default()
//! })?;
//! assert_eq!(model.count_params(), 23_608_202);
//! # Ok(()) }
//! ```

mod catalog;
mod densenet;
mod description;
mod efficientnet;
mod efficientnet_v2;
mod imagenet;
mod inception_v3;
mod mobilenet;
mod mobilenet_v3;
mod nasnet;
mod options;
mod record;
mod resnet;
mod vgg;
mod xception;

pub use catalog::*;
pub use description::{from_description, load_description, parse_description};
pub use imagenet::{
    IMAGENET_CLASSES, Mode, Prediction, decode_predictions, imagenet_classes, prepare_in_place, preprocess_input,
};
pub use options::{IMAGENET, Options, Pooling};
pub use record::{IMAGE_INPUT, ImageInput, keras_application_mode};
