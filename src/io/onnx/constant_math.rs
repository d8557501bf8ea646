//! Element-wise operators on constants, computed at import: comparisons, logical operators,
//! powers, one-operand functions and cumulative sums — the masks and position ids exporters
//! compute from shapes (GPT-2's causal mask `positions <= positions`, OPT's position ids as a
//! cumulative sum of its attention mask, Llama's rotary angles) — and the matrix product of
//! constants (a recurrent layer's zero initial state times its recurrent kernel).

use super::tensors::{Constant, Values, batch_factor};

/// Most values a constant computed at import may hold (the weights themselves are read, not
/// computed: this bounds what shape arithmetic can make).
pub(super) const MAX_FOLDED_VALUES: usize = 1 << 26;

/// `Equal`, `Less`, `LessOrEqual`, `Greater`, `GreaterOrEqual` of two constants: 1 where the
/// comparison holds, 0 where not (integers for booleans; GPT-2's causal mask is
/// `positions <= positions`).
pub(super) fn compare(op: &str, a: &Constant, b: &Constant) -> Result<Constant, String> {
    let holds = |order: std::cmp::Ordering| match op {
        "Equal" => order.is_eq(),
        "Less" => order.is_lt(),
        "LessOrEqual" => order.is_le(),
        "Greater" => order.is_gt(),
        _ => order.is_ge(),
    };
    let (shape, padded) = broadcast(&[&a.shape, &b.shape])?;
    let count: usize = shape.iter().product();
    let pick = |n: usize, k: usize| source_index(&padded[k], &shape, n);
    let values = match (&a.values, &b.values) {
        (Values::Int(x), Values::Int(y)) => (0..count)
            .map(|n| {
                let (p, q) = (x[pick(n, 0)], y[pick(n, 1)]);
                // A multiple of the batch size is at least 1: against a number below 1 the
                // answer is known (torch's `expand` asks whether a size is -1), otherwise it
                // waits for a batch.
                match (batch_factor(p), batch_factor(q)) {
                    (Some(_), None) if q < 1 => Ok(i64::from(holds(std::cmp::Ordering::Greater))),
                    (None, Some(_)) if p < 1 => Ok(i64::from(holds(std::cmp::Ordering::Less))),
                    (Some(_), None) | (None, Some(_)) => {
                        Err("compares the batch size with a number, which strata does not fix at import")
                    }
                    _ => Ok(i64::from(holds(p.cmp(&q)))),
                }
            })
            .collect::<Result<_, _>>()?,
        _ => {
            let (x, y) = (a.numbers("its first input")?, b.numbers("its second input")?);
            (0..count)
                .map(|n| {
                    let order = x[pick(n, 0)].partial_cmp(&y[pick(n, 1)]);
                    // A NaN compares false, as in ONNX.
                    i64::from(order.is_some_and(holds))
                })
                .collect()
        }
    };
    Ok(Constant::int(shape, values))
}

/// `CumSum` of a constant along `axis`; `(exclusive, reverse)`: each sum leaves out its own
/// value, and runs from the end (OPT's position ids, a cumulative sum of its attention mask).
pub(super) fn cumulative_sum(x: &Constant, axis: i64, (exclusive, reverse): (bool, bool)) -> Result<Constant, String> {
    let rank = x.shape.len() as i64;
    let axis = usize::try_from(if axis < 0 { axis + rank } else { axis })
        .ok()
        .filter(|&a| a < x.shape.len())
        .ok_or_else(|| format!("CumSum's axis {axis} is out of range for shape {:?}", x.shape))?;
    let size = x.shape[axis];
    let inner: usize = x.shape[axis + 1..].iter().product();
    let outer: usize = x.shape[..axis].iter().product();
    // The flat indices along the axis of each (outer, inner) line, in the order summed.
    let line = move |o: usize, i: usize| {
        (0..size)
            .map(move |k| if reverse { size - 1 - k } else { k })
            .map(move |k| (o * size + k) * inner + i)
    };
    let lines = move || (0..outer).flat_map(move |o| (0..inner).map(move |i| (o, i)));
    Ok(match &x.values {
        Values::Int(v) => {
            let mut out = vec![0i64; v.len()];
            for (o, i) in lines() {
                let mut sum = 0i64;
                for at in line(o, i) {
                    let next = sum.checked_add(v[at]).ok_or("CumSum overflows an integer")?;
                    out[at] = if exclusive { sum } else { next };
                    sum = next;
                }
            }
            Constant::int(x.shape.clone(), out)
        }
        Values::Float(v) => {
            let mut out = vec![0f32; v.len()];
            for (o, i) in lines() {
                let mut sum = 0f32;
                for at in line(o, i) {
                    out[at] = if exclusive { sum } else { sum + v[at] };
                    sum += v[at];
                }
            }
            Constant::float(x.shape.clone(), out)
        }
    })
}

