//! Inference's products with a weight matrix known ahead: the convolutions' kernels laid out
//! once as column panels, then multiplied by the input rows read in place.
//!
//! Why not gemm-f32: gemm packs its right-hand operand on every call, and on two threads each
//! thread's row block packs it again. At batch 1 the products have few rows (49 output pixels
//! at 7×7) and large kernels (ResNet-18's last convolutions hold 4608×512 values, 9 MB), so the
//! packing costs half as much as the multiply-adds. Here the packing is done once, when the
//! weights change (the graph caches it with the node), and each call only multiplies. The
//! timings are in docs/PERFORMANCE.md, "Kernels packed once for inference".
//!
//! A convolution's input rows are its receptive fields. Where every window lies inside the
//! image and its taps along a row are neighbours (no padding, no horizontal dilation: an
//! explicit `ZeroPadding2D` before a valid convolution), they are read from the image in
//! place, one run of `KW·C` values per kernel row (`Fields`). Otherwise, with few rows (a
//! single image) they are stored whole first (im2col) and the tasks are blocks of rows by
//! panels; with many rows each task takes a block of whole rows, copies its receptive fields
//! into the core's cache and multiplies them by every panel, so the im2col matrix (236 MB for
//! a batch of 32 through ResNet's 7×7 stem) is never stored.
//!
//! Every output is the sum over the inner dimension in blocks of [`DEPTH_BLOCK`], in order, each
//! block one chain of fused multiply-adds (see `small_gemm`), the blocks added in turn; then
//! the bias, the residual and the activation. The split into tasks only decides which thread
//! computes an output, never how: 1 and 2 threads, AVX-512 and AVX2 give the same bits.

use super::activation::finish_rows;
use super::conv::{Window2d, im2col, im2col_rows};
use super::pointwise::Finish;
use super::scratch::with_scratch;
use super::simd::{Simd, dispatch_simd};
use super::small_gemm::{Ahead, LeftOperand, Store, Strided, small_gemm_ahead};
use super::threads::even_blocks;
use rayon::prelude::*;

/// Columns per panel: the widest block of sums `small_gemm` holds in registers (four 16-wide
/// vectors), so one panel is one pass of its row blocks.
const PANEL_WIDTH: usize = 64;
/// Inner-dimension values per block at most (the blocks are made equal): a panel's block (128 × 64 values, 32 KiB) stays in the
/// first-level cache while every block of rows reads it.
const DEPTH_BLOCK: usize = 128;
/// Rows per task at least, unless the product has fewer: two of `small_gemm`'s row blocks.
const MIN_BLOCK_ROWS: usize = 12;
/// Tasks per thread wanted, where the rows allow.
const TASKS_PER_THREAD: usize = 4;
/// Rows per task at most: a task's sums (96 × 64 values, 24 KiB) stay in the first-level cache
/// between depth blocks.
const ROW_BLOCK: usize = 96;
/// Rows per task at most where a task takes whole rows (`by_row_blocks`): the rows of one
/// depth block (48 × 128 values, 24 KiB) and a panel's block (32 KiB) then nearly fit the
/// first-level cache together; with 96 rows ResNet50's 28×28 1×1 layers at batch 1 took 7–9 %
/// longer (docs/PERFORMANCE.md, "Winograd by panels for few tiles").
const WHOLE_ROWS_BLOCK: usize = 48;

/// Whether [`packed_product`] takes a `rows × depth` by `depth × columns` product, its rows
/// read in place (`in_place`) or copied from a convolution's images: whole 16-wide vectors of
/// columns (the widest path's width), and, for rows read in place, either few rows or a long
/// inner dimension. Many rows with a short inner dimension move more data than they compute,
/// and there gemm-f32, which reads the rows once packed, is faster than reading them in place
/// (see the ignored speed tests below); copied a block at a time, they stay in cache.
pub(crate) fn handles(rows: usize, depth: usize, columns: usize, in_place: bool) -> bool {
    computes(columns) && (!in_place || rows <= 1024 || depth >= 256)
}

/// Whether [`packed_product`] computes `columns` output columns.
fn computes(columns: usize) -> bool {
    columns > 0 && columns.is_multiple_of(16)
}

