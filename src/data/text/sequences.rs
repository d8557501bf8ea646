//! Sequences of ids into tensors: padding to one length (Keras's `pad_sequences`) and sliding
//! windows over one long sequence for next-token language models.

use crate::error::{Error, Result};
use crate::tensor::{Tensor, budgeted_numel};

/// Which end of a sequence padding is added to, or truncation removes from (Keras's `"pre"` and
/// `"post"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Side {
    /// The start (Keras's default for both).
    #[default]
    Pre,
    /// The end.
    Post,
}

impl Side {
    /// `"pre"` or `"post"`; anything else is an error naming `argument` (`padding` or
    /// `truncating`).
    pub fn from_name(name: &str, argument: &str) -> Result<Side> {
        match name {
            "pre" => Ok(Side::Pre),
            "post" => Ok(Side::Post),
            _ => Err(Error::invalid(
                argument,
                format!("{name:?}"),
                "must be \"pre\" or \"post\"",
            )),
        }
    }

    /// Keras's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Side::Pre => "pre",
            Side::Post => "post",
        }
    }
}

/// The arguments of [`pad_sequences`] after `sequences`, with Keras's defaults: the longest
/// sequence's length, padding and truncating at the start, padding value 0.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PadOptions {
    /// Length of every row; `None`: the longest sequence's.
    pub maxlen: Option<usize>,
    /// Where short sequences get `value`s.
    pub padding: Side,
    /// Where long sequences lose ids.
    pub truncating: Side,
    /// The padding value.
    pub value: f32,
}

impl PadOptions {
    /// Sets the length of every row.
    pub fn maxlen(mut self, maxlen: usize) -> Self {
        self.maxlen = Some(maxlen);
        self
    }

    /// Sets where padding goes.
    pub fn padding(mut self, padding: Side) -> Self {
        self.padding = padding;
        self
    }

    /// Sets where truncation cuts.
    pub fn truncating(mut self, truncating: Side) -> Self {
        self.truncating = truncating;
        self
    }

    /// Sets the padding value.
    pub fn value(mut self, value: f32) -> Self {
        self.value = value;
        self
    }
}

/// The sequences as one `(N, maxlen)` tensor, as `keras.utils.pad_sequences` returns them:
/// shorter ones padded with `value`, longer ones truncated, at the sides the options say.
///
/// ```
/// use strata::data::text::{PadOptions, Side, pad_sequences};
/// let padded = pad_sequences(&[vec![1, 2, 3], vec![4, 5]], &PadOptions::default().maxlen(4)).unwrap();
/// assert_eq!(padded.data(), &[0.0, 1.0, 2.0, 3.0, 0.0, 0.0, 4.0, 5.0]);
/// let cut = pad_sequences(&[vec![1, 2, 3]], &PadOptions::default().maxlen(2).truncating(Side::Post)).unwrap();
/// assert_eq!(cut.data(), &[1.0, 2.0]);
/// ```
///
/// Errors: `maxlen` 0, no `maxlen` with every sequence empty (or none given), an id above 2^24
/// (not exact in `f32`).
pub fn pad_sequences<S: AsRef<[usize]>>(sequences: &[S], options: &PadOptions) -> Result<Tensor> {
    let longest = sequences.iter().map(|s| s.as_ref().len()).max().unwrap_or(0);
    let maxlen = options.maxlen.unwrap_or(longest);
    if maxlen == 0 {
        return Err(match options.maxlen {
            Some(_) => Error::invalid("maxlen", 0, "must be at least 1"),
            None => Error::Data(format!(
                "pad_sequences got {} sequence(s), all empty, and no maxlen",
                sequences.len()
            )),
        });
    }
    let count = budgeted_numel(
        || format!("pad_sequences of {} sequence(s) to maxlen {maxlen}", sequences.len()),
        &[sequences.len(), maxlen],
    )?;
    let mut data = vec![options.value; count];
    for (row, sequence) in data.chunks_exact_mut(maxlen).zip(sequences) {
        let sequence = sequence.as_ref();
        check_exact_ids("sequences", sequence)?;
        let kept = match options.truncating {
            Side::Pre => &sequence[sequence.len().saturating_sub(maxlen)..],
            Side::Post => &sequence[..sequence.len().min(maxlen)],
        };
        let start = match options.padding {
            Side::Pre => maxlen - kept.len(),
            Side::Post => 0,
        };
        for (slot, &id) in row[start..].iter_mut().zip(kept) {
            *slot = id as f32;
        }
    }
    Tensor::from_vec(vec![sequences.len(), maxlen], data)
}

