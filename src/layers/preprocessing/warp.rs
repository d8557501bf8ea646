//! The pixel loop behind the geometric preprocessing layers and `ImageAugmentation`: one image's
//! [`Transform`], an affine inverse map in fixed point, bilinear interpolation, and Keras's fill
//! modes for points outside the image.

use crate::error::{Error, Result};

/// The `fill_mode` names the geometric layers and `ImageAugmentation` accept, as Keras spells them.
pub const FILL_MODES: &[&str] = &["constant", "nearest", "reflect", "wrap"];

/// One image's transform, as `ImageDataGenerator.get_random_transform` draws it. Applied in this
/// order: flips, zoom, rotation about the image centre, shift.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transform {
    /// Degrees, counter-clockwise as the image is displayed (row 0 at the top), as `RandomRotation`.
    pub rotation: f32,
    /// Pixels; positive moves the content down.
    pub height_shift: f32,
    /// Pixels; positive moves the content right.
    pub width_shift: f32,
    /// The output row at offset `d` from the centre reads the source at offset `d * height_zoom`,
    /// as in Keras: above 1 zooms out (the content shrinks), below 1 zooms in.
    pub height_zoom: f32,
    /// [`height_zoom`](Self::height_zoom) along the width.
    pub width_zoom: f32,
    /// Mirror left–right.
    pub horizontal_flip: bool,
    /// Mirror top–bottom.
    pub vertical_flip: bool,
}

impl Transform {
    /// The transform that changes nothing.
    pub const IDENTITY: Transform = Transform {
        rotation: 0.0,
        height_shift: 0.0,
        width_shift: 0.0,
        height_zoom: 1.0,
        width_zoom: 1.0,
        horizontal_flip: false,
        vertical_flip: false,
    };

    /// Whether applying it would change nothing.
    pub fn is_identity(&self) -> bool {
        *self == Transform::IDENTITY
    }
}

impl Default for Transform {
    fn default() -> Self {
        Transform::IDENTITY
    }
}

/// How a source index outside the image is brought back in (or not, for `Constant`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum FillMode {
    Constant,
    Nearest,
    Reflect,
    Wrap,
}

impl FillMode {
    /// The mode Keras calls `name` (case-insensitive).
    pub(crate) fn from_name(name: &str) -> Result<Self> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "constant" => FillMode::Constant,
            "nearest" => FillMode::Nearest,
            "reflect" => FillMode::Reflect,
            "wrap" => FillMode::Wrap,
            _ => return Err(Error::unknown("fill_mode", name, FILL_MODES)),
        })
    }

    /// The in-image index that index `index` of an axis of length `len` reads, or `None` where it
    /// reads the fill value.
    fn source(self, index: i64, len: usize) -> Option<usize> {
        let n = len as i64;
        match self {
            FillMode::Constant => (0..n).contains(&index).then_some(index as usize),
            FillMode::Nearest => Some(index.clamp(0, n - 1) as usize),
            FillMode::Reflect => {
                // Period 2n with the edge pixel repeated (dcba|abcd|dcba), as Keras and SciPy.
                let folded = index.rem_euclid(2 * n);
                Some(if folded < n { folded } else { 2 * n - 1 - folded } as usize)
            }
            FillMode::Wrap => Some(index.rem_euclid(n) as usize),
        }
    }
}

/// The affine map from an output pixel `(x, y)` = (column, row) to the source point it reads,
/// `source_x = xx * x + xy * y + bx` and `source_y = yx * x + yy * y + by`, in fixed point with
/// [`FRACTION_BITS`] fractional bits: the integer part is then a shift (floor included) and the
/// fraction a mask, where floats would need a saturating conversion per pixel. Steps are exact
/// for flips, quarter turns and whole or half-pixel shifts, so those copy or average exactly.
pub(crate) struct InverseMap {
    xx: i64,
    xy: i64,
    yx: i64,
    yy: i64,
    bx: i64,
    by: i64,
}

/// Fractional bits of [`InverseMap`]'s coordinates: steps rounded to 2^-32 pixels drift less than
/// 1e-5 pixels across a row of 40,000 pixels.
const FRACTION_BITS: u32 = 32;

/// How far, in pixels, a source point may lie from the origin, and how long a step may be: their
/// fixed-point forms then stay below 2^62, so the wrapping sums along a row come out exact.
pub(crate) const FAR: f64 = (1u64 << 30) as f64;

