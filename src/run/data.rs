//! Where a run's data comes from ([`DataSource`], recorded in saved models) and how it is
//! loaded and shaped for a model ([`Dataset`]).

use crate::applications::{ImageInput, Mode};
use crate::data::csv::{LabelColumn, NonFinite, load_csv_classes};
use crate::data::images::{ImageDatasetOptions, image_dataset_from_directory, image_geometry};
use crate::data::labels::{class_names, set_class_names};
use crate::data::text::{PadOptions, pad_sequences};
use crate::data::text::{Tokenizer, load_shakespeare, load_text, sliding_windows};
use crate::data::{mnist, scale_in_place, to_categorical};
use crate::datasets::{DatasetSpec, Loaded};
use crate::error::{Error, Result, keras_shape};
use crate::losses::Loss;
use crate::model::Model;
use crate::tensor::{Tensor, numel};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The attachment key under which a text model keeps its tokenizer (its JSON).
pub const TOKENIZER: &str = "tokenizer";
/// Text windows start every this many characters (as Keras's text-generation example does).
const TEXT_STRIDE: usize = 3;
/// The last tenth of a text's windows are its test set (the end of the text, unseen in training).
const TEXT_TEST_FRACTION: f64 = 0.1;

/// Pixels (0 to 255) to [0, 1], as `scale(&x, 1.0 / 255.0)` in the examples.
const PIXEL_SCALE: f32 = 1.0 / 255.0;

/// Where a run's data comes from and how it is prepared: enough to load the same data again, so
/// `strata train --resume` and `strata evaluate` of a saved model need no data flags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DataSource {
    /// MNIST's IDX `.gz` files in `dir` (`None`: the bundled copy), pixels scaled to [0, 1].
    Mnist {
        /// The folder of the four IDX files.
        dir: Option<PathBuf>,
    },
    /// A CSV table with a header row: numeric feature columns and one label column.
    Csv {
        /// The training table.
        train: PathBuf,
        /// A test table with the same columns.
        test: Option<PathBuf>,
        /// The label column's name (`None`: the last column).
        label: Option<String>,
        /// Whether NaN and infinite values are read as they are rather than refused.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_nonfinite: bool,
    },
    /// One sub-folder of PNG/JPEG images per class, resized to the model's input, scaled to
    /// [0, 1]; classes are the sub-folders in alphabetical order.
    ImageFolder {
        /// The folder of class folders.
        dir: PathBuf,
        /// The seed of the file order.
        seed: u64,
    },
    /// Next-character windows of a text (`None`: the bundled *Hamlet*) as wide as the model's
    /// input; the character tokenizer is kept with the model.
    Text {
        /// The text file.
        path: Option<PathBuf>,
    },
    /// The one-neuron regression's four points, y = x for x in 1..=4.
    Linreg,
    /// One of Keras's data sets (`strata::datasets`), named with its arguments as `--data`
    /// takes it: `cifar10`, `imdb:num_words=10000,maxlen=200`. Images are scaled to [0, 1],
    /// sequences padded (and cut) in front to the model's input length, as Keras's examples do.
    Dataset {
        /// The data set and its arguments, e.g. `cifar100:label_mode=coarse`.
        spec: String,
    },
}

impl DataSource {
    /// The source a `--data` flag names: one of Keras's data sets by name (`cifar10`,
    /// `imdb:num_words=10000`, when no file or folder has that name), a folder of MNIST IDX
    /// files, a folder of class folders, a `.txt` text or a CSV table. Without the flag, what
    /// the model file names (`mnist`, `linreg`, `shakespeare`, a data set, a `.txt` or a CSV path), MNIST
    /// by default. An unknown data set name, or arguments it does not take, is an error listing
    /// what exists.
    pub fn from_flag(
        data: Option<&Path>,
        model_file_data: Option<&str>,
        label: Option<&str>,
        seed: u64,
    ) -> Result<Self> {
        if let Some(spec) = dataset_named(data, model_file_data)? {
            return Ok(DataSource::Dataset { spec: spec.to_text() });
        }
        let label = label.map(str::to_string);
        Ok(match data {
            Some(dir) if dir.is_dir() && dir.join("train-images-idx3-ubyte.gz").exists() => DataSource::Mnist {
                dir: Some(absolute(dir)),
            },
            Some(dir) if dir.is_dir() => DataSource::ImageFolder {
                dir: absolute(dir),
                seed,
            },
            Some(path) if path.extension().is_some_and(|e| e == "txt") => DataSource::Text {
                path: Some(absolute(path)),
            },
            Some(path) => DataSource::Csv {
                train: absolute(path),
                test: None,
                label,
                allow_nonfinite: false,
            },
            None => match model_file_data {
                Some("mnist") | None => DataSource::Mnist { dir: None },
                Some("linreg") => DataSource::Linreg,
                Some("shakespeare") => DataSource::Text { path: None },
                Some(path) if path.ends_with(".txt") => DataSource::Text {
                    path: Some(absolute(Path::new(path))),
                },
                Some(path) => DataSource::Csv {
                    train: absolute(Path::new(path)),
                    test: None,
                    label,
                    allow_nonfinite: false,
                },
            },
        })
    }

