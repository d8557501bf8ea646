//! `ImageAugmentation`: hand-computed flips, shifts and rotations, seeded batches, validation,
//! and intensity kept on MNIST.

use strata::Error;
use strata::data::augment::{FILL_MODES, Transform};
use strata::data::{ImageAugmentation, mnist};
use strata::prelude::*;
use strata::rng::Rng;

/// A `(rows, columns, 1)` image from its rows.
fn image(rows: &[&[f32]]) -> Tensor {
    let values: Vec<f32> = rows.iter().flat_map(|row| row.iter().copied()).collect();
    Tensor::from_vec(vec![rows.len(), rows[0].len(), 1], values).unwrap()
}

/// The 3×4 image 1..=12, row by row.
fn three_by_four() -> Tensor {
    image(&[&[1., 2., 3., 4.], &[5., 6., 7., 8.], &[9., 10., 11., 12.]])
}

fn transformed(augmentation: &mut ImageAugmentation, mut input: Tensor, transform: Transform) -> Tensor {
    augmentation.apply_transform(&mut input, &transform).unwrap();
    input
}

fn shift(height_shift: f32, width_shift: f32) -> Transform {
    Transform {
        height_shift,
        width_shift,
        ..Transform::IDENTITY
    }
}

/// 16 images `(N, 5, 6, 2)` of distinct values.
fn batch() -> Tensor {
    let values = (0..16 * 5 * 6 * 2).map(|i| ((i * 37) % 101) as f32 / 101.0).collect();
    Tensor::from_vec(vec![16, 5, 6, 2], values).unwrap()
}

#[test]
fn all_ranges_zero_leave_the_batch_and_the_identity_transform_leaves_each_image() {
    let mut input = batch();
    ImageAugmentation::new()
        .augment_batch(&mut input, &mut Rng::new(1))
        .unwrap();
    assert_eq!(input, batch());
    for mode in FILL_MODES {
        let mut augmentation = ImageAugmentation::new().fill_mode(mode);
        assert_eq!(
            transformed(&mut augmentation, three_by_four(), Transform::IDENTITY),
            three_by_four()
        );
    }
}

#[test]
fn horizontal_and_vertical_flips_mirror_exactly() {
    let mut augmentation = ImageAugmentation::new();
    let horizontal = Transform {
        horizontal_flip: true,
        ..Transform::IDENTITY
    };
    let mirrored = image(&[&[4., 3., 2., 1.], &[8., 7., 6., 5.], &[12., 11., 10., 9.]]);
    assert_eq!(transformed(&mut augmentation, three_by_four(), horizontal), mirrored);
    let vertical = Transform {
        vertical_flip: true,
        ..Transform::IDENTITY
    };
    let upside_down = image(&[&[9., 10., 11., 12.], &[5., 6., 7., 8.], &[1., 2., 3., 4.]]);
    assert_eq!(transformed(&mut augmentation, three_by_four(), vertical), upside_down);
}

#[test]
fn integer_shifts_move_pixels_and_fill_what_nothing_maps_to() {
    // One row up and one column right: out[r][c] = in[r + 1][c - 1], -1 where that is outside.
    let mut constant = ImageAugmentation::new().fill_mode("constant").fill_value(-1.0);
    let expected = image(&[&[-1., 5., 6., 7.], &[-1., 9., 10., 11.], &[-1., -1., -1., -1.]]);
    assert_eq!(transformed(&mut constant, three_by_four(), shift(-1.0, 1.0)), expected);

    // Two columns right on the row "1 2 3 4": the columns -2 and -1 come from each fill mode.
    let row = || image(&[&[1., 2., 3., 4.]]);
    let expectations = [
        ("constant", [0., 0., 1., 2.]),
        ("nearest", [1., 1., 1., 2.]),
        ("reflect", [2., 1., 1., 2.]),
        ("wrap", [3., 4., 1., 2.]),
    ];
    for (mode, expected) in expectations {
        let mut augmentation = ImageAugmentation::new().fill_mode(mode);
        let shifted = transformed(&mut augmentation, row(), shift(0.0, 2.0));
        assert_eq!(shifted.data(), expected, "fill_mode={mode}");
    }
}