/// Lays `matrix` (`depth × columns`, row-major) out as panels of [`PANEL_WIDTH`] columns (the
/// last one narrower), each `depth` rows of its columns one after another: the panel starting
/// at column `j` fills `packed[j·depth..]`. `packed` holds `depth · columns` values.
///
/// Panics if a slice is shorter than its shape says (a bug in the caller).
pub(crate) fn pack_columns(matrix: &[f32], (depth, columns): (usize, usize), packed: &mut [f32]) {
    assert!(
        matrix.len() >= depth * columns && packed.len() >= depth * columns,
        "pack_columns operand too short"
    );
    for first in (0..columns).step_by(PANEL_WIDTH) {
        let width = PANEL_WIDTH.min(columns - first);
        let panel = &mut packed[first * depth..][..depth * width];
        for (row, values) in panel.chunks_exact_mut(width).enumerate() {
            values.copy_from_slice(&matrix[row * columns + first..][..width]);
        }
    }
}

/// Where [`packed_product`] reads its input rows.
#[derive(Clone, Copy)]
pub(crate) enum Rows<'a> {
    /// A `rows × depth` matrix, read in place.
    Matrix(&'a [f32]),
    /// The receptive fields of a convolution over these images (`N×H×W×C`): [`im2col`]'s
    /// matrix, never stored whole: read in place where [`reads_fields_in_place`], else copied
    /// a block of rows at a time into the core's cache.
    Fields(&'a [f32], &'a Window2d),
}

/// Whether a convolution's receptive fields can be read in place: every window inside the
/// image (no padding) and each kernel row's taps consecutive pixels (no horizontal dilation),
/// so a field is `KH` runs of `KW·C` consecutive input values.
fn reads_fields_in_place(g: &Window2d) -> bool {
    g.dilation_w == 1 && g.windows_inside()
}

/// Receptive fields read in place (see [`reads_fields_in_place`]) for a block of output rows:
/// element `(row, p)` is `images[starts[row] + (first + p) / run · run_stride + (first + p) %
/// run]`, where `run` is a kernel row's `KW·C` values and `run_stride` the distance between the
/// image rows that two kernel rows read.
#[derive(Clone, Copy)]
struct Fields<'a> {
    images: &'a [f32],
    /// Where each row's window starts in `images`.
    starts: &'a [usize],
    /// The inner dimension's first element read (the depth block's start).
    first: usize,
    run: usize,
    run_stride: usize,
}

impl Fields<'_> {
    /// The offset of inner element `p` (counted from the field's start) from its row's start.
    #[inline(always)]
    fn offset(&self, p: usize) -> usize {
        p / self.run * self.run_stride + p % self.run
    }
}

impl LeftOperand for Fields<'_> {
    fn check(&self, first_row: usize, rows: usize, k: usize) {
        if rows == 0 || k == 0 {
            return;
        }
        // Offsets grow with `p` (a run never reaches the next image row's), so the last
        // element is each row's farthest.
        let last = self.offset(self.first + k - 1);
        let inside = self.run_stride >= self.run
            && self.starts[first_row..first_row + rows]
                .iter()
                .all(|&start| start + last < self.images.len());
        assert!(inside, "packed_product receptive field outside the images");
    }

    #[inline(always)]
    fn row_start(&self, row: usize) -> *const f32 {
        self.images.as_ptr().wrapping_add(self.starts[row])
    }

    #[inline(always)]
    fn run_at(&self, p: usize, k: usize) -> (usize, usize, usize) {
        let at = self.first + p;
        let within = at % self.run;
        (
            at / self.run * self.run_stride + within,
            (self.run - within).min(k - p),
            1,
        )
    }
}

/// The input rows of one task: a matrix's rows, or receptive fields read in place.
#[derive(Clone, Copy)]
enum TaskRows<'a> {
    /// Rows of `depth` values, the given number of values apart.
    Matrix(&'a [f32], usize),
    /// Receptive fields from these images, each row's window starting at `starts[row]`.
    Fields {
        images: &'a [f32],
        starts: &'a [usize],
        g: &'a Window2d,
    },
}

/// Where the windows of output rows `first_row..first_row + starts.len()` (counted through the
/// batch) start in the images, into `starts`.
fn window_starts(g: &Window2d, first_row: usize, starts: &mut [usize]) {
    for (offset, start) in starts.iter_mut().enumerate() {
        let position = first_row + offset;
        let (n, within) = (position / g.positions(), position % g.positions());
        *start = n * g.image_len() + g.window_origin(within / g.out_w, within % g.out_w);
    }
}