impl InverseMap {
    /// Inverts "flip, zoom, rotate about the centre, shift": from an output pixel, undo the
    /// shift, rotate back, then scale by the zoom and flip. `None` when the transform is not
    /// finite or reaches beyond [`FAR`], which the fixed-point coordinates do not hold.
    pub(crate) fn new(transform: &Transform, height: usize, width: usize) -> Option<Self> {
        // Rotations by multiples of 90 degrees land exactly on pixel centres once cos and sin are
        // exact, so they copy pixels instead of blending neighbours 1e-16 away.
        let snap = |v: f64| if (v - v.round()).abs() < 1e-12 { v.round() } else { v };
        let (sin, cos) = (transform.rotation as f64).to_radians().sin_cos();
        let (sin, cos) = (snap(sin), snap(cos));
        let flip = |flipped: bool| if flipped { -1.0 } else { 1.0 };
        let scale_x = flip(transform.horizontal_flip) * transform.width_zoom as f64;
        let scale_y = flip(transform.vertical_flip) * transform.height_zoom as f64;
        // Counter-clockwise on screen (y down) sends the source offset (x, y) to
        // (x cos + y sin, -x sin + y cos); its inverse is [[cos, -sin], [sin, cos]].
        let (xx, xy, yx, yy) = (scale_x * cos, -scale_x * sin, scale_y * sin, scale_y * cos);
        let (centre_x, centre_y) = ((width as f64 - 1.0) / 2.0, (height as f64 - 1.0) / 2.0);
        let (origin_x, origin_y) = (
            centre_x + transform.width_shift as f64,
            centre_y + transform.height_shift as f64,
        );
        let (bx, by) = (
            centre_x - (xx * origin_x + xy * origin_y),
            centre_y - (yx * origin_x + yy * origin_y),
        );
        Self::from_affine([xx, xy, bx, yx, yy, by], height, width)
    }

    /// The map `source_x = xx·x + xy·y + bx`, `source_y = yx·x + yy·y + by` for an output of
    /// `height` × `width` pixels, given as `[xx, xy, bx, yx, yy, by]` (Keras's `affine_transform`
    /// order, less its projective terms). `None` when it is not finite or reaches beyond [`FAR`].
    pub(crate) fn from_affine(coefficients: [f64; 6], height: usize, width: usize) -> Option<Self> {
        let [xx, xy, bx, yx, yy, by] = coefficients;
        // The map is affine, so the corners bound where every pixel reads.
        let (last_x, last_y) = (width.saturating_sub(1) as f64, height.saturating_sub(1) as f64);
        let corners = [(0.0, 0.0), (last_x, 0.0), (0.0, last_y), (last_x, last_y)];
        let reach = corners.map(|(x, y)| [xx * x + xy * y + bx, yx * x + yy * y + by]);
        if !reach
            .as_flattened()
            .iter()
            .chain(&[xx, xy, yx, yy])
            .all(|v| v.abs() <= FAR)
        {
            return None;
        }
        let fixed = |v: f64| (v * (1u64 << FRACTION_BITS) as f64).round() as i64;
        Some(InverseMap {
            xx: fixed(xx),
            xy: fixed(xy),
            yx: fixed(yx),
            yy: fixed(yy),
            bx: fixed(bx),
            by: fixed(by),
        })
    }
}

#[inline]
fn lerp(from: f32, to: f32, weight: f32) -> f32 {
    from + weight * (to - from)
}

/// Writes into `dest` the image `source` of `shape` `[height, width, channels]` seen through
/// `map`, bilinearly interpolated. Each of the four neighbours outside the image reads through the
/// fill mode, so edges blend into the fill.
pub(crate) fn transform_image(
    source: &[f32],
    dest: &mut [f32],
    shape: [usize; 3],
    map: &InverseMap,
    fill: (FillMode, f32),
) {
    resample_image(source, shape, dest, shape[1], map, fill);
}

/// [`transform_image`] into an output image `dest_width` pixels wide (as many rows as `dest`
/// holds), for crops and resizes whose output is not the source's size.
pub(crate) fn resample_image(
    source: &[f32],
    shape: [usize; 3],
    dest: &mut [f32],
    dest_width: usize,
    map: &InverseMap,
    fill: (FillMode, f32),
) {
    // A compile-time channel count unrolls the per-channel loop for the common greyscale and RGB.
    match shape[2] {
        1 => transform_pixels::<1>(source, dest, shape, dest_width, map, fill),
        3 => transform_pixels::<3>(source, dest, shape, dest_width, map, fill),
        _ => transform_pixels::<0>(source, dest, shape, dest_width, map, fill),
    }
}

