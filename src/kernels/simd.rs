//! f32 vectors for the kernels written by hand: sixteen lanes in one AVX-512 register where the
//! CPU has AVX-512F, eight in one AVX register where it has AVX2 and FMA, a plain array of
//! eight otherwise.
//!
//! A kernel is written once, generic over [`Simd`] and its [`Simd::LANES`], and compiled three
//! times: inside a function with `#[target_feature(enable = "avx512f,…")]` for [`Avx512`], one
//! with `"avx2,fma"` for [`Avx2`], and plainly for [`Scalar`]; [`dispatch_simd`] picks one at
//! run time. Every method is `#[inline(always)]`, so the generic code collapses into straight
//! vector instructions. Each lane does the same operations in the same order on every path
//! (the scalar path's multiply-adds are not fused), so [`Avx512`] and [`Avx2`] give
//! bit-identical results and [`Scalar`] differs from them by the rounding of the fused
//! multiply-adds only.
//!
//! The path is chosen once per process ([`simd_level`]): the widest the CPU runs, lowered by
//! the environment variable `STRATA_SIMD` (`avx512`, `avx2` or `scalar`) for benchmarking and
//! testing, and per thread by [`limit_simd_on_this_thread`] (the tests and benchmarks compare
//! the paths in one process that way).
//!
//! The bfloat16 products (`bf16_matmul.rs`) go one step above AVX-512F where the CPU has
//! AVX512_BF16 ([`bf16_dot`]); `STRATA_SIMD=avx512` keeps them on AVX-512F's f32 arithmetic
//! (same results, for comparing the two), `STRATA_SIMD=avx512bf16` is the default spelled out.

use std::cell::Cell;
use std::sync::OnceLock;

/// Which of the kernels' vector paths runs, from narrowest to widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdLevel {
    /// Plain loops over arrays of eight (what the compiler makes of them at the baseline).
    Scalar,
    /// Eight lanes: AVX2 and FMA.
    Avx2,
    /// Sixteen lanes: AVX-512F (with AVX2 and FMA).
    Avx512,
}

impl SimdLevel {
    /// The name `STRATA_SIMD` takes: `scalar`, `avx2` or `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Scalar => "scalar",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }

    /// The level named `name` (as [`SimdLevel::name`] spells it, any case), if any.
    pub fn parse(name: &str) -> Option<SimdLevel> {
        [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512]
            .into_iter()
            .find(|level| level.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The widest path this CPU runs.
    pub fn detected() -> SimdLevel {
        #[cfg(target_arch = "x86_64")]
        {
            if Avx512::detect().is_some() {
                return SimdLevel::Avx512;
            }
            if Avx2::detect().is_some() {
                return SimdLevel::Avx2;
            }
        }
        SimdLevel::Scalar
    }
}

/// The process-wide level: the CPU's, lowered by `STRATA_SIMD`. Read once.
fn process_level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cpu = SimdLevel::detected();
        match std::env::var("STRATA_SIMD") {
            Err(_) => cpu,
            // The default, named: AVX-512 with AVX512_BF16 for the bfloat16 products.
            Ok(value) if value.trim().eq_ignore_ascii_case(BF16_DOT_NAME) => cpu,
            Ok(value) => match SimdLevel::parse(&value) {
                Some(level) => level.min(cpu),
                None => {
                    // The kernels have no way to return an error; a typo must not pass silently.
                    eprintln!(
                        "warning: STRATA_SIMD={value:?} is not one of avx512, avx2, scalar; using {}",
                        cpu.name()
                    );
                    cpu
                }
            },
        }
    })
}

/// The `STRATA_SIMD` value that allows `vdpbf16ps` explicitly (as leaving it unset does).
const BF16_DOT_NAME: &str = "avx512bf16";

/// Whether the process may use AVX512_BF16: the CPU has it (with AVX-512F) and `STRATA_SIMD`
/// is unset or `avx512bf16`. Read once.
fn process_bf16_dot() -> bool {
    static DOT: OnceLock<bool> = OnceLock::new();
    *DOT.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        let cpu = is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16");
        #[cfg(not(target_arch = "x86_64"))]
        let cpu = false;
        let allowed =
            std::env::var("STRATA_SIMD").map_or(true, |value| value.trim().eq_ignore_ascii_case(BF16_DOT_NAME));
        cpu && allowed
    })
}