/// `Max` or `Min` of constants, broadcast as ONNX does (integers when all are).
pub(super) fn extremum(op: &str, parts: &[std::rc::Rc<Constant>]) -> Result<Constant, String> {
    let shapes: Vec<&[usize]> = parts.iter().map(|c| c.shape.as_slice()).collect();
    let (shape, padded) = broadcast(&shapes)?;
    let count: usize = shape.iter().product();
    let pick = |n: usize, k: usize| source_index(&padded[k], &shape, n);
    let integers: Option<Vec<&Vec<i64>>> = parts
        .iter()
        .map(|c| match &c.values {
            Values::Int(v) => Some(v),
            Values::Float(_) => None,
        })
        .collect();
    if let Some(values) = integers {
        let fold = |n: usize| {
            let all = values.iter().enumerate().map(|(k, v)| v[pick(n, k)]);
            if op == "Max" { all.max() } else { all.min() }.unwrap_or(0)
        };
        return Ok(Constant::int(shape.clone(), (0..count).map(fold).collect()));
    }
    let values: Vec<Vec<f32>> = parts.iter().map(|c| c.numbers("an input")).collect::<Result<_, _>>()?;
    let fold = |n: usize| {
        let all = values.iter().enumerate().map(|(k, v)| v[pick(n, k)]);
        if op == "Max" {
            all.fold(f32::NEG_INFINITY, f32::max)
        } else {
            all.fold(f32::INFINITY, f32::min)
        }
    };
    Ok(Constant::float(shape.clone(), (0..count).map(fold).collect()))
}

/// `And`, `Or`, `Xor` of two boolean constants (non-zero is true).
pub(super) fn logical(op: &str, a: &Constant, b: &Constant) -> Result<Constant, String> {
    let (shape, padded) = broadcast(&[&a.shape, &b.shape])?;
    let count: usize = shape.iter().product();
    let pick = |n: usize, k: usize| source_index(&padded[k], &shape, n);
    let (x, y) = (a.numbers("its first input")?, b.numbers("its second input")?);
    let values = (0..count)
        .map(|n| {
            let (p, q) = (x[pick(n, 0)] != 0.0, y[pick(n, 1)] != 0.0);
            i64::from(match op {
                "And" => p && q,
                "Or" => p || q,
                _ => p != q,
            })
        })
        .collect();
    Ok(Constant::int(shape, values))
}

/// `Pow` of two constants (the exponent broadcast as ONNX does): integers when both are, in
/// floats otherwise.
pub(super) fn power(a: &Constant, b: &Constant) -> Result<Constant, String> {
    let (shape, padded) = broadcast(&[&a.shape, &b.shape])?;
    let count: usize = shape.iter().product();
    let pick = |n: usize, k: usize| source_index(&padded[k], &shape, n);
    if let (Values::Int(x), Values::Int(y)) = (&a.values, &b.values) {
        let values = (0..count)
            .map(|n| {
                let (base, exponent) = (x[pick(n, 0)], y[pick(n, 1)]);
                u32::try_from(exponent)
                    .ok()
                    .and_then(|e| base.checked_pow(e))
                    .ok_or_else(|| format!("Pow of integers {base} and {exponent} is not a whole number strata holds"))
            })
            .collect::<Result<_, _>>()?;
        return Ok(Constant::int(shape, values));
    }
    let (x, y) = (a.numbers("its base")?, b.numbers("its exponent")?);
    let values = (0..count).map(|n| x[pick(n, 0)].powf(y[pick(n, 1)])).collect();
    Ok(Constant::float(shape, values))
}