#[test]
fn half_pixel_shift_averages_neighbours() {
    let mut augmentation = ImageAugmentation::new().fill_mode("constant");
    let shifted = transformed(&mut augmentation, image(&[&[2., 4., 8., 16.]]), shift(0.0, 0.5));
    assert_eq!(shifted.data(), [1., 3., 6., 12.]);
}

#[test]
fn quarter_turns_match_hand_rotated_images() {
    let mut augmentation = ImageAugmentation::new();
    let square = image(&[&[1., 2., 3.], &[4., 5., 6.], &[7., 8., 9.]]);
    let rotation = |degrees| Transform {
        rotation: degrees,
        ..Transform::IDENTITY
    };
    // Counter-clockwise: the right column becomes the top row.
    let left = image(&[&[3., 6., 9.], &[2., 5., 8.], &[1., 4., 7.]]);
    assert_eq!(transformed(&mut augmentation, square.clone(), rotation(90.0)), left);
    let right = image(&[&[7., 4., 1.], &[8., 5., 2.], &[9., 6., 3.]]);
    assert_eq!(transformed(&mut augmentation, square.clone(), rotation(-90.0)), right);
    let half = image(&[&[9., 8., 7.], &[6., 5., 4.], &[3., 2., 1.]]);
    assert_eq!(transformed(&mut augmentation, square, rotation(180.0)), half);

    // An even size turns about a centre between pixels; two channels turn together.
    let values: Vec<f32> = (0..32).map(|v| v as f32).collect();
    let even = Tensor::from_vec(vec![4, 4, 2], values).unwrap();
    let turned = transformed(&mut augmentation, even.clone(), rotation(90.0));
    for row in 0..4 {
        for column in 0..4 {
            for channel in 0..2 {
                let from = even.get(&[column, 3 - row, channel]);
                assert_eq!(
                    turned.get(&[row, column, channel]),
                    from,
                    "({row}, {column}, {channel})"
                );
            }
        }
    }
}

/// A round blob on a dark background whose mass is closed-form: a Gaussian of sigma 2.5 pixels
/// centred in 28×28, far from the edges.
fn blob() -> Tensor {
    let value = |r: usize, c: usize| {
        let (dy, dx) = (r as f32 - 13.5, c as f32 - 13.5);
        (-(dx * dx + dy * dy) / (2.0 * 2.5 * 2.5)).exp()
    };
    let values = (0..28 * 28).map(|i| value(i / 28, i % 28)).collect();
    Tensor::from_vec(vec![28, 28, 1], values).unwrap()
}

#[test]
fn zoom_above_one_shrinks_the_content_by_its_factor() {
    // Sampling at 1.25 × the offset shrinks the blob by 1/1.25 per axis: mass × 1/1.5625 = 0.64.
    let mut augmentation = ImageAugmentation::new().fill_mode("constant");
    let zoom = Transform {
        height_zoom: 1.25,
        width_zoom: 1.25,
        ..Transform::IDENTITY
    };
    let mass = |t: &Tensor| t.data().iter().sum::<f32>();
    let ratio = mass(&transformed(&mut augmentation, blob(), zoom)) / mass(&blob());
    assert!((ratio - 0.64).abs() < 0.005, "mass ratio {ratio}");
}

