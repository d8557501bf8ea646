//! Images from PNG and JPEG files, as model inputs.

use crate::error::{Error, Result};
use crate::io::picture::{Picture, read_picture};
use crate::tensor::{Tensor, budgeted_numel};
use std::path::Path;

/// Loads an image, converts it to `channels` (1 grey or 3 RGB), resizes it to `height × width`
/// and scales pixels to [0, 1], as the classic programs prepare MNIST. Returns `(H, W, C)`.
pub fn load_image(path: impl AsRef<Path>, height: usize, width: usize, channels: usize) -> Result<Tensor> {
    let mut image = load_image_pixels(path, height, width, channels)?;
    image.map_in_place(|v| v / 255.0);
    Ok(image)
}

/// [`load_image`] without the scaling: pixels 0–255, as Keras's `load_img` + `img_to_array`
/// give them to `preprocess_input`. Resized as [`resize_bilinear`] does.
pub fn load_image_pixels(path: impl AsRef<Path>, height: usize, width: usize, channels: usize) -> Result<Tensor> {
    if height == 0 || width == 0 {
        return Err(Error::invalid(
            "image_size",
            format!("({height}, {width})"),
            "images need at least one row and one column",
        ));
    }
    let path = path.as_ref();
    // The size comes from a model's input shape or a flag: checked before the resize allocates.
    budgeted_numel(
        || {
            format!(
                "{}: the image resized to image_size ({height}, {width}) with {channels} channel(s)",
                path.display()
            )
        },
        &[height, width, channels],
    )?;
    let picture = read_picture(path, channels)?;
    Tensor::from_vec(vec![height, width, channels], resize_bilinear(&picture, height, width))
}

/// The picture's pixels resized to `height × width` as `tf.image.resize` does by default
/// (bilinear, half-pixel centres, no antialiasing), the resize of Keras's
/// `image_dataset_from_directory`; values stay unrounded, as Keras yields them. At the picture's
/// own size the pixels come back unchanged.
pub fn resize_bilinear(picture: &Picture, height: usize, width: usize) -> Vec<f32> {
    let rows = interpolation(picture.height, height);
    let columns = interpolation(picture.width, width);
    let channels = picture.channels;
    let pixel = |row: usize, column: usize, channel: usize| {
        f32::from(picture.pixels[(row * picture.width + column) * channels + channel])
    };
    let mut values = Vec::with_capacity(height * width * channels);
    for &(top, bottom, down) in &rows {
        for &(left, right, across) in &columns {
            for channel in 0..channels {
                let upper =
                    pixel(top, left, channel) + (pixel(top, right, channel) - pixel(top, left, channel)) * across;
                let lower = pixel(bottom, left, channel)
                    + (pixel(bottom, right, channel) - pixel(bottom, left, channel)) * across;
                values.push(upper + (lower - upper) * down);
            }
        }
    }
    values
}

/// For each of `to` output positions along an axis of `from` pixels: the two source pixels
/// and the weight of the second, with TensorFlow's half-pixel centres.
fn interpolation(from: usize, to: usize) -> Vec<(usize, usize, f32)> {
    let scale = from as f32 / to as f32;
    (0..to)
        .map(|i| {
            let position = (i as f32 + 0.5) * scale - 0.5;
            let floor = position.floor();
            let first = floor.max(0.0) as usize;
            let second = (position.ceil().max(0.0) as usize).min(from - 1);
            (first.min(from - 1), second, position - floor)
        })
        .collect()
}

/// Options of [`image_dataset_from_directory`], with Keras's defaults.
#[derive(Clone, Debug)]
pub struct ImageDatasetOptions {
    /// `(height, width)` every image is resized to. Defaults to (256, 256).
    pub image_size: (usize, usize),
    /// `"grayscale"` (1 channel) or `"rgb"` (3, the default).
    pub color_mode: String,
    /// Fraction of the images held out for validation (0 for none).
    pub validation_split: f32,
    /// `"training"` or `"validation"`: which part to return when `validation_split` > 0.
    pub subset: Option<String>,
    /// Seed of the shuffle that precedes the split (Keras shuffles by default).
    pub seed: u64,
    /// Whether to shuffle. Defaults to true.
    pub shuffle: bool,
}

impl Default for ImageDatasetOptions {
    fn default() -> Self {
        ImageDatasetOptions {
            image_size: (256, 256),
            color_mode: "rgb".into(),
            validation_split: 0.0,
            subset: None,
            seed: 0,
            shuffle: true,
        }
    }
}

