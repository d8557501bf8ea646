//! Eight-lane f32 vectors for the kernels written by hand: one AVX register where the CPU has
//! AVX2 and FMA, a plain array otherwise.
//!
//! A kernel is written once, generic over [`Simd`], and compiled twice: inside a function with
//! `#[target_feature(enable = "avx2,fma")]` for [`Avx2`] (chosen at run time when the CPU has
//! it), and for [`Scalar`]. Every method is `#[inline(always)]`, so the generic code collapses
//! into straight vector instructions.

/// Operations on eight f32 lanes.
pub(crate) trait Simd: Copy {
    /// The vector type.
    type V: Copy;

    /// All lanes `x`.
    fn splat(self, x: f32) -> Self::V;
    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a − b`.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a · b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a · b + c`, fused where the CPU can.
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Lanewise maximum.
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// `v` in the lanes where `mask > 0`, zero elsewhere (a ReLU's derivative applied to `v`).
    fn keep_where_positive(self, v: Self::V, mask: Self::V) -> Self::V;
    /// All bits set where `a == b`, clear elsewhere: a lane mask.
    fn equal(self, a: Self::V, b: Self::V) -> Self::V;
    /// A lane mask of `a > b` (false where either is NaN).
    fn greater(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a` in the lanes where `mask` is set, `b` elsewhere.
    fn select(self, mask: Self::V, a: Self::V, b: Self::V) -> Self::V;
    /// Bitwise `a & b` (a mask applied to values, or two masks combined).
    fn and(self, a: Self::V, b: Self::V) -> Self::V;

    /// `src[..8]`.
    fn load(self, src: &[f32]) -> Self::V;
    /// Writes `dst[..8]`.
    fn store(self, dst: &mut [f32], v: Self::V);
    /// The eight values at `src`.
    ///
    /// # Safety
    /// `src..src + 8` must be readable.
    unsafe fn load_ptr(self, src: *const f32) -> Self::V;
    /// Writes eight values at `dst`.
    ///
    /// # Safety
    /// `dst..dst + 8` must be writable.
    unsafe fn store_ptr(self, dst: *mut f32, v: Self::V);

    /// The first `width` (≤ 8) values of `src`, zeros in the other lanes.
    #[inline(always)]
    fn load_partial(self, src: &[f32], width: usize) -> Self::V {
        if width == 8 {
            return self.load(src);
        }
        let mut lanes = [0.0; 8];
        lanes[..width].copy_from_slice(&src[..width]);
        self.load(&lanes)
    }

    /// Writes the first `width` (≤ 8) lanes of `v` to `dst`.
    #[inline(always)]
    fn store_partial(self, dst: &mut [f32], width: usize, v: Self::V) {
        if width == 8 {
            return self.store(dst, v);
        }
        let mut lanes = [0.0; 8];
        self.store(&mut lanes, v);
        dst[..width].copy_from_slice(&lanes[..width]);
    }
}

/// Plain arrays: the fallback on CPUs without AVX2 and FMA.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scalar;

impl Simd for Scalar {
    type V = [f32; 8];

    #[inline(always)]
    fn splat(self, x: f32) -> [f32; 8] {
        [x; 8]
    }
    #[inline(always)]
    fn add(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        let mut out = a;
        for l in 0..8 {
            out[l] += b[l];
        }
        out
    }
    #[inline(always)]
    fn sub(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        let mut out = a;
        for l in 0..8 {
            out[l] -= b[l];
        }
        out
    }
    #[inline(always)]
    fn mul(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        let mut out = a;
        for l in 0..8 {
            out[l] *= b[l];
        }
        out
    }
    #[inline(always)]
    fn mul_add(self, a: [f32; 8], b: [f32; 8], c: [f32; 8]) -> [f32; 8] {
        let mut out = c;
        for l in 0..8 {
            out[l] += a[l] * b[l];
        }
        out
    }
    #[inline(always)]
    fn max(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        let mut out = a;
        for l in 0..8 {
            out[l] = out[l].max(b[l]);
        }
        out
    }
    #[inline(always)]
    fn keep_where_positive(self, v: [f32; 8], mask: [f32; 8]) -> [f32; 8] {
        let mut out = v;
        for l in 0..8 {
            if mask[l] <= 0.0 || mask[l].is_nan() {
                out[l] = 0.0;
            }
        }
        out
    }
    #[inline(always)]
    fn equal(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|l| f32::from_bits(if a[l] == b[l] { !0 } else { 0 }))
    }
    #[inline(always)]
    fn greater(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|l| f32::from_bits(if a[l] > b[l] { !0 } else { 0 }))
    }
    #[inline(always)]
    fn select(self, mask: [f32; 8], a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|l| if mask[l].to_bits() != 0 { a[l] } else { b[l] })
    }
    #[inline(always)]
    fn and(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|l| f32::from_bits(a[l].to_bits() & b[l].to_bits()))
    }
    #[inline(always)]
    fn load(self, src: &[f32]) -> [f32; 8] {
        src[..8].try_into().expect("eight values")
    }
    #[inline(always)]
    fn store(self, dst: &mut [f32], v: [f32; 8]) {
        dst[..8].copy_from_slice(&v);
    }
    #[inline(always)]
    unsafe fn load_ptr(self, src: *const f32) -> [f32; 8] {
        // SAFETY: the caller's contract.
        unsafe { std::ptr::read_unaligned(src as *const [f32; 8]) }
    }
    #[inline(always)]
    unsafe fn store_ptr(self, dst: *mut f32, v: [f32; 8]) {
        // SAFETY: the caller's contract.
        unsafe { std::ptr::write_unaligned(dst as *mut [f32; 8], v) }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::Avx2;

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Simd;
    use std::arch::x86_64::*;

    /// AVX registers. A value of this type exists only where the CPU has AVX2 and FMA: it is
    /// the proof the intrinsics below rely on.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Avx2(());

    impl Avx2 {
        /// `Some` when this CPU runs AVX2 and FMA (the check is cached by std).
        #[inline]
        pub(crate) fn detect() -> Option<Avx2> {
            (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")).then_some(Avx2(()))
        }
    }

    // SAFETY (every method): an `Avx2` value exists only after `detect` found AVX2 and FMA.
    impl Simd for Avx2 {
        type V = __m256;

        #[inline(always)]
        fn splat(self, x: f32) -> __m256 {
            unsafe { _mm256_set1_ps(x) }
        }
        #[inline(always)]
        fn add(self, a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_add_ps(a, b) }
        }
        #[inline(always)]
        fn sub(self, a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_sub_ps(a, b) }
        }
        #[inline(always)]
        fn mul(self, a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_mul_ps(a, b) }
        }
        #[inline(always)]
        fn mul_add(self, a: __m256, b: __m256, c: __m256) -> __m256 {
            unsafe { _mm256_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        fn max(self, a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_max_ps(a, b) }
        }
        #[inline(always)]
        fn keep_where_positive(self, v: __m256, mask: __m256) -> __m256 {
            unsafe { _mm256_and_ps(v, _mm256_cmp_ps::<_CMP_GT_OQ>(mask, _mm256_setzero_ps())) }
        }
        #[inline(always)]
        fn equal(self, a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_cmp_ps::<_CMP_EQ_OQ>(a, b) }
        }
        #[inline(always)]
        fn greater(self, a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_cmp_ps::<_CMP_GT_OQ>(a, b) }
        }
        #[inline(always)]
        fn select(self, mask: __m256, a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_blendv_ps(b, a, mask) }
        }
        #[inline(always)]
        fn and(self, a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_and_ps(a, b) }
        }
        #[inline(always)]
        fn load(self, src: &[f32]) -> __m256 {
            // The slice bound check makes the unaligned 8-value read in bounds.
            unsafe { _mm256_loadu_ps(src[..8].as_ptr()) }
        }
        #[inline(always)]
        fn store(self, dst: &mut [f32], v: __m256) {
            unsafe { _mm256_storeu_ps(dst[..8].as_mut_ptr(), v) }
        }
        #[inline(always)]
        unsafe fn load_ptr(self, src: *const f32) -> __m256 {
            // The caller guarantees eight readable values.
            unsafe { _mm256_loadu_ps(src) }
        }
        #[inline(always)]
        unsafe fn store_ptr(self, dst: *mut f32, v: __m256) {
            // The caller guarantees eight writable values.
            unsafe { _mm256_storeu_ps(dst, v) }
        }
    }
}

/// Defines `$name<const G…: usize>(args…)`, which runs `$body::<S, G…>(simd, args…)` with
/// [`Avx2`] inside a function compiled for AVX2 and FMA when the CPU has them, and with
/// [`Scalar`] otherwise. `$body` must be `#[inline(always)]`, so it is compiled for the
/// features of its caller.
macro_rules! dispatch_simd {
    ($name:ident<$($g:ident),*> => $body:ident ($($arg:ident: $ty:ty),*)) => {
        #[allow(clippy::too_many_arguments)]
        fn $name<$(const $g: usize),*>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if let Some(simd) = $crate::kernels::simd::Avx2::detect() {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn fast<$(const $g: usize),*>(simd: $crate::kernels::simd::Avx2, $($arg: $ty),*) {
                    $body::<_, $($g),*>(simd, $($arg),*)
                }
                // SAFETY: `detect` found the features `fast` is compiled for.
                return unsafe { fast::<$($g),*>(simd, $($arg),*) };
            }
            $body::<_, $($g),*>($crate::kernels::simd::Scalar, $($arg),*)
        }
    };
}
pub(crate) use dispatch_simd;
