//! Images from PNG and JPEG files, as model inputs.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use image::imageops::FilterType;
use std::path::Path;

/// Loads an image, converts it to `channels` (1 grey or 3 RGB), resizes it to `height × width`
/// and scales pixels to [0, 1], as the classic programs prepare MNIST. Returns `(H, W, C)`.
pub fn load_image(path: impl AsRef<Path>, height: usize, width: usize, channels: usize) -> Result<Tensor> {
    let path = path.as_ref();
    let picture =
        image::open(path).map_err(|e| Error::file(path, format!("not a readable PNG or JPEG image ({e})")))?;
    let (w, h) = (width as u32, height as u32);
    let values: Vec<f32> = match channels {
        1 => picture
            .resize_exact(w, h, FilterType::Triangle)
            .to_luma8()
            .into_raw()
            .iter()
            .map(|&v| v as f32 / 255.0)
            .collect(),
        3 => picture
            .resize_exact(w, h, FilterType::Triangle)
            .to_rgb8()
            .into_raw()
            .iter()
            .map(|&v| v as f32 / 255.0)
            .collect(),
        _ => {
            return Err(Error::invalid(
                "channels",
                channels,
                "images have 1 (grey) or 3 (RGB) channels",
            ));
        }
    };
    Tensor::from_vec(vec![height, width, channels], values)
}

/// The image geometry `(height, width, channels)` a model's per-sample input shape asks for:
/// `(H, W, C)`, `(H, W)` (grey), or a square number of grey pixels such as MNIST's 784.
pub fn image_geometry(input_shape: &[usize]) -> Result<(usize, usize, usize)> {
    match *input_shape {
        [h, w, c] if c == 1 || c == 3 => Ok((h, w, c)),
        [h, w] => Ok((h, w, 1)),
        [n] if ((n as f64).sqrt() as usize).pow(2) == n => {
            let side = (n as f64).sqrt() as usize;
            Ok((side, side, 1))
        }
        _ => Err(Error::Usage(format!(
            "the model's input shape {input_shape:?} is not an image (expected (height, width, 1 or 3), (height, width) or a square pixel count)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_resizes_and_scales_a_png() {
        let dir = std::env::temp_dir().join(format!("strata-images-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("square.png");
        let mut picture = image::GrayImage::new(4, 4);
        picture.put_pixel(0, 0, image::Luma([255]));
        picture.save(&path).unwrap();
        let tensor = load_image(&path, 4, 4, 1).unwrap();
        assert_eq!(tensor.shape(), &[4, 4, 1]);
        assert_eq!(tensor.data()[0], 1.0);
        assert_eq!(tensor.data()[1], 0.0);
        assert_eq!(load_image(&path, 2, 2, 3).unwrap().shape(), &[2, 2, 3]);
        std::fs::write(dir.join("bad.png"), b"not an image").unwrap();
        assert!(matches!(
            load_image(dir.join("bad.png"), 4, 4, 1),
            Err(Error::File { .. })
        ));
        assert_eq!(image_geometry(&[784]).unwrap(), (28, 28, 1));
        assert_eq!(image_geometry(&[28, 28, 1]).unwrap(), (28, 28, 1));
        assert!(image_geometry(&[10]).is_err());
    }
}
