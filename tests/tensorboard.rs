//! The TensorBoard callback writes what TensorBoard reads: every scalar of `History` at every
//! step, in Keras's layout and tags, weight histograms and images, batch losses at the global
//! step; files read back with a reader of the format (TFRecord framing, masked CRC-32C, the
//! Event protocol buffer) that stops where TensorBoard's does. `tools/check_tensorboard.py`
//! checks the same with TensorBoard's own reader in CI.
mod common;

use std::path::{Path, PathBuf};
use strata::callbacks::TensorBoard;
use strata::callbacks::tensorboard::{Event, Kind, UpdateFreq, What, read_events};
use strata::prelude::*;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-tensorboard-{name}-{}", common::run_id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A 3-class classifier on 40 samples of 4 features, 10 batches of 4 per epoch (30 trained,
/// 10 held out).
fn classifier() -> (Model, Tensor, Tensor) {
    let mut model = Sequential::new();
    model.add(Input::new(&[4])).add(Dense::new(5)).add(Dense::new(3));
    model
        .compile(Adam::new(0.01), "sparse_categorical_crossentropy", &["accuracy"])
        .unwrap();
    let x: Vec<f32> = (0..160).map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0).collect();
    let y: Vec<f32> = (0..40).map(|i| (i % 3) as f32).collect();
    (
        model,
        Tensor::from_vec(vec![40, 4], x).unwrap(),
        Tensor::from_vec(vec![40], y).unwrap(),
    )
}

fn options() -> FitOptions<'static> {
    FitOptions::default()
        .epochs(3)
        .batch_size(3)
        .validation_split(0.25)
        .verbose(0)
}

/// The events of every event file in `folder`, in the order the files were written.
fn events_in(folder: &Path) -> Vec<Event> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .collect();
    files.sort_by_key(|p| {
        p.file_name()
            .unwrap()
            .to_string_lossy()
            .rsplit('.')
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    });
    files.iter().flat_map(|f| read_events(f).unwrap()).collect()
}

/// `(step, value)` of every scalar tagged `tag`.
fn scalars(events: &[Event], tag: &str) -> Vec<(i64, f32)> {
    values(events, tag)
        .into_iter()
        .map(|(step, kind)| match kind {
            Kind::SimpleValue(v) => (step, *v),
            other => panic!("{tag} is not a scalar: {other:?}"),
        })
        .collect()
}

fn values<'a>(events: &'a [Event], tag: &str) -> Vec<(i64, &'a Kind)> {
    let mut found = Vec::new();
    for event in events {
        if let Some(What::Summary(summary)) = &event.what {
            for value in summary.value.iter().filter(|v| v.tag == tag) {
                found.push((event.step, value.kind.as_ref().unwrap()));
            }
        }
    }
    found
}

