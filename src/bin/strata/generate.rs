//! `strata generate`: text from a model trained on text.

use clap::Args;
use std::path::PathBuf;
use strata::data::text::{Tokenizer, generate_text};
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
    /// Characters to add.
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
    let mut rng = Rng::new(args.seed);
    let text = generate_text(
        &mut model,
        &tokenizer,
        &args.prompt,
        args.length,
        args.temperature,
        &mut rng,
    )?;
    println!("{text}");
    Ok(())
}
