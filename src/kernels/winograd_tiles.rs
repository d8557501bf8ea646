//! The transform matrices of Winograd's `F(m, 3)` for m = 2, 3, 4, and the small-matrix
//! products that apply them to tiles, a vector of channels at a time.
//!
//! The matrices come from the Cook–Toom construction on the points 0, 1, −1, 2, −2 (as many
//! as needed) and ∞: `Aᵀ` evaluates, `G` evaluates the kernel (scaled so `Bᵀ` has integer
//! entries), `Bᵀ` interpolates. For m = 4 they are the ones of Lavin & Gray (2016). The
//! products below skip zero coefficients; the matrices are constants, so after inlining the
//! skips and the multiplications by ±1 disappear from the compiled code. They are fixed
//! transforms of a few dozen additions per tile and channel group, not general matrix
//! products, so they do not go through gemm-f32 (its per-call cost alone is larger).
#![allow(clippy::needless_range_loop)] // Indexing by constants is what lets the loops unroll.

use super::simd::Simd;
use std::mem::MaybeUninit;

/// `Bᵀ` (α×α), `Aᵀ` (m×α) and `G` (α×3) of `F(m, 3)`, with `α = m + 2`.
pub(crate) struct Tile<const A: usize, const M: usize> {
    pub(crate) bt: [[f32; A]; A],
    pub(crate) at: [[f32; A]; M],
    pub(crate) g: [[f32; 3]; A],
}

const BT2: [[f32; 6]; 6] = pad([
    [-1., 0., 1., 0.],
    [0., 1., 1., 0.],
    [0., -1., 1., 0.],
    [0., -1., 0., 1.],
]);
const AT2: [[f32; 6]; 4] = pad([[1., 1., 1., 0.], [0., 1., -1., 1.]]);
const G2: [[f32; 3]; 6] = pad([[-1., 0., 0.], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0., 0., 1.]]);

const BT3: [[f32; 6]; 6] = pad([
    [2., -1., -2., 1., 0.],
    [0., -2., -1., 1., 0.],
    [0., 2., -3., 1., 0.],
    [0., -1., 0., 1., 0.],
    [0., 2., -1., -2., 1.],
]);
const AT3: [[f32; 6]; 4] = pad([[1., 1., 1., 1., 0.], [0., 1., -1., 2., 0.], [0., 1., 1., 4., 1.]]);
const G3: [[f32; 3]; 6] = pad([
    [1. / 2., 0., 0.],
    [-1. / 2., -1. / 2., -1. / 2.],
    [-1. / 6., 1. / 6., -1. / 6.],
    [1. / 6., 1. / 3., 2. / 3.],
    [0., 0., 1.],
]);

const BT4: [[f32; 6]; 6] = [
    [4., 0., -5., 0., 1., 0.],
    [0., -4., -4., 1., 1., 0.],
    [0., 4., -4., -1., 1., 0.],
    [0., -2., -1., 2., 1., 0.],
    [0., 2., -1., -2., 1., 0.],
    [0., 4., 0., -5., 0., 1.],
];
const AT4: [[f32; 6]; 4] = [
    [1., 1., 1., 1., 1., 0.],
    [0., 1., -1., 2., -2., 0.],
    [0., 1., 1., 4., 4., 0.],
    [0., 1., -1., 8., -8., 1.],
];
const G4: [[f32; 3]; 6] = [
    [1. / 4., 0., 0.],
    [-1. / 6., -1. / 6., -1. / 6.],
    [-1. / 6., 1. / 6., -1. / 6.],
    [1. / 24., 1. / 12., 1. / 6.],
    [1. / 24., -1. / 12., 1. / 6.],
    [0., 0., 1.],
];

/// A smaller matrix in the top-left corner of a larger zero one.
const fn pad<const R: usize, const C: usize, const R2: usize, const C2: usize>(m: [[f32; C]; R]) -> [[f32; C2]; R2] {
    let mut out = [[0.0; C2]; R2];
    let mut i = 0;
    while i < R {
        let mut j = 0;
        while j < C {
            out[i][j] = m[i][j];
            j += 1;
        }
        i += 1;
    }
    out
}