#[test]
fn every_epoch_scalar_of_history_is_logged_in_keras_layout() {
    let dir = scratch("scalars");
    let (mut model, x, y) = classifier();
    let mut tensorboard = TensorBoard::new(&dir).write_steps_per_second(true);
    let history = model
        .fit_with_callbacks(&x, &y, options(), &mut [&mut tensorboard])
        .unwrap();
    let train = events_in(&dir.join("train"));
    let validation = events_in(&dir.join("validation"));
    for events in [&train, &validation] {
        assert_eq!(events[0].what, Some(What::FileVersion("brain.Event:2".into())));
    }
    let at_epochs = |key: &str| -> Vec<(i64, f32)> {
        history
            .get(key)
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i as i64, v))
            .collect()
    };
    assert_eq!(scalars(&train, "epoch_loss"), at_epochs("loss"));
    assert_eq!(scalars(&train, "epoch_accuracy"), at_epochs("accuracy"));
    assert_eq!(scalars(&train, "epoch_learning_rate"), at_epochs("learning_rate"));
    assert_eq!(scalars(&validation, "epoch_loss"), at_epochs("val_loss"));
    assert_eq!(scalars(&validation, "epoch_accuracy"), at_epochs("val_accuracy"));
    let rates = scalars(&train, "epoch_steps_per_second");
    assert_eq!(rates.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(rates.iter().all(|r| r.1 > 0.0 && r.1.is_finite()), "{rates:?}");
    // Keras's defaults: no batch scalars, no histograms, nothing of training in validation/.
    assert!(values(&train, "batch_loss").is_empty());
    assert!(values(&train, "dense/kernel/histogram").is_empty());
    assert!(values(&validation, "epoch_learning_rate").is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn histograms_and_images_of_every_weight_every_histogram_freq_epochs() {
    let dir = scratch("weights");
    let (mut model, x, y) = classifier();
    let mut tensorboard = TensorBoard::new(&dir).histogram_freq(2).write_images(true);
    model
        .fit_with_callbacks(&x, &y, options(), &mut [&mut tensorboard])
        .unwrap();
    let train = events_in(&dir.join("train"));
    let weights = model.weights();
    assert_eq!(weights.len(), 4, "two kernels and two biases");
    for (name, weight) in &weights {
        let histograms = values(&train, &format!("{name}/histogram"));
        // Epochs 1 and 3 (Keras's steps 0 and 2).
        assert_eq!(histograms.iter().map(|h| h.0).collect::<Vec<_>>(), [0, 2], "{name}");
        let Kind::Histo(last) = histograms[1].1 else {
            panic!("{name}: not a histogram")
        };
        assert_eq!(last.num, weight.len() as f64);
        assert_eq!(last.bucket.iter().sum::<f64>(), weight.len() as f64);
        let min = weight.data().iter().copied().fold(f32::INFINITY, f32::min);
        assert_eq!(last.min, f64::from(min), "the last histogram is of the final weights");
        let images = values(&train, &format!("{name}/image"));
        assert_eq!(images.len(), 2, "{name}");
        let Kind::Image(image) = images[1].1 else {
            panic!("{name}: not an image")
        };
        let decoded = image::load_from_memory(&image.encoded_image_string).unwrap().to_luma8();
        assert_eq!(
            (decoded.width() as i32, decoded.height() as i32),
            (image.width, image.height)
        );
        assert_eq!((decoded.width() * decoded.height()) as usize, weight.len());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn batch_losses_go_at_the_global_step_and_continue_when_training_resumes() {
    let dir = scratch("batches");
    let (mut model, x, y) = classifier();
    let mut tensorboard = TensorBoard::new(&dir).update_freq(UpdateFreq::Batches(4));
    let mut losses = BatchLosses(Vec::new());
    model
        .fit_with_callbacks(&x, &y, options().epochs(2), &mut [&mut tensorboard, &mut losses])
        .unwrap();
    // Resumed: epoch 3 starts at step 20 (10 batches an epoch).
    let mut tensorboard = TensorBoard::new(&dir).update_freq(UpdateFreq::Batches(4));
    let history = model
        .fit_with_callbacks(&x, &y, options().initial_epoch(2), &mut [&mut tensorboard, &mut losses])
        .unwrap();
    assert_eq!(history.epochs.len(), 1);
    let train = events_in(&dir.join("train"));
    // Keras 3's batch_loss: the mean of the epoch's batch losses so far (10 batches an epoch).
    let running_means = losses.0.chunks(10).flat_map(|epoch| {
        (1..=epoch.len()).map(|n| (epoch[..n].iter().map(|&l| f64::from(l)).sum::<f64>() / n as f64) as f32)
    });
    let every_fourth: Vec<(i64, f32)> = running_means
        .enumerate()
        .map(|(i, mean)| (i as i64 + 1, mean))
        .filter(|(s, _)| s % 4 == 0)
        .collect();
    assert_eq!(scalars(&train, "batch_loss"), every_fourth);
    assert_eq!(every_fourth.last().unwrap().0, 28);
    let epochs: Vec<i64> = scalars(&train, "epoch_loss").iter().map(|s| s.0).collect();
    assert_eq!(epochs, [0, 1, 2], "the epoch steps continue across the two starts");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Records every batch's loss.
struct BatchLosses(Vec<f32>);

impl Callback for BatchLosses {
    fn on_batch_end(&mut self, _model: &mut Model, _epoch: usize, _batch: usize, loss: f32) -> strata::Result<Control> {
        self.0.push(loss);
        Ok(Control::Continue)
    }
}

#[test]
fn a_file_cut_mid_record_reads_up_to_its_last_whole_record() {
    let dir = scratch("cut");
    let (mut model, x, y) = classifier();
    let mut tensorboard = TensorBoard::new(&dir).histogram_freq(1);
    model
        .fit_with_callbacks(&x, &y, options(), &mut [&mut tensorboard])
        .unwrap();
    let train = dir.join("train");
    let file = std::fs::read_dir(&train).unwrap().next().unwrap().unwrap().path();
    let whole = std::fs::read(&file).unwrap();
    let events = read_events(&file).unwrap();
    assert_eq!(events.len(), 4, "the version and one event per epoch");
    // Cut at every byte of the last record, as a run killed while writing it would leave it.
    let mut last = 0;
    while last + 8 <= whole.len() {
        let length = u64::from_le_bytes(whole[last..last + 8].try_into().unwrap()) as usize;
        if last + 16 + length == whole.len() {
            break;
        }
        last += 16 + length;
    }
    for cut in [last + 1, last + 11, last + 40, whole.len() - 1] {
        std::fs::write(&file, &whole[..cut]).unwrap();
        assert_eq!(
            read_events(&file).unwrap(),
            events[..3],
            "cut at {cut} of {}",
            whole.len()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unwritable_log_dir_fails_before_the_first_epoch() {
    let dir = scratch("unwritable");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("file"), b"x").unwrap();
    let (mut model, x, y) = classifier();
    let mut tensorboard = TensorBoard::new(dir.join("file/logs"));
    let mut losses = BatchLosses(Vec::new());
    let error = model
        .fit_with_callbacks(&x, &y, options(), &mut [&mut tensorboard, &mut losses])
        .unwrap_err()
        .to_string();
    assert!(error.contains("file/logs/train"), "{error}");
    assert!(losses.0.is_empty(), "no batch trained");
    assert_eq!(model.epochs_trained(), 0);
    // Another rank of a data-parallel run writes nothing.
    let mut quiet = TensorBoard::new(dir.join("rank1")).histogram_freq(1).chief(false);
    model.fit_with_callbacks(&x, &y, options(), &mut [&mut quiet]).unwrap();
    assert!(!dir.join("rank1").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_write_ends_fit_as_in_keras_unless_asked_to_keep_going() {
    // The validation folder is made at the first epoch with validation: a file in its place
    // makes that write fail mid-run.
    let dir = scratch("keep-going");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("validation"), b"x").unwrap();
    let (mut model, x, y) = classifier();
    let mut strict = TensorBoard::new(&dir);
    let error = model
        .fit_with_callbacks(&x, &y, options(), &mut [&mut strict])
        .unwrap_err();
    assert!(error.to_string().contains("validation"), "{error}");
    let (mut model, x, y) = classifier();
    let mut lenient = TensorBoard::new(&dir).keep_going(true);
    let history = model
        .fit_with_callbacks(&x, &y, options(), &mut [&mut lenient])
        .unwrap();
    assert_eq!(history.epochs.len(), 3, "training went on");
    assert_eq!(lenient.failures().len(), 1, "logging stopped at the first failure");
    assert!(lenient.failures()[0].contains("validation"), "{:?}", lenient.failures());
    let _ = std::fs::remove_dir_all(&dir);
}
