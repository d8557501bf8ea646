use std::time::Instant;
use strata::prelude::*;
fn main() -> strata::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let batch: usize = args[1].parse().unwrap();
    let calls: usize = args[2].parse().unwrap();
    strata::kernels::join_pool(Some(2));
    let mut model = strata::io::load_onnx(&args[0])?;
    let shape = model.input_shape().map(<[usize]>::to_vec).unwrap_or_default();
    let per: usize = shape.iter().product();
    let x = Tensor::from_vec(
        [&[32][..], &shape].concat(),
        (0..32 * per).map(|i| (i % 251) as f32 / 125.5 - 1.0).collect(),
    )?;
    model.predict(&x, batch)?;
    let mut times = vec![];
    for _ in 0..calls {
        let t = Instant::now();
        model.predict(&x, batch)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!("batch {batch}: min {:.2} median {:.2} ms", times[0], times[calls / 2]);
    strata::autograd::profile::report();
    Ok(())
}
