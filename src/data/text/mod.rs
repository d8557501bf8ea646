//! Text for sequence models: a [`Tokenizer`] with Keras's names and behaviour, [`pad_sequences`],
//! sliding windows for next-token language models ([`sliding_windows`],
//! [`sliding_windows_shifted`]) and the bundled *Hamlet* ([`load_shakespeare`]).
//!
//! A character-level language model's data, end to end:
//!
//! ```no_run
//! use strata::data::text::{Tokenizer, load_shakespeare, sliding_windows};
//! let text = load_shakespeare()?;
//! let mut tokenizer = Tokenizer::new().char_level(true).lower(false);
//! tokenizer.fit_on_texts(&[&text])?;
//! let ids = tokenizer.encode(&text)?;
//! let (x, y) = sliding_windows(&ids, 100, 3)?; // x: (N, 100) ids, y: (N) the id after each window
//! let classes = tokenizer.vocabulary_size(); // softmax units (id 0, padding, included)
//! # Ok::<(), strata::Error>(())
//! ```

mod corpus;
mod generate;
mod sequences;
mod tokenizer;
mod tokenizer_json;

pub use corpus::{load_shakespeare, load_text};
pub use generate::{MAX_GENERATE_LENGTH, check_vocabulary, generate_text, generate_text_streaming};
pub use sequences::{PadOptions, Side, pad_sequences, sliding_windows, sliding_windows_shifted};
pub use tokenizer::{DEFAULT_FILTERS, Tokenizer};