#[test]
fn same_seed_same_batch_other_seed_other_batch() {
    let run = |seed| {
        let mut augmentation = ImageAugmentation::new()
            .rotation_range(20.0)
            .width_shift_range(0.1)
            .height_shift_range(0.1)
            .zoom_range(0.1)
            .horizontal_flip(true)
            .fill_mode("reflect");
        let mut images = batch();
        let mut rng = Rng::new(seed);
        augmentation.augment_batch(&mut images, &mut rng).unwrap();
        // The scratch buffer from the first batch must not leak into the second.
        augmentation.augment_batch(&mut images, &mut rng).unwrap();
        images
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
    // Each image got its own transform: no two images moved the same way.
    let (before, after) = (batch(), run(7));
    let image_len = 5 * 6 * 2;
    let moved: Vec<f32> = (0..16)
        .map(|i| after.data()[i * image_len] - before.data()[i * image_len])
        .collect();
    assert!(moved.windows(2).any(|pair| pair[0] != pair[1]));
}

#[test]
fn small_transforms_keep_mnist_mean_intensity() {
    let ((_, _), (x_test, _)) = mnist::load_data().unwrap();
    let count = 512;
    let original = x_test
        .slice_rows(0, count)
        .map(|v| v / 255.0)
        .reshape(&[count, 28, 28, 1])
        .unwrap();
    let mut augmented = original.clone();
    let mut augmentation = ImageAugmentation::new()
        .rotation_range(10.0)
        .width_shift_range(0.1)
        .height_shift_range(0.1)
        .zoom_range(0.1);
    augmentation.augment_batch(&mut augmented, &mut Rng::new(3)).unwrap();
    assert_ne!(augmented, original);
    let mean = |t: &Tensor| t.data().iter().map(|&v| v as f64).sum::<f64>() / t.len() as f64;
    // Zoom factors z ~ U[0.9, 1.1] per axis scale an image's mass by 1/(zx zy), within
    // [1/1.21, 1/0.81] = [0.826, 1.235] and on average ((ln 1.1 - ln 0.9) / 0.2)^2 = 1.0067.
    // MNIST's 4-pixel black margin keeps shifts of up to 2.8 pixels from cutting strokes off.
    let ratio = mean(&augmented) / mean(&original);
    assert!((ratio - 1.0067).abs() < 0.01, "mean intensity ratio {ratio}");
    for i in 0..count {
        let ratio = mean(&augmented.slice_rows(i, i + 1)) / mean(&original.slice_rows(i, i + 1));
        assert!((0.8..1.25).contains(&ratio), "image {i}: mean intensity ratio {ratio}");
    }
}

#[test]
fn bad_arguments_and_shapes_are_typed_errors() {
    let invalid = |augmentation: ImageAugmentation, argument: &str| match augmentation.validate() {
        Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, argument),
        other => panic!("{argument}: expected InvalidArgument, got {other:?}"),
    };
    invalid(ImageAugmentation::new().rotation_range(-1.0), "rotation_range");
    invalid(ImageAugmentation::new().rotation_range(f32::NAN), "rotation_range");
    invalid(ImageAugmentation::new().width_shift_range(-0.1), "width_shift_range");
    invalid(
        ImageAugmentation::new().height_shift_range(f32::NAN),
        "height_shift_range",
    );
    invalid(ImageAugmentation::new().height_shift_range(1.5), "height_shift_range");
    invalid(ImageAugmentation::new().zoom_range(f32::NAN), "zoom_range");
    invalid(ImageAugmentation::new().zoom_range(1.0), "zoom_range");
    invalid(ImageAugmentation::new().fill_value(f32::INFINITY), "fill_value");
    assert!(matches!(
        ImageAugmentation::new().fill_mode("mirror").validate(),
        Err(Error::UnknownName { kind: "fill_mode", .. })
    ));
    assert!(ImageAugmentation::new().fill_mode("Reflect").validate().is_ok());

    // A bad setting stops augment_batch before any image changes.
    let mut images = batch();
    let mut bad = ImageAugmentation::new().zoom_range(-0.2);
    assert!(bad.augment_batch(&mut images, &mut Rng::new(0)).is_err());
    assert_eq!(images, batch());

    let mut augmentation = ImageAugmentation::new().rotation_range(10.0);
    let mut greyscale = Tensor::zeros(&[2, 28, 28]);
    match augmentation.augment_batch(&mut greyscale, &mut Rng::new(0)) {
        Err(Error::Data(message)) => assert!(message.contains("(2, 28, 28)"), "{message}"),
        other => panic!("expected Error::Data naming the shape, got {other:?}"),
    }
    // The same values as a flat buffer of (28, 28, 1) images are accepted.
    assert!(
        augmentation
            .augment_images(greyscale.data_mut(), [28, 28, 1], &mut Rng::new(0))
            .is_ok()
    );
    assert!(matches!(
        augmentation.augment_images(&mut [0.0; 10], [2, 2, 1], &mut Rng::new(0)),
        Err(Error::Data(_))
    ));
    let not_finite = Transform {
        rotation: f32::NAN,
        ..Transform::IDENTITY
    };
    let too_far = Transform {
        width_zoom: 1e12,
        ..Transform::IDENTITY
    };
    for transform in [not_finite, too_far] {
        assert!(matches!(
            augmentation.apply_transform(&mut three_by_four(), &transform),
            Err(Error::InvalidArgument { .. })
        ));
    }
}
