//! The fast convolution paths against nested-loop references, forward and backward.
//!
//! `conv2d` picks its algorithm from the shapes: Winograd's F(m×m, 3×3) (m = 2, 3 or 4) for
//! 3×3 kernels with stride 1 and channel counts that are multiples of 8, a direct kernel for
//! receptive fields of at most 27 values (a colour image's 3×3 window), and im2col + matrix
//! product otherwise. Each case below is chosen to land on one path (the comment says which),
//! with both paddings, partial tiles at the edges, and with and without a fused ReLU
//! (`conv2d_relu`). Output, kernel, bias and input gradients are all compared with references
//! accumulated in f64.

mod common;

use common::uniform;
use strata::Tensor;
use strata::autograd::{ParamId, ParamStore, Tape, WindowOptions};
use strata::kernels::Padding;

/// Largest accepted error relative to `max(1, |expected|)`. Winograd's transforms round
/// differently from a direct sum, more so with more channels: the worst errors measured here
/// are 7e-5 for m = 4 (2e-5 with 8 channels), 6e-6 for m = 3 and 3e-5 for m = 2 (im2col:
/// 1e-6).
const TOLERANCE: f32 = 1e-4;

/// A convolution case: batch, input (h, w, c), filters, kernel (kh, kw), "same" padding, and
/// whether a ReLU is fused into it.
#[derive(Clone, Copy)]
struct Case {
    batch: usize,
    input: (usize, usize, usize),
    filters: usize,
    kernel: (usize, usize),
    strides: (usize, usize),
    dilation: (usize, usize),
    same: bool,
    relu: bool,
    what: &'static str,
}

/// Output size and leading padding along one axis (TensorFlow's rule).
fn axis(input: usize, window: usize, stride: usize, dilation: usize, same: bool) -> (usize, usize) {
    let span = (window - 1) * dilation + 1;
    if same {
        let out = input.div_ceil(stride);
        (out, ((out - 1) * stride + span).saturating_sub(input) / 2)
    } else {
        ((input - span) / stride + 1, 0)
    }
}