/// Runs `work` on the rows `first_row..first_row + rows` of `input` as one task reads them:
/// a matrix's rows or fields read in place as they are, other receptive fields copied into
/// this thread's scratch first.
fn with_task_rows<R>(
    input: Rows,
    (first_row, rows, depth): (usize, usize, usize),
    work: impl FnOnce(TaskRows) -> R,
) -> R {
    match input {
        Rows::Matrix(matrix) => work(TaskRows::Matrix(&matrix[first_row * depth..][..rows * depth], depth)),
        Rows::Fields(images, g) if reads_fields_in_place(g) => {
            let mut starts = [0; ROW_BLOCK];
            let starts = &mut starts[..rows];
            window_starts(g, first_row, starts);
            work(TaskRows::Fields { images, starts, g })
        }
        Rows::Fields(images, g) => with_scratch(rows * depth, |fields| {
            im2col_rows(images, g, first_row, fields);
            work(TaskRows::Matrix(fields, depth))
        }),
    }
}

/// Whether [`packed_product`] splits `rows` into blocks of whole rows (every panel of a block
/// in one task), rather than into blocks of rows by panels: when the row blocks alone give
/// every thread several tasks. Only then may its input be [`Rows::Fields`] that are copied.
fn splits_rows_only(rows: usize) -> bool {
    rows.div_ceil(ROW_BLOCK) >= TASKS_PER_THREAD * rayon::current_num_threads()
}

/// `out (rows × columns) = finish(input (rows × depth) · matrix)`, where `packed` holds the
/// matrix as [`pack_columns`] laid it out.
///
/// Panics if `columns` is not a multiple of 16, if the input is [`Rows::Fields`] that must be
/// copied where `splits_rows_only` is false, or if a slice is shorter than its shape says
/// (bugs in the caller: the graph checks shapes first).
pub(crate) fn packed_product(
    input: Rows,
    packed: &[f32],
    out: &mut [f32],
    dims @ (rows, depth, columns): (usize, usize, usize),
    finish: Finish,
) {
    assert!(computes(columns), "packed_product called for {columns} columns");
    let rows_held = match input {
        Rows::Matrix(matrix) => matrix.len() >= rows * depth,
        Rows::Fields(images, g) => {
            g.batch * g.positions() == rows && g.patch_len() == depth && images.len() >= g.batch * g.image_len()
        }
    };
    assert!(
        rows_held && packed.len() >= depth * columns && out.len() >= rows * columns,
        "packed_product operand too short"
    );
    assert!(
        finish.bias.is_none_or(|b| b.len() >= columns) && finish.residual.is_none_or(|r| r.len() >= rows * columns),
        "packed_product bias or residual too short"
    );
    if rows == 0 {
        return;
    }
    if splits_rows_only(rows) {
        return by_row_blocks(input, packed, &mut out[..rows * columns], dims, finish);
    }
    if let Rows::Fields(_, g) = input {
        assert!(
            reads_fields_in_place(g),
            "packed_product: receptive fields copied for a product split by panels"
        );
    }
    let panels = columns.div_ceil(PANEL_WIDTH);
    // Several tasks per thread, so that the last ones even out: few rows are split further,
    // down to two blocks of six a task. (The split decides only which thread computes an
    // output, never how, so it may follow the thread count.)
    let wanted_tasks = TASKS_PER_THREAD * rayon::current_num_threads();
    let row_blocks = rows
        .div_ceil(ROW_BLOCK)
        .max(wanted_tasks.div_ceil(panels).min(rows.div_ceil(MIN_BLOCK_ROWS)));
    let block_rows = rows.div_ceil(row_blocks);
    let row_blocks = rows.div_ceil(block_rows);
    let out = Disjoint(out.as_mut_ptr());
    (0..row_blocks * panels).into_par_iter().for_each(|task| {
        let (first_row, first_column) = ((task / panels) * block_rows, (task % panels) * PANEL_WIDTH);
        let task_rows = block_rows.min(rows - first_row);
        let width = PANEL_WIDTH.min(columns - first_column);
        with_scratch(task_rows * width, |sums| {
            let panel = &packed[first_column * depth..][..depth * width];
            with_task_rows(input, (first_row, task_rows, depth), |input| {
                product_and_finish(
                    input,
                    (panel, true),
                    (&mut *sums, width),
                    (task_rows, depth, width),
                    (first_column, columns),
                    &{
                        let residual = finish.residual.map(|r| &r[first_row * columns..]);
                        Finish { residual, ..finish }
                    },
                )
            });
            // SAFETY: the task owns rows `first_row..first_row + task_rows` of columns
            // `first_column..first_column + width`: no other task writes them and nothing
            // reads them while the tasks run; `packed_product` checked that `out` holds them.
            for (row, values) in sums.chunks_exact(width).enumerate() {
                unsafe { out.write((first_row + row) * columns + first_column, values) };
            }
        });
    });
}

