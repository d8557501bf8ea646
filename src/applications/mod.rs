//! What Keras's `keras.applications` adds around its pre-trained image models: the input
//! preparation each family was trained with ([`preprocess_input`]: Keras's "caffe", "tf" and
//! "torch" modes), the reading of ImageNet predictions ([`decode_predictions`], with the 1000
//! class names bundled), and the record a model keeps of how its images must be prepared
//! ([`ImageInput`]), so `strata predict` prepares them without flags.

mod imagenet;
mod record;

pub use imagenet::{
    IMAGENET_CLASSES, Mode, Prediction, decode_predictions, imagenet_classes, prepare_in_place, preprocess_input,
};
pub use record::{IMAGE_INPUT, ImageInput, keras_application_mode};