    /// The source with a CSV test table added (`--test-data`); an error for other sources.
    pub fn with_test_table(self, test: Option<&Path>) -> Result<Self> {
        let Some(test) = test else { return Ok(self) };
        match self {
            DataSource::Csv {
                train,
                label,
                allow_nonfinite,
                ..
            } => Ok(DataSource::Csv {
                train,
                test: Some(absolute(test)),
                label,
                allow_nonfinite,
            }),
            other => Err(Error::Usage(format!(
                "--test-data goes with a CSV --data table; the data here is {}",
                other.describe()
            ))),
        }
    }

    /// The source with NaN and infinite values in its tables allowed (`--allow-nonfinite`) when
    /// `allow` is set; other sources hold no such values.
    pub fn allowing_nonfinite(mut self, allow: bool) -> Self {
        if let DataSource::Csv { allow_nonfinite, .. } = &mut self {
            *allow_nonfinite |= allow;
        }
        self
    }

    /// One line naming the source, for messages.
    pub fn describe(&self) -> String {
        match self {
            DataSource::Mnist { dir: None } => "MNIST".into(),
            DataSource::Dataset { spec } => format!("the data set {spec}"),
            DataSource::Mnist { dir: Some(dir) } => format!("MNIST in {}", dir.display()),
            DataSource::Csv { train, .. } => format!("the CSV table {}", train.display()),
            DataSource::ImageFolder { dir, .. } => format!("the image folders in {}", dir.display()),
            DataSource::Text { path: None } => "the bundled Hamlet".into(),
            DataSource::Text { path: Some(path) } => format!("the text {}", path.display()),
            DataSource::Linreg => "the linreg points".into(),
        }
    }

    /// Whether the source is text, whose model keeps a tokenizer.
    pub fn is_text(&self) -> bool {
        matches!(self, DataSource::Text { .. })
    }

    /// A text source's tokenizer, fitted on its text as [`DataSource::load_for`] fits it for a
    /// model without one; `None` for other sources.
    pub fn text_tokenizer(&self) -> Result<Option<Tokenizer>> {
        self.check_paths()?;
        match self {
            DataSource::Text { path } => Ok(Some(fitted_tokenizer(&read_text(path.as_deref())?)?)),
            _ => Ok(None),
        }
    }