/// [`packed_product`] as one task per block of whole output rows: the block's input rows are
/// read once (copied first when they are receptive fields) for every panel, and each panel's
/// sums are made in place in the output.
fn by_row_blocks(
    input: Rows,
    packed: &[f32],
    out: &mut [f32],
    (rows, depth, columns): (usize, usize, usize),
    finish: Finish,
) {
    let block_rows = rows.div_ceil(even_blocks(rows, WHOLE_ROWS_BLOCK));
    out.par_chunks_mut(block_rows * columns)
        .enumerate()
        .for_each(|(block, out)| {
            let (first_row, task_rows) = (block * block_rows, out.len() / columns);
            let residual = finish.residual.map(|r| &r[first_row * columns..]);
            let finish = Finish { residual, ..finish };
            with_task_rows(input, (first_row, task_rows, depth), |input| {
                for first_column in (0..columns).step_by(PANEL_WIDTH) {
                    let width = PANEL_WIDTH.min(columns - first_column);
                    let panel = &packed[first_column * depth..][..depth * width];
                    let sums = (&mut out[first_column..], columns);
                    product_and_finish(
                        input,
                        (panel, false),
                        sums,
                        (task_rows, depth, width),
                        (first_column, columns),
                        &finish,
                    );
                }
            })
        });
}

/// One panel's block: `sums (rows × width, rows `stride` apart) = input (rows × depth) ·
/// panel`, then the bias from `first_column` and the residual (rows `columns` apart) added and
/// the activation applied.
fn product_and_finish(
    input: TaskRows,
    panel: (&[f32], bool),
    (sums, stride): (&mut [f32], usize),
    dims @ (rows, depth, width): (usize, usize, usize),
    (first_column, columns): (usize, usize),
    finish: &Finish,
) {
    if depth == 0 {
        // No product: each output is its bias and residual through the activation.
        for row in sums.chunks_mut(stride).take(rows) {
            row[..width].fill(0.0);
        }
    }
    task_product(input, panel, (sums, stride), dims);
    let residual = finish.residual.map(|r| &r[first_column..]);
    let bias = finish.bias.map(|b| &b[first_column..][..width]);
    finish_block(sums, (rows, width, stride, columns), bias, residual, finish.activation);
}

/// Whether [`packed_conv`] reads the input in place: a 1×1 window with stride 1 and no padding
/// reads each pixel as its receptive field.
fn reads_input_in_place(g: &Window2d) -> bool {
    (g.window_h, g.window_w, g.stride_h, g.stride_w, g.pad_top, g.pad_left) == (1, 1, 1, 1, 0, 0)
}

/// Whether [`packed_conv`] stores the receptive fields whole before the product: when they
/// cannot be read in place and it splits the rows by panels (few rows, so the fields are
/// small). Otherwise each block of rows copies its own fields, in the core's cache.
fn stores_fields(g: &Window2d) -> bool {
    !reads_input_in_place(g) && !reads_fields_in_place(g) && !splits_rows_only(g.batch * g.positions())
}

/// The values [`packed_conv`]'s `buffer` holds: the packed kernel first, then the receptive
/// fields where it stores them whole.
pub(crate) fn packed_conv_len(g: &Window2d, filters: usize) -> usize {
    let fields = if stores_fields(g) {
        g.batch * g.positions() * g.patch_len()
    } else {
        0
    };
    g.patch_len() * filters + fields
}