/// [`transform_image`] for `CHANNELS` channels, or `shape[2]` when `CHANNELS` is 0.
fn transform_pixels<const CHANNELS: usize>(
    source: &[f32],
    dest: &mut [f32],
    [height, width, channels]: [usize; 3],
    dest_width: usize,
    map: &InverseMap,
    (mode, fill_value): (FillMode, f32),
) {
    let channels = if CHANNELS == 0 { channels } else { CHANNELS };
    if dest.is_empty() || dest_width == 0 {
        return;
    }
    // A top-left neighbour below these has its three other neighbours inside the image too.
    let (inner_width, inner_height) = (width.saturating_sub(1) as u64, height.saturating_sub(1) as u64);
    let row_stride = width * channels;
    let fraction = |coordinate: i64| (coordinate as u32) as f32 * (1.0 / (1u64 << FRACTION_BITS) as f32);
    for (y, out_row) in dest.chunks_exact_mut(dest_width * channels).enumerate() {
        let mut source_x = map.bx.wrapping_add(map.xy.wrapping_mul(y as i64));
        let mut source_y = map.by.wrapping_add(map.yy.wrapping_mul(y as i64));
        for out in out_row.chunks_exact_mut(channels) {
            let (x0, y0) = (source_x >> FRACTION_BITS, source_y >> FRACTION_BITS);
            let (weight_x, weight_y) = (fraction(source_x), fraction(source_y));
            source_x = source_x.wrapping_add(map.xx);
            source_y = source_y.wrapping_add(map.yx);
            if (x0 as u64) < inner_width && (y0 as u64) < inner_height {
                let top = (y0 as usize * width + x0 as usize) * channels;
                let upper_pair = &source[top..top + 2 * channels];
                let lower_pair = &source[top + row_stride..top + row_stride + 2 * channels];
                for (ch, value) in out.iter_mut().enumerate() {
                    let upper = lerp(upper_pair[ch], upper_pair[channels + ch], weight_x);
                    let lower = lerp(lower_pair[ch], lower_pair[channels + ch], weight_x);
                    *value = lerp(upper, lower, weight_y);
                }
            } else {
                let columns = [mode.source(x0, width), mode.source(x0 + 1, width)];
                let rows = [mode.source(y0, height), mode.source(y0 + 1, height)];
                let start = |row: Option<usize>, column: Option<usize>| Some((row? * width + column?) * channels);
                let neighbours = [
                    start(rows[0], columns[0]),
                    start(rows[0], columns[1]),
                    start(rows[1], columns[0]),
                    start(rows[1], columns[1]),
                ];
                for (ch, value) in out.iter_mut().enumerate() {
                    let read = |neighbour: Option<usize>| neighbour.map_or(fill_value, |start| source[start + ch]);
                    let upper = lerp(read(neighbours[0]), read(neighbours[1]), weight_x);
                    let lower = lerp(read(neighbours[2]), read(neighbours[3]), weight_x);
                    *value = lerp(upper, lower, weight_y);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_modes_fold_indices_as_keras_documents() {
        // Axis "abcd" (len 4), indices -3..=6.
        let folded = |mode: FillMode| (-3..=6).map(|i| mode.source(i, 4)).collect::<Vec<_>>();
        let some = |v: &[usize]| v.iter().map(|&i| Some(i)).collect::<Vec<_>>();
        assert_eq!(folded(FillMode::Nearest), some(&[0, 0, 0, 0, 1, 2, 3, 3, 3, 3]));
        assert_eq!(folded(FillMode::Reflect), some(&[2, 1, 0, 0, 1, 2, 3, 3, 2, 1]));
        assert_eq!(folded(FillMode::Wrap), some(&[1, 2, 3, 0, 1, 2, 3, 0, 1, 2]));
        let constant = folded(FillMode::Constant);
        assert_eq!(constant[..3], [None, None, None]);
        assert_eq!(constant[3..7], some(&[0, 1, 2, 3])[..]);
        assert_eq!(constant[7..], [None, None, None]);
    }
}