    /// Checks that the source's files are regular files and its folders folders, before
    /// reading: a source recorded in a model file from elsewhere may name anything (a device
    /// that never ends, a folder that is gone).
    pub fn check_paths(&self) -> Result<()> {
        let expect_file = |path: &Path| match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => Ok(()),
            _ => Err(Error::file(
                path,
                format!("{} needs a regular file here", self.describe()),
            )),
        };
        let expect_folder = |path: &Path| match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Ok(()),
            _ => Err(Error::file(path, format!("{} needs a folder here", self.describe()))),
        };
        match self {
            DataSource::Mnist { dir: Some(dir) } | DataSource::ImageFolder { dir, .. } => expect_folder(dir),
            DataSource::Csv { train, test, .. } => {
                expect_file(train)?;
                test.as_deref().map_or(Ok(()), expect_file)
            }
            DataSource::Text { path: Some(path) } => expect_file(path),
            DataSource::Mnist { dir: None }
            | DataSource::Text { path: None }
            | DataSource::Linreg
            | DataSource::Dataset { .. } => Ok(()),
        }
    }

    /// Loads the data as `model` takes it: reshaped to its declared input, labels one-hot
    /// encoded when its loss wants them. A text source reuses the model's tokenizer when it has
    /// one (a resumed run must see the same character ids), or fits one and attaches it.
    pub fn load_for(&self, model: &mut Model, loss: Loss) -> Result<Dataset> {
        self.check_paths()?;
        let raw = match self {
            DataSource::Mnist { dir } => mnist_dataset(dir.as_deref())?,
            DataSource::Dataset { spec } => keras_dataset(&DatasetSpec::parse(spec)?, model)?,
            DataSource::Csv {
                train,
                test,
                label,
                allow_nonfinite,
            } => csv_dataset(train, test.as_deref(), label.as_deref(), *allow_nonfinite, model)?,
            DataSource::ImageFolder { dir, seed } => image_folder_dataset(dir, model, *seed)?,
            DataSource::Text { path } => text_dataset(path.as_deref(), model)?,
            DataSource::Linreg => {
                let x = Tensor::from_vec(vec![4, 1], vec![1.0, 2.0, 3.0, 4.0])?;
                Dataset {
                    x_train: x.clone(),
                    y_train: x.clone(),
                    test: Some((x.clone(), x)),
                }
            }
        };
        raw.fit_to_model(model, loss, self)
    }

    /// Only the test part, as `model` takes it (a CSV source's `test` table, or its training
    /// table when it has none): what `strata evaluate` scores.
    pub fn load_test_for(&self, model: &mut Model, loss: Loss) -> Result<(Tensor, Tensor)> {
        let source = match self {
            DataSource::Csv {
                train,
                test,
                label,
                allow_nonfinite,
            } => DataSource::Csv {
                train: test.clone().unwrap_or_else(|| train.clone()),
                test: None,
                label: label.clone(),
                allow_nonfinite: *allow_nonfinite,
            },
            other => other.clone(),
        };
        let data = source.load_for(model, loss)?;
        match (data.test, &source) {
            (Some(test), _) => Ok(test),
            (None, DataSource::Csv { .. } | DataSource::ImageFolder { .. }) => Ok((data.x_train, data.y_train)),
            (None, other) => Err(Error::Usage(format!("{} has no test data", other.describe()))),
        }
    }
}

/// A folder or file as an absolute path (kept as given when the current folder is unknown), so
/// a saved model finds its data from any folder.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Training and test data as a model will see them.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Training samples.
    pub x_train: Tensor,
    /// Training targets.
    pub y_train: Tensor,
    /// Test samples and targets, when the source has them.
    pub test: Option<(Tensor, Tensor)>,
}

impl Dataset {
    /// Reshapes samples to the model's declared input shape (MNIST's 28×28 images for a
    /// (28, 28, 1) or (784) input), builds the model for them, and one-hot encodes labels when
    /// the loss wants arrays. Samples that cannot take the model's input shape are an error
    /// naming the source and both shapes.
    fn fit_to_model(self, model: &mut Model, loss: Loss, source: &DataSource) -> Result<Dataset> {
        let declared = model.input_shape().map(<[usize]>::to_vec).or_else(|| {
            model
                .layers()
                .first()
                .and_then(|l| l.declared_input_shape())
                .map(<[usize]>::to_vec)
        });
        let reshape = |x: Tensor| -> Result<Tensor> {
            let x = shape_samples(x, declared.as_deref())?;
            match &declared {
                Some(shape) if x.shape()[1..] != **shape => Err(Error::Data(format!(
                    "model '{}' takes samples of shape {}, but {} gives {}",
                    model.name(),
                    keras_shape(shape),
                    source.describe(),
                    keras_shape(&x.shape()[1..])
                ))),
                _ => Ok(x),
            }
        };
        let x_train = reshape(self.x_train)?;
        let test_x = self.test.as_ref().map(|(x, _)| reshape(x.clone())).transpose()?;
        model.build(&x_train.shape()[1..])?;
        let classes = model.output_shape().map_or(1, numel);
        let raw = raw_targets(loss);
        let test = match (test_x, self.test) {
            (Some(x), Some((_, y))) => Some((x, encode_targets(y, raw, classes)?)),
            _ => None,
        };
        Ok(Dataset {
            x_train,
            y_train: encode_targets(self.y_train, raw, classes)?,
            test,
        })
    }
}

/// Whether a loss takes labels as they are (sparse cross-entropy, regression) rather than one-hot.
pub fn raw_targets(loss: Loss) -> bool {
    !loss.name().contains("categorical_crossentropy") || loss.sparse_targets()
}