/// The window starts for [`sliding_windows`] and [`sliding_windows_shifted`]: 0, `stride`, …
/// while a whole window and the id after it fit in `len` ids.
fn window_starts(len: usize, window: usize, stride: usize) -> Result<impl Iterator<Item = usize>> {
    if window == 0 {
        return Err(Error::invalid("window", 0, "must be at least 1"));
    }
    if stride == 0 {
        return Err(Error::invalid("stride", 0, "must be at least 1"));
    }
    if len <= window {
        return Err(Error::Data(format!(
            "{len} ids are too few for windows of {window}: at least {} are needed (a window and the id after it)",
            window + 1
        )));
    }
    Ok((0..len - window).step_by(stride))
}

/// Next-token training pairs from one long sequence of ids, for a model that reads a window and
/// predicts the id after it: inputs `(N, window)` holding `ids[s .. s + window]` and targets `(N)`
/// holding `ids[s + window]`, for window starts `s = 0, stride, 2·stride, …` as long as the
/// target exists.
///
/// ```
/// use strata::data::text::sliding_windows;
/// let (x, y) = sliding_windows(&[1, 2, 3, 4, 5, 6], 3, 2).unwrap();
/// assert_eq!((x.shape(), x.data()), (&[2, 3][..], &[1.0, 2.0, 3.0, 3.0, 4.0, 5.0][..]));
/// assert_eq!(y.data(), &[4.0, 6.0]);
/// ```
///
/// Errors: `window` or `stride` 0, fewer than `window + 1` ids, an id above 2^24.
pub fn sliding_windows(ids: &[usize], window: usize, stride: usize) -> Result<(Tensor, Tensor)> {
    check_exact_ids("ids", ids)?;
    let starts: Vec<usize> = window_starts(ids.len(), window, stride)?.collect();
    let inputs = starts.iter().flat_map(|&s| &ids[s..s + window]);
    let targets = starts.iter().map(|&s| ids[s + window] as f32);
    Ok((
        Tensor::from_vec(vec![starts.len(), window], inputs.map(|&id| id as f32).collect())?,
        Tensor::from_vec(vec![starts.len()], targets.collect())?,
    ))
}

/// Like [`sliding_windows`] but for a model that predicts at every position (a recurrent layer
/// with `return_sequences=True`): targets `(N, window)` are the inputs shifted one id ahead,
/// `ids[s + 1 .. s + window + 1]`, so position `t`'s target is the id that follows it.
///
/// ```
/// use strata::data::text::sliding_windows_shifted;
/// let (x, y) = sliding_windows_shifted(&[1, 2, 3, 4, 5], 3, 1).unwrap();
/// assert_eq!(x.data(), &[1.0, 2.0, 3.0, 2.0, 3.0, 4.0]);
/// assert_eq!(y.data(), &[2.0, 3.0, 4.0, 3.0, 4.0, 5.0]);
/// ```
///
/// Errors: as for [`sliding_windows`].
pub fn sliding_windows_shifted(ids: &[usize], window: usize, stride: usize) -> Result<(Tensor, Tensor)> {
    check_exact_ids("ids", ids)?;
    let starts: Vec<usize> = window_starts(ids.len(), window, stride)?.collect();
    let rows = |offset: usize| -> Vec<f32> {
        starts
            .iter()
            .flat_map(|&s| &ids[s + offset..s + offset + window])
            .map(|&id| id as f32)
            .collect()
    };
    Ok((
        Tensor::from_vec(vec![starts.len(), window], rows(0))?,
        Tensor::from_vec(vec![starts.len(), window], rows(1))?,
    ))
}

/// Ids above this are not exact in the `f32` tensors these functions return.
const LARGEST_EXACT_ID: usize = 1 << 24;

/// Whether every id fits exactly in an `f32`; the first that does not is an error.
fn check_exact_ids<'a>(argument: &str, ids: impl IntoIterator<Item = &'a usize>) -> Result<()> {
    match ids.into_iter().find(|&&id| id > LARGEST_EXACT_ID) {
        Some(id) => Err(Error::invalid(
            argument,
            id,
            "ids above 2^24 are not exact in an f32 tensor",
        )),
        None => Ok(()),
    }
}
