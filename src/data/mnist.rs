//! MNIST, as `keras.datasets.mnist.load_data()` returns it: the loader and the IDX reader live
//! in [`crate::datasets`]; this module keeps their older paths.

pub use crate::datasets::Split;
pub use crate::datasets::idx::read_idx;
pub use crate::datasets::mnist::{bundled_dir, load_data, load_data_from};
