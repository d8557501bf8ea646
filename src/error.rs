//! The one error type every fallible strata call returns.
//!
//! Each variant carries what a person needs to act on it: which layer or file, what was
//! expected and what was received.

use thiserror::Error;

/// Everything a user of strata can get wrong, and every file or system failure strata meets.
#[derive(Debug, Error)]
pub enum Error {
    /// A layer received an input of the wrong shape.
    #[error("layer '{layer}' expected input shape {expected}, but received input with shape {received}")]
    LayerShape {
        /// The layer's name, e.g. `dense_1`.
        layer: String,
        /// What the layer accepts, e.g. `(None, 784)`.
        expected: String,
        /// What it was given.
        received: String,
    },
    /// Two tensors whose shapes cannot be combined by an operation.
    #[error("shape mismatch in {op}: {lhs:?} and {rhs:?}")]
    ShapeMismatch {
        /// The operation, e.g. `matmul`.
        op: &'static str,
        /// Shape of the first operand.
        lhs: Vec<usize>,
        /// Shape of the second operand.
        rhs: Vec<usize>,
    },
    /// A tensor was built from data whose length does not match its shape.
    #[error("cannot make a tensor of shape {shape:?} ({expected} values) from {received} values")]
    DataLength {
        /// The requested shape.
        shape: Vec<usize>,
        /// Number of values the shape needs.
        expected: usize,
        /// Number of values given.
        received: usize,
    },
    /// An argument outside its valid range (batch size 0, negative learning rate, ...).
    #[error("invalid argument {name}={value}: {reason}")]
    InvalidArgument {
        /// The argument's Keras name, e.g. `batch_size`.
        name: String,
        /// The value received, as text.
        value: String,
        /// What a valid value looks like.
        reason: String,
    },
    /// A name (optimizer, loss, activation, initializer, layer class, metric) strata does not know.
    #[error("unknown {kind} '{name}'; valid names are: {valid}")]
    UnknownName {
        /// What kind of thing was named, e.g. `optimizer`.
        kind: &'static str,
        /// The name received.
        name: String,
        /// The accepted names, comma-separated.
        valid: String,
    },
    /// Training data that cannot be used as given (x/y lengths, labels out of range, ...).
    #[error("invalid data: {0}")]
    Data(String),
    /// A model used before it was ready (not built, not compiled).
    #[error("{0}")]
    Usage(String),
    /// The loss became NaN or infinite.
    #[error(
        "loss became {value} at epoch {epoch}, batch {batch}; try a lower learning rate or check the data for NaN/inf"
    )]
    NonFiniteLoss {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch within the epoch.
        batch: usize,
        /// The loss value (NaN or ±inf).
        value: f32,
    },
    /// A data or model file that is missing, truncated or malformed.
    #[error("{path}: {reason}")]
    File {
        /// The file's path.
        path: String,
        /// What is wrong with it, and where.
        reason: String,
    },
    /// An operating-system I/O failure.
    #[error("{context}: {source}")]
    Io {
        /// What strata was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A model, layer or file that would need more memory than the budget allows
    /// ([`crate::limits`]), found before anything is allocated.
    #[error(
        "{what} would need {needed}, over the memory budget of {budget}; raise it with --max-memory or STRATA_MAX_MEMORY if the machine has the memory"
    )]
    OverBudget {
        /// What asked for it: the layer (name, class, shape) or the file.
        what: String,
        /// How much it needs, as text (sizes beyond 2⁶⁴ bytes are not printed wrapped).
        needed: String,
        /// The budget in force, as text.
        budget: String,
    },
    /// A layer's own settings are wrong (an unknown activation, an invalid argument): the
    /// error of the setting, with the layer that has it.
    #[error("layer '{layer}' ({class}): {source}")]
    InLayer {
        /// The layer's name.
        layer: String,
        /// Its Keras class.
        class: String,
        /// What is wrong with it.
        source: Box<Error>,
    },
}

/// `Result` with [`enum@Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(name: &str, value: impl std::fmt::Display, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            name: name.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::UnknownName`].
    pub fn unknown(kind: &'static str, name: &str, valid: &[&str]) -> Self {
        Error::UnknownName {
            kind,
            name: name.to_string(),
            valid: valid.join(", "),
        }
    }

    /// This error with the layer it comes from, when the error does not name it already: an
    /// unknown name or an invalid argument, which on their own would leave a user searching the
    /// model for the layer.
    pub fn in_layer(self, layer: &str, class: &str) -> Self {
        let named = self.to_string().contains(&format!("'{layer}'"));
        match self {
            Error::UnknownName { .. } | Error::InvalidArgument { .. } if !named => Error::InLayer {
                layer: layer.to_string(),
                class: class.to_string(),
                source: Box::new(self),
            },
            other => other,
        }
    }

    /// The error itself, inside any [`Error::InLayer`] that names its layer: for code that
    /// matches on the kind of error.
    pub fn root(&self) -> &Error {
        match self {
            Error::InLayer { source, .. } => source.root(),
            other => other,
        }
    }

    /// What went wrong, without the `invalid data:` heading of [`Error::Data`]: for messages
    /// that wrap this error in another (a file, a layer list entry), which would repeat it.
    pub fn reason(&self) -> String {
        match self {
            Error::Data(reason) => reason.clone(),
            other => other.to_string(),
        }
    }

    /// Shorthand for [`Error::File`].
    pub fn file(path: impl AsRef<std::path::Path>, reason: impl Into<String>) -> Self {
        Error::File {
            path: path.as_ref().display().to_string(),
            reason: reason.into(),
        }
    }
}

/// Formats a whole array's shape the way NumPy and Keras print one: `(60000, 28, 28)`, `(5,)`,
/// `()` for a scalar (never Rust's `[60000, 28, 28]`).
///
/// ```
/// use strata::error::array_shape;
/// assert_eq!(array_shape(&[60000, 28, 28]), "(60000, 28, 28)");
/// assert_eq!(array_shape(&[5]), "(5,)");
/// ```
pub fn array_shape(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    match dims.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    }
}

/// Formats a per-sample shape the way Keras prints it: `(None, 28, 28)`.
pub fn keras_shape(shape: &[usize]) -> String {
    let mut text = String::from("(None");
    for dim in shape {
        text.push_str(&format!(", {dim}"));
    }
    text.push(')');
    text
}
