//! [`Model::adapt`]: a preprocessing layer inside a model learns its statistics from data
//! before training, as Keras's `model.get_layer(name).adapt(data)`.

use super::Model;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

impl Model {
    /// Adapts the layer named `name` to `data` (see [`Layer::adapt`](crate::layers::Layer::adapt);
    /// a `Normalization` takes each channel's mean and variance): the layer keeps the values for
    /// when it is built, and a built model's weights take them at once. An unknown name lists
    /// the model's layers; a layer with nothing to adapt, or data of the wrong shape, is an
    /// error naming the layer.
    ///
    /// ```
    /// use strata::prelude::*;
    /// let mut model = Sequential::new();
    /// model.add(Input::new(&[2])).add(Normalization::new().name("norm")).add(Dense::new(1));
    /// let x = Tensor::from_vec(vec![2, 2], vec![1.0, 10.0, 3.0, 30.0])?;
    /// model.adapt("norm", &x)?;
    /// model.compile("adam", "mse", &[])?;
    /// assert_eq!(model.weights()["norm/mean"].data(), &[2.0, 20.0]);
    /// # Ok::<(), strata::Error>(())
    /// ```
    pub fn adapt(&mut self, name: &str, data: &Tensor) -> Result<()> {
        let index = self.layer_index(name)?;
        let layer = self.network.layers[index].as_mut();
        let ids = layer.params();
        let values = layer.adapt(data)?;
        // Unbuilt (no weights yet): the layer starts from the values when the model is built.
        for (id, value) in ids.into_iter().zip(values) {
            let weight = self.params.value_mut(id);
            if weight.shape() != value.shape() {
                return Err(Error::LayerShape {
                    layer: name.to_string(),
                    expected: format!("data whose statistics fit its weight of shape {:?}", weight.shape()),
                    received: format!("{:?} (statistics of shape {:?})", data.shape(), value.shape()),
                });
            }
            *weight = value;
        }
        Ok(())
    }
}