/// The top-left `R×C` corner of `m`.
const fn corner<const R: usize, const C: usize, const R2: usize, const C2: usize>(
    m: &[[f32; C2]; R2],
) -> [[f32; C]; R] {
    let mut out = [[0.0; C]; R];
    let mut i = 0;
    while i < R {
        let mut j = 0;
        while j < C {
            out[i][j] = m[i][j];
            j += 1;
        }
        i += 1;
    }
    out
}

impl<const A: usize, const M: usize> Tile<A, M> {
    /// The matrices of `F(M, 3)`, evaluated at compile time.
    pub(crate) const MATRICES: Self = {
        assert!(A == M + 2, "α must be m + 2");
        let (bt, at, g) = match M {
            2 => (&BT2, &AT2, &G2),
            3 => (&BT3, &AT3, &G3),
            4 => (&BT4, &AT4, &G4),
            _ => panic!("tile sizes are 2, 3 or 4"),
        };
        Tile {
            bt: corner(bt),
            at: corner(at),
            g: corner(g),
        }
    };
}

/// `out[r] = Σ_c p[r][c] · x[c]`. `p` is a constant after inlining, so the zero terms vanish
/// and ±1 become additions and subtractions.
#[inline(always)]
pub(crate) fn mix<S: Simd, const R: usize, const C: usize>(s: S, p: &[[f32; C]; R], x: &[S::V; C]) -> [S::V; R] {
    let mut out = [s.splat(0.0); R];
    for r in 0..R {
        let mut sum: Option<S::V> = None;
        for c in 0..C {
            sum = accumulate(s, sum, p[r][c], x[c]);
        }
        out[r] = sum.unwrap_or(s.splat(0.0));
    }
    out
}

/// `out[c] = Σ_r p[r][c] · x[r]`: [`mix`] with `p` transposed.
#[inline(always)]
pub(crate) fn mix_t<S: Simd, const R: usize, const C: usize>(s: S, p: &[[f32; C]; R], x: &[S::V; R]) -> [S::V; C] {
    let mut out = [s.splat(0.0); C];
    for c in 0..C {
        let mut sum: Option<S::V> = None;
        for r in 0..R {
            sum = accumulate(s, sum, p[r][c], x[r]);
        }
        out[c] = sum.unwrap_or(s.splat(0.0));
    }
    out
}

/// The intermediate tile of a two-pass transform (`R×C` vectors), which the first pass writes
/// one element at a time and the second reads only after every element is written. It is
/// left uninitialized rather than zeroed: the first pass is a loop the compiler does not
/// unroll, so it cannot see every element written, and zeroing the array cost a call to
/// `memset` for every tile and vector of channels (about 4 % of a `cifar10_cnn` step).
pub(crate) struct Partial<V, const R: usize, const C: usize>(MaybeUninit<[[V; C]; R]>);

impl<V: Copy, const R: usize, const C: usize> Partial<V, R, C> {
    /// A tile with no element written yet.
    #[inline(always)]
    pub(crate) fn new() -> Self {
        Partial(MaybeUninit::uninit())
    }

    /// Writes element (i, j).
    #[inline(always)]
    pub(crate) fn set(&mut self, i: usize, j: usize, value: V) {
        assert!(i < R && j < C, "transform tile index out of range");
        // SAFETY: (i, j) is inside the array (checked above; the check folds away in the
        // unrolled loops).
        unsafe { self.0.as_mut_ptr().cast::<V>().add(i * C + j).write(value) }
    }

    /// The written tile.
    ///
    /// # Safety
    /// Every element must have been written with [`Partial::set`].
    #[inline(always)]
    pub(crate) unsafe fn finished(&self) -> &[[V; C]; R] {
        // SAFETY: the caller's contract. (A reference rather than the array itself, so the
        // tile is not copied.)
        unsafe { self.0.assume_init_ref() }
    }
}

/// `sum + w·x`, where `None` is an empty sum.
#[inline(always)]
fn accumulate<S: Simd>(s: S, sum: Option<S::V>, w: f32, x: S::V) -> Option<S::V> {
    if w == 0.0 {
        return sum;
    }
    Some(match sum {
        None if w == 1.0 => x,
        None => s.mul(s.splat(w), x),
        Some(sum) if w == 1.0 => s.add(sum, x),
        Some(sum) if w == -1.0 => s.sub(sum, x),
        Some(sum) => s.mul_add(s.splat(w), x, sum),
    })
}