/// `out = finish(conv(x, kernel))` for images `x` (`N×H×W×C`) and a kernel (`KH×KW×C×F`,
/// `filters` = F), through [`packed_product`]. `buffer` ([`packed_conv_len`] values) keeps the
/// packed kernel between calls: with `kernel_packed` the caller says it still holds this
/// kernel's, packed by an earlier call.
///
/// Panics if `filters` is not a multiple of 16 or a slice is shorter than its shape says.
pub(crate) fn packed_conv(
    x: &[f32],
    g: &Window2d,
    (kernel, filters): (&[f32], usize),
    buffer: &mut [f32],
    kernel_packed: bool,
    out: &mut [f32],
    finish: Finish,
) {
    let (rows, patch) = (g.batch * g.positions(), g.patch_len());
    let (packed, fields) = buffer[..packed_conv_len(g, filters)].split_at_mut(patch * filters);
    if !kernel_packed {
        pack_columns(kernel, (patch, filters), packed);
    }
    let input = if reads_input_in_place(g) {
        Rows::Matrix(x)
    } else if stores_fields(g) {
        im2col(x, g, fields);
        Rows::Matrix(fields)
    } else {
        Rows::Fields(x, g)
    };
    packed_product(input, packed, out, (rows, patch, filters), finish);
}

/// The output's start, shared by the tasks, each of which writes its own values only.
#[derive(Clone, Copy)]
struct Disjoint(*mut f32);

// SAFETY: the tasks write disjoint elements (see `packed_product`).
unsafe impl Send for Disjoint {}
unsafe impl Sync for Disjoint {}

impl Disjoint {
    /// Copies `values` to the output from element `at`.
    ///
    /// # Safety
    /// `at..at + values.len()` lies inside the output, and no other thread touches it now.
    unsafe fn write(self, at: usize, values: &[f32]) {
        unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), self.0.add(at), values.len()) };
    }
}

/// `sums (rows × width) = rows · panel` for one panel that [`pack_columns`] laid out
/// (`panel` holding `depth × width` values) and rows of `depth` values `row_stride` apart,
/// summed as [`packed_product`] sums (its depth blocks, in order), on this thread's widest
/// vector path: for callers that make their own tasks.
pub(crate) fn panel_product(
    (rows, row_stride): (&[f32], usize),
    panel: &[f32],
    sums: &mut [f32],
    dims @ (_, _, width): (usize, usize, usize),
) {
    task_product(TaskRows::Matrix(rows, row_stride), (panel, true), (sums, width), dims);
}

dispatch_simd!(task_product<> => task_body(
    input: TaskRows, panel: (&[f32], bool), sums: (&mut [f32], usize), dims: (usize, usize, usize)
));

/// `sums (rows × width, rows `stride` apart) = input (rows × depth) · panel (depth × width)`,
/// depth block by depth block. Fields read in place give the same bits as the same fields
/// copied into a matrix: the same values in the same order. When `streamed` (the panel is
/// read once, from memory), each depth block fetches the next one as it goes.
#[inline(always)]
fn task_body<S: Simd>(
    s: S,
    input: TaskRows,
    (panel, streamed): (&[f32], bool),
    (sums, stride): (&mut [f32], usize),
    (rows, depth, width): (usize, usize, usize),
) {
    // Equal blocks: a short last one would cost a pass over the sums for few multiply-adds.
    let step = depth.div_ceil(depth.div_ceil(DEPTH_BLOCK).max(1));
    for first in (0..depth).step_by(step.max(1)) {
        let block = step.min(depth - first);
        // The panel's next depth block (after the last, the next panel's first, which the
        // same thread most often takes next) comes from memory while this one computes.
        let ahead = streamed.then_some(Ahead {
            start: panel.as_ptr().wrapping_add((first + block) * width) as *const u8,
            len: step * width * std::mem::size_of::<f32>(),
        });
        let panel = (&panel[first * width..], width);
        let sums = (&mut *sums, stride);
        let store = Store::Sums { accumulate: first > 0 };
        match input {
            TaskRows::Matrix(matrix, row_stride) => {
                let input = Strided {
                    data: &matrix[first..],
                    row_stride,
                    col_stride: 1,
                };
                small_gemm_ahead(s, (rows, block, width), input, panel, sums, store, ahead);
            }
            TaskRows::Fields { images, starts, g } => {
                let input = Fields {
                    images,
                    starts,
                    first,
                    run: g.window_w * g.channels,
                    run_stride: g.dilation_h * g.width * g.channels,
                };
                small_gemm_ahead(s, (rows, block, width), input, panel, sums, store, ahead);
            }
        }
    }
}

dispatch_simd!(finish_block<> => finish_body(
    sums: &mut [f32], sizes: (usize, usize, usize, usize), bias: Option<&[f32]>, residual: Option<&[f32]>,
    activation: super::activation::Activation
));