/// A one-operand operator on a constant: `Not` of booleans, `Neg`, `Abs`, `Sqrt`,
/// `Reciprocal`, `Floor`, `Ceil`, `Sin`, `Cos` of numbers (integers stay integers where the operator keeps
/// them whole).
pub(super) fn unary(op: &str, x: &Constant) -> Result<Constant, String> {
    if op == "Not" {
        let values = x.numbers("its input")?.iter().map(|&v| i64::from(v == 0.0)).collect();
        return Ok(Constant::int(x.shape.clone(), values));
    }
    if let Values::Int(v) = &x.values {
        let whole: Option<Vec<i64>> = match op {
            "Neg" => v.iter().map(|&p| p.checked_neg()).collect(),
            "Abs" => v.iter().map(|&p| p.checked_abs()).collect(),
            "Floor" | "Ceil" => Some(v.clone()),
            _ => return float_unary(op, x),
        };
        return whole
            .map(|values| Constant::int(x.shape.clone(), values))
            .ok_or_else(|| format!("{op} overflows an integer"));
    }
    float_unary(op, x)
}

/// [`unary`]'s operators in floats.
fn float_unary(op: &str, x: &Constant) -> Result<Constant, String> {
    let f: fn(f32) -> f32 = match op {
        "Neg" => |v| -v,
        "Abs" => f32::abs,
        "Sqrt" => f32::sqrt,
        "Reciprocal" => |v| 1.0 / v,
        "Floor" => f32::floor,
        "Ceil" => f32::ceil,
        "Sin" => f32::sin,
        "Cos" => f32::cos,
        _ => return Err(format!("{op} is not computed at import")),
    };
    let values = x.numbers("its input")?.into_iter().map(f).collect();
    Ok(Constant::float(x.shape.clone(), values))
}

/// Most multiply-adds a product of constants may take at import: a hostile file cannot make
/// the import run for minutes.
const MAX_FOLDED_PRODUCT: usize = 1 << 30;

/// `MatMul` of two constants, as NumPy's `matmul`: a 1-D first operand is a row and a 1-D second
/// one a column (the added axis dropped from the result), leading axes broadcast. PyTorch's
/// torch.export exporter unrolls `nn.RNN` into per-step products that start from a zero initial
/// state: `zeros · W_hh` is a product of constants (its batch axis stands at 1, see `expand`).
pub(super) fn matmul(a: &Constant, b: &Constant) -> Result<Constant, String> {
    let (x, y) = (a.numbers("its first input")?, b.numbers("its second input")?);
    if a.shape.is_empty() || b.shape.is_empty() {
        return Err("MatMul of a scalar".into());
    }
    let a_shape = if a.shape.len() == 1 {
        vec![1, a.shape[0]]
    } else {
        a.shape.clone()
    };
    let b_shape = if b.shape.len() == 1 {
        vec![b.shape[0], 1]
    } else {
        b.shape.clone()
    };
    let (ra, rb) = (a_shape.len(), b_shape.len());
    let (m, k, n) = (a_shape[ra - 2], a_shape[ra - 1], b_shape[rb - 1]);
    if b_shape[rb - 2] != k {
        return Err(format!("MatMul of shapes {:?} and {:?}", a.shape, b.shape));
    }
    let (batch, padded) = broadcast(&[&a_shape[..ra - 2], &b_shape[..rb - 2]])?;
    let batches: usize = batch.iter().product();
    let work = [batches, m, k, n].into_iter().try_fold(1usize, |t, d| t.checked_mul(d));
    let count = [batches, m, n].into_iter().try_fold(1usize, |t, d| t.checked_mul(d));
    if work.is_none_or(|w| w > MAX_FOLDED_PRODUCT) || count.is_none_or(|c| c > MAX_FOLDED_VALUES) {
        return Err(format!(
            "MatMul of shapes {:?} and {:?} is too large to compute at import",
            a.shape, b.shape
        ));
    }
    let mut out = vec![0.0f32; batches * m * n];
    for (t, out) in out.chunks_exact_mut((m * n).max(1)).enumerate().take(batches) {
        let left = &x[source_index(&padded[0], &batch, t) * m * k..][..m * k];
        let right = &y[source_index(&padded[1], &batch, t) * k * n..][..k * n];
        for (row, out_row) in left.chunks_exact(k.max(1)).zip(out.chunks_exact_mut(n.max(1))) {
            for (&value, right_row) in row.iter().zip(right.chunks_exact(n.max(1))) {
                out_row.iter_mut().zip(right_row).for_each(|(o, &r)| *o += value * r);
            }
        }
    }
    let mut shape = batch;
    if a.shape.len() > 1 {
        shape.push(m);
    }
    if b.shape.len() > 1 {
        shape.push(n);
    }
    Ok(Constant::float(shape, out))
}