/// `P X Pᵀ` for `P` (R×C) and `X` (C×C).
#[inline(always)]
pub(crate) fn sandwich<S: Simd, const R: usize, const C: usize>(
    s: S,
    p: &[[f32; C]; R],
    x: &[[S::V; C]; C],
) -> [[S::V; R]; R] {
    // Columns first: (P X)[.][b] = P · X[.][b]; then rows: (P X Pᵀ)[i] = P · (P X)[i].
    let mut left = Partial::<S::V, R, C>::new();
    for b in 0..C {
        let mut column = [s.splat(0.0); C];
        for a in 0..C {
            column[a] = x[a][b];
        }
        let mixed = mix(s, p, &column);
        for i in 0..R {
            left.set(i, b, mixed[i]);
        }
    }
    // SAFETY: the loop above set every element.
    let left = unsafe { left.finished() };
    let mut out = [[s.splat(0.0); R]; R];
    for i in 0..R {
        out[i] = mix(s, p, &left[i]);
    }
    out
}

/// `Pᵀ X P` for `P` (R×C) and `X` (R×R).
#[inline(always)]
pub(crate) fn sandwich_t<S: Simd, const R: usize, const C: usize>(
    s: S,
    p: &[[f32; C]; R],
    x: &[[S::V; R]; R],
) -> [[S::V; C]; C] {
    let mut left = Partial::<S::V, C, R>::new();
    for b in 0..R {
        let mut column = [s.splat(0.0); R];
        for a in 0..R {
            column[a] = x[a][b];
        }
        let mixed = mix_t(s, p, &column);
        for i in 0..C {
            left.set(i, b, mixed[i]);
        }
    }
    // SAFETY: the loop above set every element.
    let left = unsafe { left.finished() };
    let mut out = [[s.splat(0.0); C]; C];
    for i in 0..C {
        out[i] = mix_t(s, p, &left[i]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::Scalar;

    /// `y = Aᵀ[(G g) ⊙ (Bᵀ d)]` is the correlation `y_i = Σ_k g_k d_{i+k}`, checked with one
    /// lane per basis pair: `d = e_l`, `g = e_k` gives `y_i = [l = i + k]`.
    fn check_1d<const A: usize, const M: usize>() {
        let t = Tile::<A, M>::MATRICES;
        for k in 0..3 {
            for l in 0..A {
                for i in 0..M {
                    let y: f64 = (0..A)
                        .map(|j| t.at[i][j] as f64 * t.g[j][k] as f64 * t.bt[j][l] as f64)
                        .sum();
                    let expected = if l == i + k { 1.0 } else { 0.0 };
                    assert!((y - expected).abs() < 1e-6, "F({M},3): y[{i}] for g=e{k}, d=e{l}: {y}");
                }
            }
        }
    }

    #[test]
    fn the_matrices_compute_a_correlation() {
        check_1d::<4, 2>();
        check_1d::<5, 3>();
        check_1d::<6, 4>();
    }

    #[test]
    fn sandwich_matches_the_matrix_products() {
        let p = [[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]];
        let x: [[[f32; 8]; 3]; 3] = std::array::from_fn(|a| std::array::from_fn(|b| [(a * 3 + b) as f32; 8]));
        let y = sandwich(Scalar, &p, &x);
        let yt = sandwich_t(Scalar, &p, &y);
        for i in 0..2 {
            for j in 0..2 {
                let expected: f32 = (0..3)
                    .flat_map(|a| (0..3).map(move |b| (a, b)))
                    .map(|(a, b)| p[i][a] * (a * 3 + b) as f32 * p[j][b])
                    .sum();
                assert_eq!(y[i][j], [expected; 8]);
            }
        }
        for i in 0..3 {
            for j in 0..3 {
                let expected: f32 = (0..2)
                    .flat_map(|a| (0..2).map(move |b| (a, b)))
                    .map(|(a, b)| p[a][i] * y[a][b][0] * p[b][j])
                    .sum();
                assert_eq!(yt[i][j], [expected; 8]);
            }
        }
    }
}
