//! `strata generate`: text from a model trained on text.

use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use strata::data::text::{MAX_GENERATE_LENGTH, Tokenizer, generate_text_streaming};
use strata::rng::Rng;
use strata::run::TOKENIZER;
use strata::{Error, Result};

#[derive(Args)]
pub(crate) struct GenerateArgs {
    /// The model file, saved by `strata train --save` from a text model.
    #[arg(long)]
    model: PathBuf,
    /// The text to continue (its characters must be in the model's vocabulary).
    #[arg(long)]
    prompt: String,
    /// Characters (tokens) to add, printed as they are drawn; at most 1,000,000.
    #[arg(long, default_value_t = 200)]
    length: usize,
    /// Sampling temperature: below 1 safer, above 1 more varied, 0 always the likeliest.
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    /// Seed of the sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub(crate) fn run(args: &GenerateArgs) -> Result<()> {
    let mut model = strata::load_model(&args.model)?;
    let json = model.attachment(TOKENIZER).ok_or_else(|| {
        Error::Usage(
            "the model file has no tokenizer: train it on text (strata train --model char_rnn --save FILE)".into(),
        )
    })?;
    let tokenizer = Tokenizer::from_json(json)?;
    if args.length > MAX_GENERATE_LENGTH {
        return Err(Error::invalid(
            "--length",
            args.length,
            format!("at most {MAX_GENERATE_LENGTH} characters (tokens) per run"),
        ));
    }
    let mut rng = Rng::new(args.seed);
    let mut out = std::io::stdout().lock();
    let io = |source| Error::Io {
        context: "cannot write the generated text to stdout".into(),
        source,
    };
    // The prompt shows once the model is known to work; each token as soon as it is drawn.
    let mut started = false;
    generate_text_streaming(
        &mut model,
        &tokenizer,
        &args.prompt,
        args.length,
        args.temperature,
        &mut rng,
        |piece| {
            if !started {
                out.write_all(args.prompt.as_bytes()).map_err(io)?;
                started = true;
            }
            out.write_all(piece.as_bytes()).map_err(io)?;
            out.flush().map_err(io)
        },
    )?;
    if !started {
        out.write_all(args.prompt.as_bytes()).map_err(io)?;
    }
    writeln!(out).map_err(io)
}