/// [`finish_rows`] on this thread's widest vector path.
#[inline(always)]
fn finish_body<S: Simd>(
    s: S,
    sums: &mut [f32],
    sizes: (usize, usize, usize, usize),
    bias: Option<&[f32]>,
    residual: Option<&[f32]>,
    activation: super::activation::Activation,
) {
    finish_rows(s, sums, sizes, bias, residual, activation);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::OutputActivation;
    use crate::kernels::simd::SimdLevel;

    fn values(len: usize, modulus: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919 % modulus) as f32 - modulus as f32 / 2.0) / modulus as f32)
            .collect()
    }

    /// Each output summed in f64, then finished as the kernel finishes it.
    fn reference(
        input: &[f32],
        matrix: &[f32],
        (rows, depth, columns): (usize, usize, usize),
        finish: Finish,
    ) -> Vec<f32> {
        let mut out = vec![0.0; rows * columns];
        for r in 0..rows {
            for c in 0..columns {
                let sum: f64 = (0..depth)
                    .map(|p| input[r * depth + p] as f64 * matrix[p * columns + c] as f64)
                    .sum();
                let mut v = sum as f32 + finish.bias.map_or(0.0, |b| b[c]);
                v += finish.residual.map_or(0.0, |res| res[r * columns + c]);
                out[r * columns + c] = finish.activation.apply(v);
            }
        }
        out
    }

    fn run(input: &[f32], matrix: &[f32], dims: (usize, usize, usize), finish: Finish) -> Vec<f32> {
        let (rows, depth, columns) = dims;
        let mut packed = vec![f32::NAN; depth * columns];
        pack_columns(matrix, (depth, columns), &mut packed);
        let mut out = vec![f32::NAN; rows * columns];
        packed_product(Rows::Matrix(input), &packed, &mut out, dims, finish);
        out
    }

    #[test]
    fn matches_the_product_then_the_output_pass() {
        // One row; a partial row block and a narrow last panel; several depth blocks with a
        // partial last one; more rows than one task takes; enough row blocks to split by them
        // alone.
        for &(rows, depth, columns) in &[
            (1, 5, 16),
            (49, 300, 80),
            (7, 128, 64),
            (200, 129, 144),
            (3, 0, 32),
            (900, 40, 80),
        ] {
            let (input, matrix) = (values(rows * depth, 13), values(depth * columns, 11));
            let (bias, residual) = (values(columns, 5), values(rows * columns, 17));
            for activation in [OutputActivation::Linear, OutputActivation::Relu { max_value: 6.0 }] {
                let finish = Finish {
                    bias: Some(&bias),
                    residual: Some(&residual),
                    activation,
                };
                let got = run(&input, &matrix, (rows, depth, columns), finish);
                let want = reference(&input, &matrix, (rows, depth, columns), finish);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!((g - w).abs() < 1e-5, "{rows}x{depth}x{columns} at {i}: {g} vs {w}");
                }
            }
        }
    }

    /// AVX-512 and AVX2 on one or two threads give the same bits (500 rows: split by row blocks
    /// alone on one thread, by row blocks and panels on two); the scalar path, which rounds
    /// each product before its add, agrees within rounding and gives the same bits on one
    /// thread as on two.
    #[test]
    fn gives_the_same_bits_on_one_and_two_threads_and_every_vector_width() {
        let dims @ (rows, depth, columns) = (500, 300, 208);
        let (input, matrix, bias) = (
            values(rows * depth, 13),
            values(depth * columns, 11),
            values(columns, 5),
        );
        let finish = Finish {
            bias: Some(&bias),
            residual: None,
            activation: OutputActivation::Relu {
                max_value: f32::INFINITY,
            },
        };
        let bits = |level: SimdLevel, threads: usize| -> Vec<u32> {
            let pool = crate::kernels::simd::limited_pool(threads, level);
            let got = pool.install(|| run(&input, &matrix, dims, finish));
            got.iter().map(|v| v.to_bits()).collect()
        };
        let reference = bits(SimdLevel::Avx512, 2);
        for (level, threads) in [(SimdLevel::Avx512, 1), (SimdLevel::Avx2, 2), (SimdLevel::Avx2, 1)] {
            assert!(bits(level, threads) == reference, "{level:?} on {threads} threads");
        }
        let scalar = bits(SimdLevel::Scalar, 2);
        assert!(bits(SimdLevel::Scalar, 1) == scalar, "scalar on 1 thread");
        for (&x, &y) in scalar.iter().zip(&reference) {
            let (x, y) = (f32::from_bits(x), f32::from_bits(y));
            assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "scalar {x} against {y}");
        }
    }

    /// A convolution's receptive fields copied block by block (padding and dilation), or read
    /// in place (neither), give the bits of the whole im2col matrix multiplied in place, with a
    /// residual.
    #[test]
    fn receptive_fields_by_blocks_give_the_bits_of_the_whole_matrix() {
        let copied = Window2d {
            batch: 2,
            height: 30,
            width: 29,
            channels: 3,
            window_h: 3,
            window_w: 4,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 2,
            pad_top: 1,
            pad_left: 2,
            out_h: 30,
            out_w: 25,
        };
        let in_place = Window2d {
            height: 32,
            width: 29,
            stride_h: 2,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
            out_h: 15,
            out_w: 26,
            ..copied
        };
        for g in [copied, in_place] {
            assert_eq!(reads_fields_in_place(&g), g.pad_top == 0, "{g:?}");
            let (rows, depth, columns) = (g.batch * g.positions(), g.patch_len(), 48);
            let images = values(g.batch * g.image_len(), 13);
            let (matrix, bias, residual) = (
                values(depth * columns, 11),
                values(columns, 5),
                values(rows * columns, 17),
            );
            let finish = Finish {
                bias: Some(&bias),
                residual: Some(&residual),
                activation: OutputActivation::Relu { max_value: 6.0 },
            };
            let mut fields = vec![0.0; rows * depth];
            im2col(&images, &g, &mut fields);
            let whole = run(&fields, &matrix, (rows, depth, columns), finish);
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
            pool.install(|| {
                assert!(splits_rows_only(rows), "{rows} rows make too few blocks");
                let mut packed = vec![0.0; depth * columns];
                pack_columns(&matrix, (depth, columns), &mut packed);
                let mut out = vec![f32::NAN; rows * columns];
                packed_product(
                    Rows::Fields(&images, &g),
                    &packed,
                    &mut out,
                    (rows, depth, columns),
                    finish,
                );
                assert!(out.iter().zip(&whole).all(|(a, b)| a.to_bits() == b.to_bits()));
            });
        }
    }

    /// Reproduces the timings in docs/PERFORMANCE.md: batch-1 products of MobileNetV2's large
    /// 1×1 convolutions and ResNet-18's strided ones, here (kernel packed beforehand) and
    /// through gemm-f32 followed by the output pass, on two threads.
    #[test]
    #[ignore]
    fn speed_of_batch_1_shapes() {
        use crate::kernels::{Transpose, bias_activation, matmul};
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        pool.install(|| {
            let shapes = [
                (196, 64, 384),
                (196, 384, 64),
                (196, 96, 576),
                (196, 576, 96),
                (49, 576, 160),
                (49, 160, 960),
                (49, 960, 160),
                (49, 960, 320),
                (49, 320, 1280),
                (3136, 576, 64),
                (784, 576, 128),
                (196, 1152, 256),
                (49, 2304, 512),
                (49, 4608, 512),
                (12544, 147, 64),
                (401408, 147, 64),
                (25088, 576, 128),
                (25088, 64, 128),
                (6272, 1152, 256),
                (1568, 2304, 512),
            ];
            let best_of = |macs: usize, mut run: Box<dyn FnMut() + '_>| {
                (0..(2_000_000_000 / macs.max(1)).clamp(3, 100))
                    .map(|_| {
                        let start = std::time::Instant::now();
                        run();
                        start.elapsed().as_secs_f64()
                    })
                    .fold(f64::MAX, f64::min)
            };
            let activation = OutputActivation::Relu { max_value: 6.0 };
            for dims @ (rows, depth, columns) in shapes {
                let (input, matrix, bias) = (values(rows * depth, 13), values(depth * columns, 11), values(columns, 5));
                let mut packed = vec![0.0; depth * columns];
                pack_columns(&matrix, (depth, columns), &mut packed);
                let mut out = vec![0.0; rows * columns];
                let macs = rows * depth * columns;
                let here = best_of(macs, Box::new(|| {
                    let finish = Finish {
                        bias: Some(&bias),
                        residual: None,
                        activation,
                    };
                    packed_product(Rows::Matrix(&input), &packed, &mut out, dims, finish)
                }));
                let gemm = best_of(macs, Box::new(|| {
                    let no = Transpose::No;
                    matmul(&input, no, &matrix, no, &mut out, rows, depth, columns, false);
                    bias_activation(&mut out, columns, Some(&bias), activation);
                }));
                let gflops = |seconds: f64| 2.0 * (rows * depth * columns) as f64 / seconds / 1e9;
                println!(
                    "{rows:>5}×{depth:>5}×{columns:>5}: {:7.1} µs here ({:4.0} GFLOP/s), {:7.1} µs gemm ({:4.0}), {:.2}×",
                    here * 1e6,
                    gflops(here),
                    gemm * 1e6,
                    gflops(gemm),
                    gemm / here
                );
            }
        });
    }

    /// Reproduces the timings in docs/PERFORMANCE.md: convolutions through `packed_conv` (the
    /// kernel packed beforehand) and through im2col, gemm-f32 and the output pass, 2 threads.
    #[test]
    #[ignore]
    fn speed_of_convolutions() {
        use crate::kernels::{Transpose, bias_activation, matmul};
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        pool.install(|| {
            // (batch, size, channels, window, stride, filters, padded): padded windows have
            // their fields copied, the others read in place (an imported model's explicit
            // padding comes as a layer before the convolution: 230 = 224 + 2·3).
            let shapes = [
                (1, 224, 3, 7, 2, 64, true),
                (1, 230, 3, 7, 2, 64, false),
                (4, 230, 3, 7, 2, 64, false),
                (8, 56, 64, 3, 2, 128, true),
                (8, 58, 64, 3, 2, 128, false),
                (1, 58, 64, 3, 2, 128, false),
                (1, 113, 32, 3, 2, 64, false),
                (32, 28, 1, 3, 1, 32, true),
            ];
            for (batch, size, channels, window, stride, filters, padded) in shapes {
                let pad = if padded { (window - 1) / 2 } else { 0 };
                let out_size = (size + 2 * pad - window) / stride + 1;
                let g = Window2d {
                    batch,
                    height: size,
                    width: size,
                    channels,
                    window_h: window,
                    window_w: window,
                    stride_h: stride,
                    stride_w: stride,
                    dilation_h: 1,
                    dilation_w: 1,
                    pad_top: pad,
                    pad_left: pad,
                    out_h: out_size,
                    out_w: out_size,
                };
                let (rows, depth) = (g.batch * g.positions(), g.patch_len());
                let images = values(batch * g.image_len(), 13);
                let (kernel, bias) = (values(depth * filters, 11), values(filters, 5));
                let finish = Finish {
                    bias: Some(&bias),
                    residual: None,
                    activation: OutputActivation::Relu {
                        max_value: f32::INFINITY,
                    },
                };
                let mut buffer = vec![0.0; packed_conv_len(&g, filters)];
                let mut out = vec![0.0; rows * filters];
                packed_conv(&images, &g, (&kernel, filters), &mut buffer, false, &mut out, finish);
                let runs = (5_000_000_000 / (rows * depth * filters)).clamp(3, 300);
                let best = |run: &mut dyn FnMut()| {
                    (0..runs)
                        .map(|_| {
                            let start = std::time::Instant::now();
                            run();
                            start.elapsed().as_secs_f64()
                        })
                        .fold(f64::MAX, f64::min)
                };
                let here = best(&mut || packed_conv(&images, &g, (&kernel, filters), &mut buffer, true, &mut out, finish));
                let mut fields = vec![0.0; rows * depth];
                let gemm = best(&mut || {
                    im2col(&images, &g, &mut fields);
                    let no = Transpose::No;
                    matmul(&fields, no, &kernel, no, &mut out, rows, depth, filters, false);
                    bias_activation(&mut out, filters, Some(&bias), finish.activation);
                });
                println!(
                    "{batch}×{size}²×{channels} {window}×{window}/{stride} → {filters} ({rows} rows, depth {depth}, {}): {:8.1} µs here, {:8.1} µs im2col + gemm ({:.2}×)",
                    if reads_fields_in_place(&g) {
                        "fields read in place"
                    } else if stores_fields(&g) {
                        "fields stored"
                    } else {
                        "fields by blocks"
                    },
                    here * 1e6,
                    gemm * 1e6,
                    gemm / here
                );
            }
        });
    }
}