/// `x` with each sample reshaped to `shape` when the sizes agree but the shapes differ (MNIST's
/// 28×28 images for a (28, 28, 1) or (784) input); otherwise unchanged.
pub fn shape_samples(x: Tensor, shape: Option<&[usize]>) -> Result<Tensor> {
    match shape {
        Some(shape) if numel(shape) == x.row_len() && x.shape()[1..] != *shape => {
            let mut full = vec![x.rows()];
            full.extend(shape);
            x.reshape(&full)
        }
        _ => Ok(x),
    }
}

/// Labels one-hot encoded for `classes` outputs, unless the loss takes them as they are.
pub fn encode_targets(y: Tensor, raw_targets: bool, classes: usize) -> Result<Tensor> {
    if raw_targets || y.row_len() == classes || classes == 1 {
        Ok(y)
    } else {
        to_categorical(&y, classes)
    }
}

/// MNIST scaled to [0, 1], as the classic programs prepare it: from `dir`, else found where
/// [`crate::datasets::mnist::load_data`] looks.
fn mnist_dataset(dir: Option<&Path>) -> Result<Dataset> {
    let ((mut x_train, y_train), (mut x_test, y_test)) = match dir {
        Some(dir) => mnist::load_data_from(dir)?,
        None => mnist::load_data()?,
    };
    // In place: a scaled copy of the training images would double peak memory (188 MB each).
    // The product by 1/255 that `scale(&x, 1.0 / 255.0)` computes in the examples and the
    // README, not a division (they differ in the last bit for half the pixel values), so a
    // program reproduces a command-line run bit for bit.
    scale_in_place(&mut x_train, PIXEL_SCALE);
    scale_in_place(&mut x_test, PIXEL_SCALE);
    Ok(Dataset {
        x_train,
        y_train,
        test: Some((x_test, y_test)),
    })
}

/// The data set `spec` names, as Keras's examples prepare it: images scaled to [0, 1], labels
/// `(N)`; sequences padded and cut in front to the model's input length.
fn keras_dataset(spec: &DatasetSpec, model: &Model) -> Result<Dataset> {
    let flat = |y: Tensor| {
        let n = y.rows();
        y.reshape(&[n])
    };
    match spec.load()? {
        Loaded::Tensors(((mut x_train, y_train), (mut x_test, y_test))) => {
            if spec.name() != "boston_housing" {
                scale_in_place(&mut x_train, PIXEL_SCALE);
                scale_in_place(&mut x_test, PIXEL_SCALE);
            }
            Ok(Dataset {
                x_train,
                y_train: flat(y_train)?,
                test: Some((x_test, flat(y_test)?)),
            })
        }
        Loaded::Sequences(((x_train, y_train), (x_test, y_test))) => {
            let length = match declared_input(model) {
                Some(&[length]) => length,
                other => {
                    return Err(Error::Usage(format!(
                        "model '{}' takes {}, but {} holds sequences: its input must be (length,) word ids",
                        model.name(),
                        other.map_or("no declared input".into(), keras_shape),
                        spec.to_text()
                    )));
                }
            };
            let pad = PadOptions::default().maxlen(length);
            Ok(Dataset {
                x_train: pad_sequences(&x_train, &pad)?,
                y_train,
                test: Some((pad_sequences(&x_test, &pad)?, y_test)),
            })
        }
    }
}

/// The data set `--data` or the model file names, when it names one rather than a path; an
/// error for a name that is neither an existing path nor a data set.
fn dataset_named(data: Option<&Path>, model_file_data: Option<&str>) -> Result<Option<DatasetSpec>> {
    let text = match (data, model_file_data) {
        (Some(path), _) if path.exists() => return Ok(None),
        (Some(path), _) => path.to_string_lossy().to_string(),
        (None, Some(name)) if name != "mnist" => name.to_string(),
        _ => return Ok(None),
    };
    let looks_like_a_name = !text.contains(['/', '\\', '.']);
    match DatasetSpec::names_a_dataset(&text) || (looks_like_a_name && data.is_some()) {
        true => DatasetSpec::parse(&text).map(Some),
        false => Ok(None),
    }
}

/// The model's declared input shape (per sample).
fn declared_input(model: &Model) -> Option<&[usize]> {
    model
        .input_shape()
        .or_else(|| model.layers().first().and_then(|l| l.declared_input_shape()))
}

