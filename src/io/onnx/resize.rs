//! `Resize` of an image by whole factors (PyTorch's `nn.Upsample` and `F.interpolate` with a
//! `scale_factor` or a `size` that is a multiple) as Keras's `UpSampling2D`: "nearest" (each
//! pixel a block of copies) or "bilinear" (half-pixel centres, PyTorch's `align_corners=False`).

use super::convert::{Converter, Node, Tensor};
use super::tensors::{BATCH, Values};
use serde_json::json;

impl Converter {
    /// `Resize` of a channels-last image by whole factors ≥ 1 along height and width.
    pub(super) fn resize(&mut self, node: &Node) -> Result<Tensor, String> {
        let x = self.image(node, 0)?;
        let (height, width) = (x.shape[1], x.shape[2]);
        let factors = self.resize_factors(node, height, width)?;
        let mode = node.string("mode").unwrap_or_else(|| "nearest".into());
        let coordinates = node
            .string("coordinate_transformation_mode")
            .unwrap_or_else(|| "half_pixel".into());
        let rounding = node
            .string("nearest_mode")
            .unwrap_or_else(|| "round_prefer_floor".into());
        let half_pixel = matches!(coordinates.as_str(), "half_pixel" | "pytorch_half_pixel");
        // With whole factors, half-pixel centres never fall halfway between two pixels, so any
        // rounding picks pixel ⌊i / factor⌋, as `asymmetric` with `floor` does.
        let interpolation = match mode.as_str() {
            "nearest" if half_pixel || coordinates == "asymmetric" && rounding == "floor" => "nearest",
            "linear" if half_pixel => "bilinear",
            _ => {
                return Err(format!(
                    "mode {mode} with coordinate_transformation_mode {coordinates} (nearest_mode {rounding}) is not \
                     supported: strata resizes as \"nearest\" (half_pixel, or asymmetric with floor) and \"linear\" \
                     (half_pixel, PyTorch's align_corners=False)"
                ));
            }
        };
        if node
            .ints("axes")
            .is_some_and(|axes| !matches!(axes.as_slice(), [2, 3] | [-2, -1]))
        {
            return Err("resizes other axes than the height and width".into());
        }
        let config = json!({ "size": factors, "interpolation": interpolation });
        let non_negative = x.non_negative;
        let mut y = self.add_same_layout(node.proto, "UpSampling2D", config, &x, vec![])?;
        y.non_negative = non_negative;
        Ok(Tensor::Computed(y))
    }

    /// The whole factors `[height, width]` from the `scales` input (`[1, 1, sh, sw]`) or the
    /// `sizes` input (`[N, C, H·sh, W·sw]`, the batch possibly computed).
    fn resize_factors(&self, node: &Node, height: usize, width: usize) -> Result<[usize; 2], String> {
        let whole = |v: f64| (v >= 1.0 && v.fract() == 0.0 && v <= 4096.0).then_some(v as usize);
        let bad = |what: String| {
            format!("{what}: strata resizes height and width by whole factors of at least 1 (upsampling)")
        };
        // Opset 10's Resize has no `roi`: its scales are input 1.
        let scales_input = if node.opset < 11 { 1 } else { 2 };
        if let Some(scales) = self
            .optional_constant(node, scales_input, "scales")?
            .filter(|c| c.len() > 0)
        {
            let s: Vec<f64> = scales.floats().iter().map(|&v| v as f64).collect();
            return match s.as_slice() {
                [n, c, sh, sw] if *n == 1.0 && *c == 1.0 => match (whole(*sh), whole(*sw)) {
                    (Some(a), Some(b)) => Ok([a, b]),
                    _ => Err(bad(format!("scales {s:?}"))),
                },
                [sh, sw] if node.ints("axes").is_some() => match (whole(*sh), whole(*sw)) {
                    (Some(a), Some(b)) => Ok([a, b]),
                    _ => Err(bad(format!("scales {s:?}"))),
                },
                _ => Err(bad(format!("scales {s:?}"))),
            };
        }
        let sizes = self.constant(node, 3, "sizes")?;
        let Values::Int(sizes) = &sizes.values else {
            return Err("its sizes must be an integer tensor".into());
        };
        let (h, w) = match sizes.as_slice() {
            [n, _, h, w] if *n == BATCH || *n > 0 => (*h, *w),
            [h, w] if node.ints("axes").is_some() => (*h, *w),
            other => return Err(bad(format!("sizes {other:?}"))),
        };
        let factor = |to: i64, from: usize| {
            usize::try_from(to)
                .ok()
                .filter(|&t| from > 0 && t % from == 0)
                .and_then(|t| whole((t / from) as f64))
        };
        match (factor(h, height), factor(w, width)) {
            (Some(a), Some(b)) => Ok([a, b]),
            _ => Err(bad(format!("sizes {h} × {w} from {height} × {width}"))),
        }
    }
}