/// Whether the bfloat16 products run `vdpbf16ps` (AVX512_BF16) on this thread: the CPU has
/// it, `STRATA_SIMD` allows it, this thread runs the AVX-512 path and has no limit of its own
/// ([`limit_simd_on_this_thread`] with any level keeps them on f32 arithmetic). Otherwise they
/// run as f32 arithmetic on the [`simd_level`] path, with the same results.
pub fn bf16_dot() -> bool {
    process_bf16_dot() && simd_level() == SimdLevel::Avx512 && THREAD_LIMIT.with(Cell::get).is_none()
}

thread_local! {
    /// This thread's limit, if any (see [`limit_simd_on_this_thread`]).
    static THREAD_LIMIT: Cell<Option<SimdLevel>> = const { Cell::new(None) };
}

/// The path the kernels take on this thread: the widest the CPU runs, no wider than
/// `STRATA_SIMD` and this thread's limit.
pub fn simd_level() -> SimdLevel {
    let level = process_level();
    THREAD_LIMIT.with(Cell::get).map_or(level, |limit| limit.min(level))
}

/// Limits the kernels run on this thread to `limit` (`None`: no limit beyond `STRATA_SIMD`).
/// The kernels split work over the rayon pool they run in, so to compare paths, build a pool
/// whose `start_handler` calls this on each thread and run the work in it with `install`.
pub fn limit_simd_on_this_thread(limit: Option<SimdLevel>) {
    THREAD_LIMIT.with(|cell| cell.set(limit));
}

/// A pool of `threads` threads whose kernels run at most `level`'s vector path: for tests that
/// compare the paths and thread counts (run the work in it with `install`).
#[cfg(test)]
pub(crate) fn limited_pool(threads: usize, level: SimdLevel) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(move |_| limit_simd_on_this_thread(Some(level)))
        .build()
        .expect("a test's thread pool")
}

/// Runs `body` inside a function compiled for the widest vector instructions [`simd_level`]
/// allows: for loops the compiler vectorizes by itself (the elementwise maps), which `body` is
/// inlined into and vectorized for that width, as `update.rs` does for the optimizers. The loop
/// must do the same operations on each element whatever the width (no sum across elements,
/// which the compiler keeps in order anyway, and Rust does not fuse multiply-adds unasked), so
/// every path gives the same bits.
#[inline(always)]
pub(crate) fn widest<R>(body: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx2,fma")]
        fn wide<R>(body: impl FnOnce() -> R) -> R {
            body()
        }
        #[target_feature(enable = "avx2,fma")]
        fn fast<R>(body: impl FnOnce() -> R) -> R {
            body()
        }
        match simd_level() {
            // SAFETY: `simd_level` reports a level only where the CPU has its features.
            SimdLevel::Avx512 => return unsafe { wide(body) },
            SimdLevel::Avx2 => return unsafe { fast(body) },
            SimdLevel::Scalar => {}
        }
    }
    body()
}

/// Operations on [`Simd::LANES`] f32 lanes.
pub(crate) trait Simd: Copy {
    /// The vector type.
    type V: Copy;
    /// Lanes in a vector (8 or 16).
    const LANES: usize;
    /// Vector registers the CPU has (16 for AVX2, 32 for AVX-512): how many sums a kernel
    /// can keep in flight.
    const REGISTERS: usize = 16;