/// Output, kernel gradient, bias gradient and input gradient of `sum(f(conv2d(x, k) + b) ⊙ w)`
/// with `f` the identity or a ReLU, by definition in f64.
fn reference(x: &Tensor, k: &Tensor, b: &Tensor, w: &Tensor, case: &Case) -> [Vec<f32>; 4] {
    let &[n, h, wd, c] = x.shape() else { unreachable!() };
    let &[kh, kw, _, f] = k.shape() else { unreachable!() };
    let ((s, d), relu) = ((case.strides, case.dilation), case.relu);
    let (oh, pt) = axis(h, kh, s.0, d.0, case.same);
    let (ow, pl) = axis(wd, kw, s.1, d.1, case.same);
    let mut out = vec![0.0f64; n * oh * ow * f];
    let mut dk = vec![0.0f64; k.len()];
    let mut dx = vec![0.0f64; x.len()];
    // Visits every (output, kernel tap, input) triple of the convolution.
    let each = |visit: &mut dyn FnMut(usize, usize, usize)| {
        for bi in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for fi in 0..f {
                        let o = ((bi * oh + oy) * ow + ox) * f + fi;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let y = (oy * s.0 + ky * d.0) as isize - pt as isize;
                                let xx = (ox * s.1 + kx * d.1) as isize - pl as isize;
                                if y < 0 || xx < 0 || y >= h as isize || xx >= wd as isize {
                                    continue;
                                }
                                for ci in 0..c {
                                    let xi = ((bi * h + y as usize) * wd + xx as usize) * c + ci;
                                    visit(o, ((ky * kw + kx) * c + ci) * f + fi, xi);
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    each(&mut |o, ki, xi| out[o] += x.data()[xi] as f64 * k.data()[ki] as f64);
    for (o, value) in out.iter_mut().enumerate() {
        *value += b.data()[o % f] as f64;
        if relu {
            *value = value.max(0.0);
        }
    }
    // The gradient reaching the convolution: w, masked where the ReLU was off.
    let grad: Vec<f64> = (w.data().iter().zip(&out))
        .map(|(&w, &y)| if relu && y <= 0.0 { 0.0 } else { w as f64 })
        .collect();
    each(&mut |o, ki, xi| {
        dk[ki] += x.data()[xi] as f64 * grad[o];
        dx[xi] += k.data()[ki] as f64 * grad[o];
    });
    let db: Vec<f32> = (0..f)
        .map(|fi| grad.iter().skip(fi).step_by(f).sum::<f64>() as f32)
        .collect();
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect();
    [to_f32(out), to_f32(dk), db, to_f32(dx)]
}

fn assert_close(actual: &[f32], expected: &[f32], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    let worst = actual
        .iter()
        .zip(expected)
        .map(|(a, e)| (a - e).abs() / 1f32.max(e.abs()))
        .fold(0.0, f32::max);
    assert!(worst <= TOLERANCE, "{what}: relative error {worst}");
}

/// Outputs closer to 0 than rounding before a fused ReLU: the f64 reference and the f32
/// kernels may disagree on whether the ReLU passed them, and so on their gradients.
const AMBIGUOUS_RELU: f64 = 1e-4;

/// `weights` (the gradient reaching the output) with 0 where a fused ReLU's input lies within
/// [`AMBIGUOUS_RELU`] of 0, so that no gradient depends on which side of 0 rounding put it.
fn without_ambiguous_relus(x: &Tensor, k: &Tensor, b: &Tensor, weights: Tensor, case: &Case) -> Tensor {
    if !case.relu {
        return weights;
    }
    let [before_relu, ..] = reference(x, k, b, &weights, &Case { relu: false, ..*case });
    let kept = (weights.data().iter().zip(&before_relu))
        .map(|(&w, &y)| if (y as f64).abs() < AMBIGUOUS_RELU { 0.0 } else { w })
        .collect();
    Tensor::from_vec(weights.shape().to_vec(), kept).unwrap()
}

fn check(case: &Case, seed: u64) {
    let (h, w, c) = case.input;
    let (kh, kw) = case.kernel;
    let x = uniform(&[case.batch, h, w, c], -1.0, 1.0, seed);
    let k = uniform(&[kh, kw, c, case.filters], -1.0, 1.0, seed + 1);
    let b = uniform(&[case.filters], -1.0, 1.0, seed + 2);
    let (oh, _) = axis(h, kh, case.strides.0, case.dilation.0, case.same);
    let (ow, _) = axis(w, kw, case.strides.1, case.dilation.1, case.same);
    let weights = uniform(&[case.batch, oh, ow, case.filters], -1.0, 1.0, seed + 3);
    let weights = without_ambiguous_relus(&x, &k, &b, weights, case);
    let [out, dk, db, dx] = reference(&x, &k, &b, &weights, case);

    let mut params = ParamStore::new();
    let (xi, ki, bi) = (
        params.add("x", x, true),
        params.add("k", k, true),
        params.add("b", b, true),
    );
    let options = WindowOptions {
        padding: if case.same { Padding::Same } else { Padding::Valid },
        strides: case.strides,
        dilation: case.dilation,
    };
    let mut tape = Tape::new();
    // Twice: the second pass reuses the tape's buffers, as every training step after the first.
    for pass in 0..2 {
        let loss = {
            let mut g = strata::autograd::Graph::new(&mut tape, &params, true);
            let (x, k, b) = (g.param(xi), g.param(ki), g.param(bi));
            let y = if case.relu {
                g.conv2d_relu(x, k, Some(b), options).unwrap()
            } else {
                g.conv2d(x, k, Some(b), options).unwrap()
            };
            assert_eq!(g.shape(y), &[case.batch, oh, ow, case.filters]);
            assert_close(g.value(y).data(), &out, &format!("{} output (pass {pass})", case.what));
            let w = g.constant(&weights);
            let weighted = g.mul(y, w).unwrap();
            g.sum(weighted)
        };
        tape.backward(loss, &mut params);
        let what = |name: &str| format!("{} {name} gradient (pass {pass})", case.what);
        assert_close(params.grad(ki).data(), &dk, &what("kernel"));
        assert_close(params.grad(bi).data(), &db, &what("bias"));
        assert_close(params.grad(xi).data(), &dx, &what("input"));
    }
    check_inference(case, &mut params, (xi, ki, bi), options, (out, &weights));
}

/// A pass no gradient is asked of (`predict`'s), which may keep a packed kernel in the tape:
/// the reference's output on the first pass and the next, and the new kernel's output after
/// it changes (the packed copy must follow). `weights` only feeds the reference's gradients.
fn check_inference(
    case: &Case,
    params: &mut ParamStore,
    (xi, ki, bi): (ParamId, ParamId, ParamId),
    options: WindowOptions,
    (out, weights): (Vec<f32>, &Tensor),
) {
    let mut tape = Tape::new();
    let mut expected = out;
    for pass in 0..3 {
        if pass == 2 {
            let k = params.value(ki).clone();
            let changed = Tensor::from_vec(k.shape().to_vec(), k.data().iter().map(|v| 0.5 - v).collect()).unwrap();
            *params.value_mut(ki) = changed;
            let [out, ..] = reference(params.value(xi), params.value(ki), params.value(bi), weights, case);
            expected = out;
        }
        let mut g = strata::autograd::Graph::new(&mut tape, params, false).without_gradients();
        let (x, k, b) = (g.param(xi), g.param(ki), g.param(bi));
        let y = if case.relu {
            g.conv2d_relu(x, k, Some(b), options).unwrap()
        } else {
            g.conv2d(x, k, Some(b), options).unwrap()
        };
        assert_close(
            g.value(y).data(),
            &expected,
            &format!("{} inference output (pass {pass})", case.what),
        );
    }
}

fn case(batch: usize, input: (usize, usize, usize), filters: usize, same: bool, what: &'static str) -> Case {
    Case {
        batch,
        input,
        filters,
        kernel: (3, 3),
        strides: (1, 1),
        dilation: (1, 1),
        same,
        relu: false,
        what,
    }
}

/// `case` with a ReLU fused into the convolution.
fn with_relu(case: Case) -> Case {
    Case { relu: true, ..case }
}

#[test]
fn winograd_convolutions_match_the_reference() {
    let cases = [
        // 11×11 outputs: F(4×4), 3×3 tiles, the last one partial (the CNN's second conv).
        case(2, (13, 13, 8), 16, false, "F(4) valid 13×13×8→16"),
        // 7×9 outputs: F(4×4), partial tiles both ways, zero padding on every side.
        case(2, (7, 9, 8), 8, true, "F(4) same 7×9×8→8"),
        // 3×3 outputs: one F(3×3) tile (the CNN's third conv).
        case(3, (5, 5, 16), 8, false, "F(3) valid 5×5×16→8"),
        // 9×9 outputs: F(3×3), 3×3 whole tiles.
        case(1, (9, 9, 8), 8, true, "F(3) same 9×9×8→8"),
        // 2×2 outputs: one F(2×2) tile.
        case(2, (4, 4, 8), 8, false, "F(2) valid 4×4×8→8"),
        // ReLU fused, for each tile size.
        with_relu(case(2, (13, 13, 8), 16, false, "F(4) valid 13×13×8→16 relu")),
        with_relu(case(3, (5, 5, 16), 8, false, "F(3) valid 5×5×16→8 relu")),
        with_relu(case(2, (4, 4, 8), 8, true, "F(2) same 4×4×8→8 relu")),
        // Transformed kernels streamed from memory for few tiles: in inference, F(2×2) by
        // panels (16 tiles, and 49) and F(4×4) by panels (49 tiles; with 16 channels, since
        // F(4×4)'s error grows with them, to 2e-4 with 64); with gradients, im2col and the
        // blocked F(2×2).
        with_relu(case(1, (7, 7, 128), 256, true, "F(2) by panels same 7×7×128→256 relu")),
        case(1, (14, 14, 96), 256, true, "F(2) by panels same 14×14×96→256"),
        with_relu(case(
            1,
            (28, 28, 16),
            512,
            true,
            "F(4) by panels same 28×28×16→512 relu",
        )),
    ];
    for (i, case) in cases.iter().enumerate() {
        check(case, 100 + 10 * i as u64);
    }
}

#[test]
fn direct_convolutions_match_the_reference() {
    let cases = [
        // The CNN's first layer: one channel, 3×3, whole blocks of four outputs per row and a
        // partial one (26 = 6·4 + 2).
        with_relu(case(2, (28, 28, 1), 16, false, "direct 28×28×1→16 relu")),
        case(2, (9, 7, 1), 8, false, "direct 9×7×1→8"),
        // Zero padding on every side; 24 filters: a 16-wide and an 8-wide group.
        with_relu(case(2, (7, 9, 1), 24, true, "direct same 7×9×1→24 relu")),
        // Three channels, a 2×2 window (12 taps), strides and dilation.
        Case {
            kernel: (2, 2),
            strides: (2, 1),
            ..case(2, (7, 8, 3), 8, true, "direct 2×2×3→8 strides (2, 1)")
        },
        Case {
            dilation: (2, 2),
            ..with_relu(case(2, (9, 9, 1), 16, false, "direct 3×3×1→16 dilation 2 relu"))
        },
        // A colour image's 3×3 window (27 taps, cifar10_cnn's first layer), zero padding on
        // every side; 48 filters: two AVX-512 vectors and one.
        with_relu(case(2, (9, 11, 3), 48, true, "direct same 9×11×3→48 relu")),
        // 25 taps, strides (4, 2): "same" padding puts one row below the image and none
        // above it, and columns on both sides.
        Case {
            kernel: (5, 5),
            strides: (4, 2),
            ..case(2, (8, 10, 1), 8, true, "direct same 5×5×1→8 strides (4, 2)")
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        check(case, 300 + 10 * i as u64);
    }
}

#[test]
fn im2col_convolutions_match_the_reference() {
    let cases = [
        // Too few channels for Winograd.
        case(2, (6, 7, 4), 8, true, "im2col 3×3 4→8"),
        with_relu(case(2, (6, 7, 4), 8, true, "im2col 3×3 4→8 relu")),
        // Channel counts that are not multiples of 8.
        case(2, (6, 6, 12), 10, true, "im2col 3×3 12→10"),
        // Not a 3×3 kernel.
        Case {
            kernel: (2, 3),
            ..case(2, (6, 7, 8), 8, false, "im2col 2×3 8→8")
        },
        // Whole 16-wide vectors of filters: in inference, the packed kernel (80 filters: a
        // 64-wide panel and a 16-wide one).
        case(2, (6, 7, 4), 16, true, "im2col 3×3 4→16"),
        Case {
            strides: (2, 2),
            ..with_relu(case(2, (9, 8, 16), 80, true, "im2col 3×3 16→80 strides 2 relu"))
        },
        // Enough output positions (2048) for the packed product to copy the receptive fields
        // a block of rows at a time instead of storing them whole.
        Case {
            strides: (2, 2),
            ..with_relu(case(2, (64, 64, 4), 16, true, "im2col 3×3 4→16 strides 2, 2048 rows"))
        },
        // No padding, so the packed product reads the receptive fields in place: few rows
        // (split by panels) with a stem-like 7×7 window, many rows (split by rows), taps two
        // rows apart, and taps two columns apart (copied instead).
        Case {
            kernel: (7, 7),
            strides: (2, 2),
            ..case(1, (23, 21, 3), 64, false, "im2col 7×7 3→64 strides 2 valid, 72 rows")
        },
        Case {
            strides: (2, 2),
            ..with_relu(case(
                2,
                (66, 65, 4),
                32,
                false,
                "im2col 3×3 4→32 strides 2 valid, 2048 rows",
            ))
        },
        Case {
            dilation: (2, 1),
            ..case(1, (12, 10, 8), 16, false, "im2col 3×3 8→16 dilation (2, 1) valid")
        },
        Case {
            dilation: (1, 2),
            ..case(
                3,
                (40, 40, 8),
                16,
                false,
                "im2col 3×3 8→16 dilation (1, 2) valid, 3888 rows",
            )
        },
        // A 1×1 kernel too large for the pointwise kernel (136 × 128 values): read in place.
        Case {
            kernel: (1, 1),
            ..with_relu(case(1, (5, 6, 136), 128, false, "im2col 1×1 136→128 relu"))
        },
        Case {
            kernel: (1, 1),
            strides: (2, 2),
            ..case(2, (5, 6, 24), 32, false, "im2col 1×1 24→32 strides 2")
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        check(case, 200 + 10 * i as u64);
    }
}

/// Gradient buffers are reused between passes and cleared lazily: pooling overwrites its input
/// gradient (zeros where no window reaches), the Winograd path clears each image as it goes.
/// A reused tape must give exactly the gradients of a fresh one, pass after pass, with pool
/// sizes that leave rows and columns outside every window.
#[test]
fn a_reused_tape_gives_the_gradients_of_a_fresh_one() {
    let x = uniform(&[3, 13, 11, 8], -1.0, 1.0, 500);
    let mut params = ParamStore::new();
    let k1 = params.add("k1", uniform(&[3, 3, 8, 8], -0.5, 0.5, 501), true);
    let k2 = params.add("k2", uniform(&[3, 3, 8, 16], -0.5, 0.5, 502), true);
    let xi = params.add("x", x, true);
    let pool = WindowOptions {
        strides: (2, 2),
        ..WindowOptions::default()
    };
    let pass = |tape: &mut Tape, params: &mut ParamStore, scale: f32| {
        let (loss, unreached) = {
            let mut g = strata::autograd::Graph::new(tape, params, true);
            let (x, k1, k2) = (g.param(xi), g.param(k1), g.param(k2));
            let y = g.conv2d_relu(x, k1, None, WindowOptions::default()).unwrap(); // 11×9
            let y = g.max_pool2d(y, (2, 2), pool).unwrap(); // 5×4: row 10 and column 8 outside
            let y = g.conv2d(y, k2, None, WindowOptions::default()).unwrap(); // 3×2
            let y = g.avg_pool2d(y, (2, 2), pool).unwrap(); // 1×1: row 2 outside
            let unreached = g.scale(y, 2.0); // a value the loss does not use
            let w = g.constant(&uniform(&[3, 1, 1, 16], -1.0, 1.0, 503));
            let weighted = g.mul(y, w).unwrap();
            let total = g.sum(weighted);
            (g.scale(total, scale), unreached)
        };
        tape.backward(loss, params);
        assert!(
            tape.grad(unreached).data().iter().all(|&v| v == 0.0),
            "an unreached gradient is zero"
        );
        [xi, k1, k2].map(|id| params.grad(id).clone())
    };
    let mut reused = Tape::new();
    // First a graph whose conv output (the same tape slot as below) gets a gradient everywhere,
    // so the slot holds stale non-zero values where the pooling's windows do not reach.
    let warm_up = {
        let mut g = strata::autograd::Graph::new(&mut reused, &params, true);
        let (x, k1, _) = (g.param(xi), g.param(k1), g.param(k2));
        let y = g.conv2d(x, k1, None, WindowOptions::default()).unwrap();
        let w = g.constant(&uniform(&[3, 11, 9, 8], 1.0, 2.0, 504));
        let weighted = g.mul(y, w).unwrap();
        g.sum(weighted)
    };
    reused.backward(warm_up, &mut params);
    // Different scales make every pass's gradients differ, so stale values would show.
    for (i, scale) in [1.0, -3.0, 0.5].into_iter().enumerate() {
        let expected = pass(&mut Tape::new(), &mut params, scale);
        let actual = pass(&mut reused, &mut params, scale);
        for (a, e) in actual.iter().zip(&expected) {
            assert!(a.data() == e.data(), "pass {i}: gradients differ from a fresh tape's");
        }
    }
}

/// A convolution whose output only a max pooling reads gets its gradient folded: the
/// pooling's gradient is routed inside the convolution's backward rule and never written out
/// (the CNN's first layer with the direct kernel, its second through Winograd's algorithm).
/// The kernel, bias and input gradients must be exactly those of the unfolded rules, which
/// run when the output has a second reader (here one that adds nothing).
#[test]
fn a_convolution_folded_with_its_max_pooling_has_the_unfolded_gradients() {
    // (input, filters, ReLU). Direct: 26×26 outputs pooled whole; 25×25 leaves a row and a
    // column outside every window; 24 filters are a 16-wide and an 8-wide group. Winograd:
    // 11×11 outputs (partial tiles, an uncovered row and column), 6×8 outputs.
    let cases = [
        ((28, 28, 1), 16, true),
        ((27, 27, 1), 24, true),
        ((12, 10, 1), 8, false),
        ((13, 13, 8), 16, true),
        ((8, 10, 16), 8, false),
    ];
    for (i, &((h, w, c), filters, relu)) in cases.iter().enumerate() {
        let seed = 600 + 10 * i as u64;
        let mut params = ParamStore::new();
        // The first layer's input needs no gradient; a later layer's does.
        let x = params.add("x", uniform(&[3, h, w, c], -1.0, 1.0, seed), c > 1);
        let k = params.add("k", uniform(&[3, 3, c, filters], -1.0, 1.0, seed + 1), true);
        let b = params.add("b", uniform(&[filters], -0.5, 0.5, seed + 2), true);
        let pool = WindowOptions {
            strides: (2, 2),
            ..WindowOptions::default()
        };
        let (ph, pw) = ((h - 2) / 2, (w - 2) / 2);
        let weights = uniform(&[3, ph, pw, filters], -1.0, 1.0, seed + 3);
        let gradients = |second_reader: bool| {
            let mut tape = Tape::new();
            let (loss, y) = {
                let mut g = strata::autograd::Graph::new(&mut tape, &params, true);
                let (xv, kv, bv) = (g.param(x), g.param(k), g.param(b));
                let options = WindowOptions::default();
                let y = if relu {
                    g.conv2d_relu(xv, kv, Some(bv), options).unwrap()
                } else {
                    g.conv2d(xv, kv, Some(bv), options).unwrap()
                };
                let p = g.max_pool2d(y, (2, 2), pool).unwrap();
                let wv = g.constant(&weights);
                let weighted = g.mul(p, wv).unwrap();
                let mut loss = g.sum(weighted);
                if second_reader {
                    let nothing = g.scale(y, 0.0);
                    let nothing = g.sum(nothing);
                    loss = g.add(loss, nothing).unwrap();
                }
                (loss, y)
            };
            let mut params = params.clone();
            tape.backward(loss, &mut params);
            // Folded, the convolution's output gradient is not materialized.
            assert_eq!(
                tape.grad(y).is_empty(),
                !second_reader,
                "case {i}: folded only with one reader"
            );
            [k, b, x].map(|id| params.grad(id).clone())
        };
        let (folded, unfolded) = (gradients(false), gradients(true));
        let names = ["kernel", "bias", "input"];
        for (name, (f, u)) in names
            .iter()
            .zip(folded.iter().zip(&unfolded))
            .take(if c > 1 { 3 } else { 2 })
        {
            assert!(
                f.data().iter().any(|&v| v != 0.0),
                "case {i}: the {name} gradient is all zeros"
            );
            assert!(
                f.data() == u.data(),
                "case {i}: folded and unfolded {name} gradients differ"
            );
        }
    }
}
