//! Datasets and preprocessing: MNIST's IDX files, CSV tables, folders of images, scaling,
//! one-hot labels, class names ([`labels`]),
//! seeded shuffling and splitting, a batch iterator, random image augmentation, and text for
//! sequence models ([`text`]: a tokenizer, `pad_sequences`, sliding windows, a bundled corpus).

pub mod augment;
pub mod csv;
pub mod images;
pub mod labels;
pub mod mnist;
mod preprocessing;
pub mod text;

pub use augment::ImageAugmentation;
pub use images::{ImageDatasetOptions, image_dataset_from_directory, load_image};
pub use preprocessing::{
    Batches, batches, scale, scale_in_place, shuffle, standardize, to_categorical, train_test_split,
};
pub use text::{PadOptions, Tokenizer, pad_sequences};