    /// All lanes `x`.
    fn splat(self, x: f32) -> Self::V;
    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a − b`.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a · b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a / b`, correctly rounded (IEEE division on every path).
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a · b + c`, fused where the CPU can.
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Lanewise `a > b ? a : b`: `b` where the two are equal or either is NaN (x86's `maxps`).
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// Lanewise `a < b ? a : b`: `b` where the two are equal or either is NaN (x86's `minps`).
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
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

    /// `src[..LANES]`.
    fn load(self, src: &[f32]) -> Self::V;
    /// Writes `dst[..LANES]`.
    fn store(self, dst: &mut [f32], v: Self::V);
    /// The `LANES` values at `src`.
    ///
    /// # Safety
    /// `src..src + LANES` must be readable.
    unsafe fn load_ptr(self, src: *const f32) -> Self::V;
    /// Writes `LANES` values at `dst`.
    ///
    /// # Safety
    /// `dst..dst + LANES` must be writable.
    unsafe fn store_ptr(self, dst: *mut f32, v: Self::V);

    /// The first `width` (≤ `LANES`) values of `src`, zeros in the other lanes.
    #[inline(always)]
    fn load_partial(self, src: &[f32], width: usize) -> Self::V {
        if width == Self::LANES {
            return self.load(src);
        }
        let mut lanes = [0.0; 16];
        lanes[..width].copy_from_slice(&src[..width]);
        self.load(&lanes)
    }

    /// Writes the first `width` (≤ `LANES`) lanes of `v` to `dst`.
    #[inline(always)]
    fn store_partial(self, dst: &mut [f32], width: usize, v: Self::V) {
        if width == Self::LANES {
            return self.store(dst, v);
        }
        let mut lanes = [0.0; 16];
        self.store(&mut lanes, v);
        dst[..width].copy_from_slice(&lanes[..width]);
    }
}

/// Plain arrays: the fallback on CPUs without AVX2 and FMA.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scalar;

impl Simd for Scalar {
    type V = [f32; 8];
    const LANES: usize = 8;

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
    fn div(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        let mut out = a;
        for l in 0..8 {
            out[l] /= b[l];
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
        // As `maxps`: `b` where the two are equal (±0) or either is NaN (`f32::max` promises
        // neither).
        std::array::from_fn(|l| if a[l] > b[l] { a[l] } else { b[l] })
    }
    #[inline(always)]
    fn min(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|l| if a[l] < b[l] { a[l] } else { b[l] })
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
        const LANES: usize = 8;

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
        fn div(self, a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_div_ps(a, b) }
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
        fn min(self, a: __m256, b: __m256) -> __m256 {
            unsafe { _mm256_min_ps(a, b) }
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

#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::Avx512;

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::Simd;
    use std::arch::x86_64::*;

    /// AVX-512 registers. A value of this type exists only where the CPU has AVX-512F, AVX2
    /// and FMA: it is the proof the intrinsics below rely on. Only AVX-512F instructions are
    /// used (lane masks are kept as all-ones vectors, as on AVX2), so any AVX-512 CPU runs it.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Avx512(());

    impl Avx512 {
        /// `Some` when this CPU runs AVX-512F, AVX2 and FMA (the check is cached by std).
        #[inline]
        pub(crate) fn detect() -> Option<Avx512> {
            (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
                .then_some(Avx512(()))
        }
    }

    /// The lane mask of the lanes whose bits are not all zero.
    #[inline(always)]
    fn to_mask(v: __m512) -> __mmask16 {
        unsafe { _mm512_test_epi32_mask(_mm512_castps_si512(v), _mm512_castps_si512(v)) }
    }

    /// All bits set in the lanes of `mask`, clear elsewhere.
    #[inline(always)]
    fn from_mask(mask: __mmask16) -> __m512 {
        unsafe { _mm512_castsi512_ps(_mm512_maskz_mov_epi32(mask, _mm512_set1_epi32(-1))) }
    }

    /// The mask of the first `width` (≤ 16) lanes.
    #[inline(always)]
    fn first_lanes(width: usize) -> __mmask16 {
        ((1u32 << width.min(16)) - 1) as __mmask16
    }

    // SAFETY (every method): an `Avx512` value exists only after `detect` found the features.
    impl Simd for Avx512 {
        type V = __m512;
        const LANES: usize = 16;
        const REGISTERS: usize = 32;

        #[inline(always)]
        fn splat(self, x: f32) -> __m512 {
            unsafe { _mm512_set1_ps(x) }
        }
        #[inline(always)]
        fn add(self, a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_add_ps(a, b) }
        }
        #[inline(always)]
        fn sub(self, a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_sub_ps(a, b) }
        }
        #[inline(always)]
        fn mul(self, a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_mul_ps(a, b) }
        }
        #[inline(always)]
        fn div(self, a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_div_ps(a, b) }
        }
        #[inline(always)]
        fn mul_add(self, a: __m512, b: __m512, c: __m512) -> __m512 {
            unsafe { _mm512_fmadd_ps(a, b, c) }
        }
        #[inline(always)]
        fn max(self, a: __m512, b: __m512) -> __m512 {
            // vmaxps returns its second operand where either is NaN, as the AVX form does.
            unsafe { _mm512_max_ps(a, b) }
        }
        #[inline(always)]
        fn min(self, a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_min_ps(a, b) }
        }
        #[inline(always)]
        fn keep_where_positive(self, v: __m512, mask: __m512) -> __m512 {
            unsafe { _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(mask, _mm512_setzero_ps()), v) }
        }
        #[inline(always)]
        fn equal(self, a: __m512, b: __m512) -> __m512 {
            from_mask(unsafe { _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b) })
        }
        #[inline(always)]
        fn greater(self, a: __m512, b: __m512) -> __m512 {
            from_mask(unsafe { _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b) })
        }
        #[inline(always)]
        fn select(self, mask: __m512, a: __m512, b: __m512) -> __m512 {
            unsafe { _mm512_mask_blend_ps(to_mask(mask), b, a) }
        }
        #[inline(always)]
        fn and(self, a: __m512, b: __m512) -> __m512 {
            // `vandps` on zmm needs AVX-512DQ; the integer form is in AVX-512F.
            unsafe { _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_castps_si512(b))) }
        }
        #[inline(always)]
        fn load(self, src: &[f32]) -> __m512 {
            // The slice bound check makes the unaligned 16-value read in bounds.
            unsafe { _mm512_loadu_ps(src[..16].as_ptr()) }
        }
        #[inline(always)]
        fn store(self, dst: &mut [f32], v: __m512) {
            unsafe { _mm512_storeu_ps(dst[..16].as_mut_ptr(), v) }
        }
        #[inline(always)]
        unsafe fn load_ptr(self, src: *const f32) -> __m512 {
            // The caller guarantees sixteen readable values.
            unsafe { _mm512_loadu_ps(src) }
        }
        #[inline(always)]
        unsafe fn store_ptr(self, dst: *mut f32, v: __m512) {
            // The caller guarantees sixteen writable values.
            unsafe { _mm512_storeu_ps(dst, v) }
        }
        #[inline(always)]
        fn load_partial(self, src: &[f32], width: usize) -> __m512 {
            // A whole vector by a plain load: a masked load of values stored just before
            // waits for the store to reach the cache (no store forwarding; measured as a
            // quarter of the attention backward's time when its row dot products used it).
            if width >= 16 {
                return self.load(src);
            }
            // A masked load touches only the lanes in the mask, which the slice check covers.
            unsafe { _mm512_maskz_loadu_ps(first_lanes(width), src[..width].as_ptr()) }
        }
        #[inline(always)]
        fn store_partial(self, dst: &mut [f32], width: usize, v: __m512) {
            if width >= 16 {
                return self.store(dst, v);
            }
            unsafe { _mm512_mask_storeu_ps(dst[..width].as_mut_ptr(), first_lanes(width), v) }
        }
    }
}

/// Defines `$name<const G…: usize>(args…)`, which runs `$body::<S, G…>(simd, args…)` on the
/// path [`simd_level`] picks: [`Avx512`] inside a function compiled for AVX-512F (when the
/// optional `wide: CONDITION` on the arguments also holds: a kernel whose channel counts are
/// multiples of 8 but not of 16 says so there), [`Avx2`] inside one compiled for AVX2 and FMA,
/// or [`Scalar`]. `$body` must be `#[inline(always)]`, so it is compiled for the features of
/// its caller.
macro_rules! dispatch_simd {
    ($name:ident<$($g:ident),*> => $body:ident ($($arg:ident: $ty:ty),*) $(wide: $wide:expr)?) => {
        #[allow(clippy::too_many_arguments)]
        fn $name<$(const $g: usize),*>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                use $crate::kernels::simd::{Avx2, Avx512, SimdLevel};
                let level = $crate::kernels::simd::simd_level();
                if level == SimdLevel::Avx512 $(&& $wide)? {
                    if let Some(simd) = Avx512::detect() {
                        #[target_feature(enable = "avx512f,avx2,fma")]
                        #[allow(clippy::too_many_arguments)]
                        fn wide<$(const $g: usize),*>(simd: Avx512, $($arg: $ty),*) {
                            $body::<_, $($g),*>(simd, $($arg),*)
                        }
                        // SAFETY: `detect` found the features `wide` is compiled for.
                        return unsafe { wide::<$($g),*>(simd, $($arg),*) };
                    }
                }
                if level >= SimdLevel::Avx2 {
                    if let Some(simd) = Avx2::detect() {
                        #[target_feature(enable = "avx2,fma")]
                        #[allow(clippy::too_many_arguments)]
                        fn fast<$(const $g: usize),*>(simd: Avx2, $($arg: $ty),*) {
                            $body::<_, $($g),*>(simd, $($arg),*)
                        }
                        // SAFETY: `detect` found the features `fast` is compiled for.
                        return unsafe { fast::<$($g),*>(simd, $($arg),*) };
                    }
                }
            }
            $body::<_, $($g),*>($crate::kernels::simd::Scalar, $($arg),*)
        }
    };
}
pub(crate) use dispatch_simd;