/// A CSV table to train on, with its test table. Text labels are numbered by the model's class
/// names when it has them (a resumed or evaluated model), otherwise in sorted order, and the
/// names are kept with the model.
fn csv_dataset(
    train: &Path,
    test: Option<&Path>,
    label: Option<&str>,
    allow_nonfinite: bool,
    model: &mut Model,
) -> Result<Dataset> {
    let label = label.map_or(LabelColumn::Last, |name| LabelColumn::Name(name.to_string()));
    let non_finite = if allow_nonfinite {
        NonFinite::Allow
    } else {
        NonFinite::Reject
    };
    let known = class_names(model)?;
    let (x_train, y_train, names) = load_csv_classes(train, label.clone(), non_finite, known.as_deref())?;
    let test = test
        .map(|path| load_csv_classes(path, label, non_finite, names.as_deref()).map(|(x, y, _)| (x, y)))
        .transpose()?;
    if let Some(names) = &names {
        set_class_names(model, names);
    }
    Ok(Dataset { x_train, y_train, test })
}

/// Images in one sub-folder per class, resized to the model's input and prepared as its
/// [`ImageInput`] record says (scaled to [0, 1] without one). They all train; a validation split
/// holds some out. The folder names become the model's class names, and how the images were
/// prepared its record, so `strata predict` prepares new images the same way; a model that
/// already has class names (resumed or evaluated) must be given the same classes.
fn image_folder_dataset(dir: &Path, model: &mut Model, seed: u64) -> Result<Dataset> {
    let declared = model
        .input_shape()
        .or_else(|| model.layers().first().and_then(|l| l.declared_input_shape()))
        .ok_or_else(|| {
            Error::Usage(format!(
                "model '{}' declares no input shape, so images cannot be sized for it",
                model.name()
            ))
        })?;
    let (height, width, channels) = image_geometry(declared)?;
    let options = ImageDatasetOptions {
        image_size: (height, width),
        color_mode: if channels == 1 { "grayscale" } else { "rgb" }.into(),
        seed,
        ..Default::default()
    };
    let (mut x_train, y_train, names) = image_dataset_from_directory(dir, &options)?;
    let mode = ImageInput::of(model)?.map_or(Mode::Unit, |record| record.mode);
    crate::applications::prepare_in_place(&mut x_train, mode)?;
    if let Some(known) = class_names(model)?
        && known != names
    {
        return Err(Error::file(
            dir,
            format!(
                "holds the classes {} but model '{}' was trained on {}",
                names.join(", "),
                model.name(),
                known.join(", ")
            ),
        ));
    }
    set_class_names(model, &names);
    ImageInput {
        image_size: Some((height, width)),
        mode,
    }
    .attach_to(model);
    Ok(Dataset {
        x_train,
        y_train,
        test: None,
    })
}

/// Next-character windows of the text as wide as the model's input. The model's tokenizer is
/// reused when it has one; otherwise one is fitted on the text and attached to the model.
fn text_dataset(path: Option<&Path>, model: &mut Model) -> Result<Dataset> {
    let text = read_text(path)?;
    let declared = model
        .input_shape()
        .or_else(|| model.layers().first().and_then(|l| l.declared_input_shape()));
    let window = match declared {
        Some(&[window]) => window,
        other => {
            return Err(Error::Usage(format!(
                "model '{}' trains on text but takes {}: its input must be (window,) character ids",
                model.name(),
                other.map_or("no declared input".into(), keras_shape)
            )));
        }
    };
    let tokenizer = match model.attachment(TOKENIZER) {
        Some(json) => Tokenizer::from_json(json)?,
        None => {
            let tokenizer = fitted_tokenizer(&text)?;
            model.set_attachment(TOKENIZER, tokenizer.to_json());
            tokenizer
        }
    };
    let ids = tokenizer.encode(&text)?;
    let (x, y) = sliding_windows(&ids, window, TEXT_STRIDE)?;
    let keep = ((1.0 - TEXT_TEST_FRACTION) * x.rows() as f64) as usize;
    Ok(Dataset {
        x_train: x.slice_rows(0, keep),
        y_train: y.slice_rows(0, keep),
        test: Some((x.slice_rows(keep, x.rows()), y.slice_rows(keep, y.rows()))),
    })
}

/// The text at `path`, or the bundled Hamlet.
fn read_text(path: Option<&Path>) -> Result<String> {
    match path {
        Some(path) => load_text(path),
        None => load_shakespeare(),
    }
}

/// A character-level tokenizer of `text`, case kept: one id per distinct character, 0 left
/// for padding.
fn fitted_tokenizer(text: &str) -> Result<Tokenizer> {
    let mut tokenizer = Tokenizer::new().char_level(true).lower(false);
    tokenizer.fit_on_texts(&[text])?;
    Ok(tokenizer)
}
