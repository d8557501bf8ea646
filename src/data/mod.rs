//! Datasets and preprocessing: MNIST's IDX files, CSV tables, folders of images, scaling,
//! one-hot labels,
//! seeded shuffling and splitting, a batch iterator, and random image augmentation.

pub mod augment;
pub mod csv;
pub mod images;
pub mod mnist;
mod preprocessing;

pub use augment::ImageAugmentation;
pub use images::{ImageDatasetOptions, image_dataset_from_directory, load_image};
pub use preprocessing::{Batches, batches, scale, shuffle, standardize, to_categorical, train_test_split};