/// The shape `shapes` broadcast to (ONNX's NumPy rules), with each shape padded on the left
/// with 1s to its length; an error when they do not broadcast or the result is too large.
pub(super) fn broadcast(shapes: &[&[usize]]) -> Result<(Vec<usize>, Vec<Vec<usize>>), String> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let padded: Vec<Vec<usize>> = shapes
        .iter()
        .map(|s| {
            std::iter::repeat_n(1, rank - s.len())
                .chain(s.iter().copied())
                .collect()
        })
        .collect();
    let mut shape = vec![1; rank];
    for k in 0..rank {
        for s in &padded {
            shape[k] = match (shape[k], s[k]) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => return Err(format!("shapes {shapes:?} do not broadcast")),
            };
        }
    }
    let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if count.is_none_or(|n| n > MAX_FOLDED_VALUES) {
        return Err(format!(
            "broadcasting {shapes:?} makes a constant too large to compute at import"
        ));
    }
    Ok((shape, padded))
}

/// The flat index into an operand of (padded) shape `from` of the broadcast result's flat
/// index `flat`, the result being of shape `to`.
pub(super) fn source_index(from: &[usize], to: &[usize], flat: usize) -> usize {
    let (mut rest, mut at, mut stride) = (flat, 0, 1);
    for k in (0..to.len()).rev() {
        let i = rest % to[k];
        rest /= to[k];
        if from[k] != 1 {
            at += i * stride;
        }
        stride *= from[k];
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::onnx::tensors::BATCH;

    fn ints(shape: &[usize], values: &[i64]) -> Constant {
        Constant::int(shape.to_vec(), values.to_vec())
    }

    fn values(c: &Constant) -> Vec<i64> {
        match &c.values {
            Values::Int(v) => v.clone(),
            Values::Float(v) => panic!("floats {v:?}"),
        }
    }

    fn floats(c: &Constant) -> Vec<f32> {
        match &c.values {
            Values::Float(v) => v.clone(),
            Values::Int(v) => panic!("integers {v:?}"),
        }
    }

    #[test]
    fn products_of_constants_follow_numpy() {
        let a = Constant::float(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let b = Constant::float(vec![3, 2], vec![1.0, -1.0, 0.5, 2.0, -2.0, 0.0]);
        // By hand: row 1 = (1 + 1 - 6, -1 + 4 + 0), row 2 = (4 + 2.5 - 12, -4 + 10 + 0).
        let c = matmul(&a, &b).unwrap();
        assert_eq!(c.shape, [2, 2]);
        assert_eq!(floats(&c), [-4.0, 3.0, -5.5, 6.0]);
        // A 1-D first operand is a row, and its axis is dropped; leading axes broadcast.
        let row = Constant::float(vec![3], vec![1.0, 0.0, -1.0]);
        let r = matmul(&row, &b).unwrap();
        assert_eq!((r.shape.clone(), floats(&r)), (vec![2], vec![3.0, -1.0]));
        let stacked = Constant::float(vec![2, 1, 3], vec![1.0, 0.0, -1.0, 0.0, 1.0, 0.0]);
        let s = matmul(&stacked, &b).unwrap();
        assert_eq!(
            (s.shape.clone(), floats(&s)),
            (vec![2, 1, 2], vec![3.0, -1.0, 0.5, 2.0])
        );
        // Mismatched depths and oversized products are refused by name.
        assert!(matmul(&a, &a).unwrap_err().contains("[2, 3] and [2, 3]"));
        let wide = Constant::float(vec![1, 1 << 16], vec![0.0; 1 << 16]);
        let tall = Constant {
            shape: vec![1 << 16, 1 << 15],
            values: Values::Float(Vec::new()),
        };
        assert!(matmul(&wide, &tall).unwrap_err().contains("too large"));
    }

    #[test]
    fn comparisons_broadcast_and_give_booleans() {
        // GPT-2's causal mask: key position <= query position.
        let keys = ints(&[1, 3], &[0, 1, 2]);
        let queries = ints(&[3, 1], &[0, 1, 2]);
        let mask = compare("LessOrEqual", &keys, &queries).unwrap();
        assert_eq!(mask.shape, [3, 3]);
        assert_eq!(values(&mask), [1, 0, 0, 1, 1, 0, 1, 1, 1]);
        assert_eq!(
            values(&compare("Less", &keys, &queries).unwrap()),
            [0, 0, 0, 1, 0, 0, 1, 1, 0]
        );
        assert_eq!(
            values(&compare("Greater", &keys, &queries).unwrap()),
            [0, 1, 1, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(
            values(&compare("GreaterOrEqual", &keys, &queries).unwrap()),
            [1, 1, 1, 0, 1, 1, 0, 0, 1]
        );
        let floats = Constant::float(vec![3], vec![0.5, f32::NAN, 2.0]);
        let equal = compare("Equal", &floats, &Constant::float(vec![1], vec![2.0])).unwrap();
        assert_eq!(values(&equal), [0, 0, 1]);
        assert_eq!(
            values(&compare("Less", &floats, &Constant::float(vec![], vec![1.0])).unwrap()),
            [1, 0, 0]
        );
    }

    #[test]
    fn the_batch_size_compares_with_numbers_below_one_only() {
        let batch = ints(&[1], &[BATCH]);
        assert_eq!(values(&compare("Equal", &batch, &ints(&[1], &[-1])).unwrap()), [0]);
        assert_eq!(values(&compare("Greater", &batch, &ints(&[1], &[0])).unwrap()), [1]);
        assert_eq!(values(&compare("LessOrEqual", &ints(&[1], &[0]), &batch).unwrap()), [1]);
        assert!(compare("Less", &batch, &ints(&[1], &[4])).is_err());
        assert!(compare("Less", &ints(&[2], &[1, 2]), &ints(&[3], &[1, 2, 3])).is_err());
    }

    #[test]
    fn max_and_min_broadcast_over_any_number_of_inputs() {
        use std::rc::Rc;
        let parts = [
            Rc::new(ints(&[2, 1], &[1, 5])),
            Rc::new(ints(&[3], &[0, 3, 6])),
            Rc::new(ints(&[], &[2])),
        ];
        let max = extremum("Max", &parts).unwrap();
        assert_eq!(max.shape, [2, 3]);
        assert_eq!(values(&max), [2, 3, 6, 5, 5, 6]);
        assert_eq!(values(&extremum("Min", &parts).unwrap()), [0, 1, 1, 0, 2, 2]);
        let floats = [
            Rc::new(Constant::float(vec![2], vec![0.5, -1.0])),
            Rc::new(Constant::float(vec![1], vec![0.0])),
        ];
        assert_eq!(extremum("Max", &floats).unwrap().floats(), [0.5, 0.0]);
    }

    #[test]
    fn logical_operators_read_non_zero_as_true() {
        let a = ints(&[4], &[0, 0, 1, 2]);
        let b = ints(&[4], &[0, 3, 0, 1]);
        assert_eq!(values(&logical("And", &a, &b).unwrap()), [0, 0, 0, 1]);
        assert_eq!(values(&logical("Or", &a, &b).unwrap()), [0, 1, 1, 1]);
        assert_eq!(values(&logical("Xor", &a, &b).unwrap()), [0, 1, 1, 0]);
        assert_eq!(values(&unary("Not", &a).unwrap()), [1, 1, 0, 0]);
    }

    #[test]
    fn powers_of_integers_stay_whole_and_overflow_is_an_error() {
        let p = power(&ints(&[3], &[2, 3, -2]), &ints(&[], &[3])).unwrap();
        assert_eq!(values(&p), [8, 27, -8]);
        assert!(power(&ints(&[1], &[2]), &ints(&[1], &[-1])).is_err());
        assert!(power(&ints(&[1], &[10]), &ints(&[1], &[40])).is_err());
        let f = power(
            &Constant::float(vec![2], vec![4.0, 2.0]),
            &Constant::float(vec![2], vec![0.5, 3.0]),
        )
        .unwrap();
        assert_eq!(f.floats(), [2.0, 8.0]);
    }

    #[test]
    fn one_operand_functions() {
        assert_eq!(values(&unary("Neg", &ints(&[2], &[3, -4])).unwrap()), [-3, 4]);
        assert_eq!(values(&unary("Abs", &ints(&[2], &[3, -4])).unwrap()), [3, 4]);
        assert!(unary("Neg", &ints(&[1], &[i64::MIN])).is_err());
        let x = Constant::float(vec![4], vec![-1.5, 0.25, 4.0, 0.0]);
        assert_eq!(unary("Floor", &x).unwrap().floats(), [-2.0, 0.0, 4.0, 0.0]);
        assert_eq!(unary("Ceil", &x).unwrap().floats(), [-1.0, 1.0, 4.0, 0.0]);
        assert_eq!(unary("Reciprocal", &x).unwrap().floats()[..3], [-1.0 / 1.5, 4.0, 0.25]);
        assert_eq!(unary("Sqrt", &ints(&[2], &[9, 16])).unwrap().floats(), [3.0, 4.0]);
        let angles = Constant::float(vec![2], vec![0.0, std::f32::consts::FRAC_PI_2]);
        assert_eq!(unary("Cos", &angles).unwrap().floats()[0], 1.0);
        assert_eq!(unary("Sin", &angles).unwrap().floats(), [0.0, 1.0]);
    }

    #[test]
    fn cumulative_sums_along_an_axis_forward_backward_and_exclusive() {
        // OPT's position ids: the cumulative sum of a mask of ones along the tokens.
        let x = ints(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(
            values(&cumulative_sum(&x, 1, (false, false)).unwrap()),
            [1, 3, 6, 4, 9, 15]
        );
        assert_eq!(
            values(&cumulative_sum(&x, -1, (true, false)).unwrap()),
            [0, 1, 3, 0, 4, 9]
        );
        assert_eq!(
            values(&cumulative_sum(&x, 1, (false, true)).unwrap()),
            [6, 5, 3, 15, 11, 6]
        );
        assert_eq!(
            values(&cumulative_sum(&x, 1, (true, true)).unwrap()),
            [5, 3, 0, 11, 6, 0]
        );
        assert_eq!(
            values(&cumulative_sum(&x, 0, (false, false)).unwrap()),
            [1, 2, 3, 5, 7, 9]
        );
        let f = cumulative_sum(&Constant::float(vec![3], vec![0.5, 0.25, 1.0]), 0, (false, false)).unwrap();
        assert_eq!(f.floats(), [0.5, 0.75, 1.75]);
        assert!(cumulative_sum(&x, 2, (false, false)).is_err());
        assert!(cumulative_sum(&ints(&[2], &[i64::MAX, 1]), 0, (false, false)).is_err());
    }
}
