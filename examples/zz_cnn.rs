use std::time::Instant;
use strata::io::config::load_model_spec;
use strata::prelude::*;
fn main() -> strata::Result<()> {
    let name = std::env::args().nth(1).unwrap_or("cnn".into());
    let batch: usize = std::env::args().nth(2).and_then(|b| b.parse().ok()).unwrap_or(1);
    let calls: usize = 20000;
    let mut model = load_model_spec(&name)?.model;
    let input = model.layers()[0]
        .declared_input_shape()
        .map(<[usize]>::to_vec)
        .unwrap_or_default();
    model.build(&input)?;
    let mut shape = vec![batch];
    shape.extend(&input);
    let n: usize = shape.iter().product();
    let x = Tensor::from_vec(shape, (0..n).map(|i| (i % 13) as f32 / 13.0).collect())?;
    for _ in 0..100 {
        model.predict(&x, batch)?;
    }
    strata::autograd::profile::report();
    let t = Instant::now();
    for _ in 0..calls {
        model.predict(&x, batch)?;
    }
    eprintln!("per call {:.2} us", t.elapsed().as_secs_f64() / calls as f64 * 1e6);
    strata::autograd::profile::report();
    Ok(())
}
