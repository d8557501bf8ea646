//! The AVX2 path of the int8 convolution: tiles of four product rows read in place (the same
//! rows and quads as the VNNI tiles), each quad's products by `vpmaddubsw` and summed into `i32`
//! lanes by `vpmaddwd`, as the AVX2 product does.
//!
//! `vpmaddubsw` multiplies unsigned by signed bytes. Activations that are all `≥ 0` (images,
//! anything after a ReLU: nearly every convolution) are their own unsigned bytes, and a pair of
//! products is at most `2 · 127 · 127`, inside an `i16`; otherwise each quad goes in as `|a|`
//! and `b · sign(a)`, two instructions more. The sums are exact either way, then the largest of
//! each output's taps is scaled by [`Int8Conv::finish_row`], as on the scalar path.

use super::super::int8_matmul::{Output, PackedInt8};
use super::tile_rows::{Int8Conv, Layout, TileRows};
use std::arch::x86_64::*;

/// Columns per packed block; bytes of one quad of a block.
const BLOCK: usize = 16;
const QUAD_BYTES: usize = 64;
/// Product rows per tile: 12 registers of sums, 2 of kernel, the rest for the activations;
/// 4 (one output) for a pooling window of 4 taps.
const TILE_ROWS: usize = 6;

/// Output rows `first..first + count` on the AVX2 tiles, `offsets` the kernel's
/// `quad_offsets`; `unsigned`: no activation is negative.
///
/// # Safety
/// The CPU has AVX2; `Int8Conv::check` passed; with `unsigned`, the source holds no negative byte.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn conv_rows(
    conv: &Int8Conv,
    layout: &Layout,
    offsets: &[usize],
    first: usize,
    count: usize,
    unsigned: bool,
    out: &mut Output,
) {
    let b = conv.kernel;
    let stride = b.blocks() * BLOCK;
    let tile_rows = if layout.taps == 4 { 4 } else { TILE_ROWS };
    let mut best = vec![0i32; tile_rows / layout.taps * stride];
    let mut scaled = vec![0.0f32; b.width()];
    let mut walker = TileRows::new(conv, layout, first, count);
    let mut rows = [std::ptr::null::<i8>(); 8];
    while let Some((o, take)) = walker.next(tile_rows, &mut rows) {
        for block in 0..b.blocks() {
            // SAFETY: block < blocks; the rows and their quads lie inside the source (`check`);
            // `best` holds the tile's outputs' whole blocks.
            unsafe {
                match (unsigned, layout.taps) {
                    (true, 1) => tile::<TILE_ROWS, 1, true>(&rows, offsets, b, block, &mut best),
                    (true, 2) => tile::<TILE_ROWS, 2, true>(&rows, offsets, b, block, &mut best),
                    (true, _) => tile::<4, 4, true>(&rows, offsets, b, block, &mut best),
                    (false, 1) => tile::<TILE_ROWS, 1, false>(&rows, offsets, b, block, &mut best),
                    (false, 2) => tile::<TILE_ROWS, 2, false>(&rows, offsets, b, block, &mut best),
                    (false, _) => tile::<4, 4, false>(&rows, offsets, b, block, &mut best),
                }
            }
        }
        for i in 0..take {
            conv.finish_row(o + i, first, &best[i * stride..], &mut scaled, out);
        }
    }
}

/// `R` product rows × one block of 16 columns; the largest sum of each output's `G` taps goes
/// to `best`, output `j` of the tile at `j · blocks · 16`.
///
/// # Safety
/// As `conv_rows`; `block < blocks`; `G` divides `R`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn tile<const R: usize, const G: usize, const UNSIGNED: bool>(
    rows: &[*const i8; 8],
    offsets: &[usize],
    b: &PackedInt8,
    block: usize,
    best: &mut [i32],
) {
    let mut sums = [[_mm256_setzero_si256(); 2]; R];
    let ones = _mm256_set1_epi16(1);
    // SAFETY: block < blocks: its quads lie inside the packed data.
    let kernel = unsafe { b.data.as_ptr().add(block * b.quads * QUAD_BYTES) };
    for (q, &offset) in offsets.iter().enumerate() {
        // SAFETY: q < quads; a quad is 64 bytes, two loads of 32.
        let w = unsafe {
            [
                _mm256_loadu_si256(kernel.add(q * QUAD_BYTES) as *const _),
                _mm256_loadu_si256(kernel.add(q * QUAD_BYTES + 32) as *const _),
            ]
        };
        for (r, sums) in sums.iter_mut().enumerate() {
            // SAFETY: the row's quad lies inside the source (`check`).
            let x = _mm256_set1_epi32(unsafe { std::ptr::read_unaligned(rows[r].add(offset) as *const i32) });
            for half in 0..2 {
                let pairs = if UNSIGNED {
                    _mm256_maddubs_epi16(x, w[half])
                } else {
                    _mm256_maddubs_epi16(_mm256_abs_epi8(x), _mm256_sign_epi8(w[half], x))
                };
                sums[half] = _mm256_add_epi32(sums[half], _mm256_madd_epi16(pairs, ones));
            }
        }
    }
    let stride = b.blocks() * BLOCK;
    for j in 0..R / G {
        for half in 0..2 {
            let mut largest = sums[j * G][half];
            for t in 1..G {
                largest = _mm256_max_epi32(largest, sums[j * G + t][half]);
            }
            let at = j * stride + block * BLOCK + half * 8;
            assert!(at + 8 <= best.len());
            // SAFETY: checked just above.
            unsafe { _mm256_storeu_si256(best.as_mut_ptr().add(at) as *mut _, largest) };
        }
    }
}