/// Images from a folder with one sub-folder per class, as Keras's
/// `image_dataset_from_directory` with `label_mode="int"`: returns `x` `(N, H, W, C)` with
/// pixel values 0–255 (as Keras yields them), integer labels `y` `(N)` in the alphabetical
/// order of the class folders, and the class names.
pub fn image_dataset_from_directory(
    dir: impl AsRef<Path>,
    options: &ImageDatasetOptions,
) -> Result<(Tensor, Tensor, Vec<String>)> {
    let dir = dir.as_ref();
    let channels = match options.color_mode.as_str() {
        "grayscale" => 1,
        "rgb" => 3,
        other => return Err(Error::invalid("color_mode", other, "use \"grayscale\" or \"rgb\"")),
    };
    if !(0.0..1.0).contains(&options.validation_split) {
        return Err(Error::invalid(
            "validation_split",
            options.validation_split,
            "must be in [0, 1)",
        ));
    }
    let listing = |path: &Path| -> Result<Vec<std::path::PathBuf>> {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| Error::file(path, format!("cannot list ({e})")))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        Ok(entries)
    };
    let class_dirs: Vec<_> = listing(dir)?.into_iter().filter(|p| p.is_dir()).collect();
    if class_dirs.is_empty() {
        return Err(Error::file(
            dir,
            "has no class sub-folders (expected one folder of images per class)",
        ));
    }
    let class_names: Vec<String> = class_dirs
        .iter()
        .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into())
        .collect();
    let mut files = Vec::new();
    for (label, class_dir) in class_dirs.iter().enumerate() {
        for path in listing(class_dir)? {
            let extension = path
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            if matches!(extension.as_str(), "png" | "jpg" | "jpeg") {
                files.push((path, label));
            }
        }
    }
    if files.is_empty() {
        return Err(Error::file(dir, "holds no PNG or JPEG images in its class folders"));
    }
    if options.shuffle {
        crate::rng::Rng::new(options.seed).shuffle(&mut files);
    }
    let validation = (options.validation_split as f64 * files.len() as f64) as usize;
    let files = match (options.validation_split > 0.0, options.subset.as_deref()) {
        (false, _) => &files[..],
        (true, Some("training")) => &files[..files.len() - validation],
        (true, Some("validation")) => &files[files.len() - validation..],
        (true, other) => {
            return Err(Error::invalid(
                "subset",
                other.unwrap_or("none"),
                "with validation_split, choose \"training\" or \"validation\"",
            ));
        }
    };
    let (height, width) = options.image_size;
    let count = budgeted_numel(
        || {
            format!(
                "{}: {} image(s) resized to image_size ({height}, {width}) with {channels} channel(s)",
                dir.display(),
                files.len()
            )
        },
        &[files.len(), height, width, channels],
    )?;
    let mut values = Vec::with_capacity(count);
    for (path, _) in files {
        values.extend_from_slice(load_image_pixels(path, height, width, channels)?.data());
    }
    let labels = files.iter().map(|(_, label)| *label as f32).collect();
    Ok((
        Tensor::from_vec(vec![files.len(), height, width, channels], values)?,
        Tensor::from_vec(vec![files.len()], labels)?,
        class_names,
    ))
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
            "the model's input shape {} is not an image (expected (height, width, 1 or 3), (height, width) or a square pixel count)",
            crate::error::keras_shape(input_shape)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_resizes_and_scales_a_png() {
        let dir = std::env::temp_dir().join(format!("strata-images-{}", crate::fs::test_run_id()));
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

    #[test]
    fn a_folder_per_class_becomes_labelled_images() {
        let dir = std::env::temp_dir().join(format!("strata-image-folders-{}", crate::fs::test_run_id()));
        for (class, shade, count) in [("cats", 200u8, 3), ("dogs", 50u8, 2)] {
            std::fs::create_dir_all(dir.join(class)).unwrap();
            for i in 0..count {
                image::GrayImage::from_pixel(5, 3, image::Luma([shade]))
                    .save(dir.join(class).join(format!("{i}.png")))
                    .unwrap();
            }
        }
        std::fs::write(dir.join("cats/notes.txt"), b"ignored").unwrap();
        let options = ImageDatasetOptions {
            image_size: (3, 5),
            color_mode: "grayscale".into(),
            ..Default::default()
        };
        let (x, y, names) = image_dataset_from_directory(&dir, &options).unwrap();
        assert_eq!(names, ["cats", "dogs"]);
        assert_eq!(x.shape(), &[5, 3, 5, 1]);
        for (i, &label) in y.data().iter().enumerate() {
            let expected = if label == 0.0 { 200.0 } else { 50.0 };
            assert!((x.data()[i * 15] - expected).abs() < 1.0, "image {i} label {label}");
        }
        let split = |subset: &str| ImageDatasetOptions {
            validation_split: 0.4,
            subset: Some(subset.into()),
            ..options.clone()
        };
        let (train, _, _) = image_dataset_from_directory(&dir, &split("training")).unwrap();
        let (validation, _, _) = image_dataset_from_directory(&dir, &split("validation")).unwrap();
        assert_eq!((train.rows(), validation.rows()), (3, 2));
        assert!(image_dataset_from_directory(dir.join("cats"), &options).is_err());
    }
}
