//! PNG and JPEG files as 8-bit pixels, and PNG encoding for charts and TensorBoard images.
//!
//! The decoders are the ones the `image` crate itself uses (`png`, `zune-jpeg`), called
//! directly: the model inputs need only these two formats in grey or RGB, and `image` with its
//! colour management took an eighth of a clean release build's CPU time (docs/PERFORMANCE.md).
//! A file's size is checked against the memory budget from its header, before any pixel is
//! allocated.

use crate::error::{Error, Result};
use crate::limits;
use std::io::Cursor;
use std::path::Path;

/// Decoded pixels, rows top to bottom, `channels` values per pixel (1 grey or 3 RGB).
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Values per pixel: 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// `height × width × channels` values.
    pub pixels: Vec<u8>,
}

/// Reads a PNG or JPEG file (found by its content, not its name) as `channels` (1 or 3)
/// values per pixel. Colour becomes grey with Rec. 709's weights, as TensorFlow's PNG decoder
/// and the `image` crate convert; grey becomes RGB by repeating it; alpha is dropped.
pub fn read_picture(path: impl AsRef<Path>, channels: usize) -> Result<Picture> {
    let path = path.as_ref();
    if channels != 1 && channels != 3 {
        return Err(Error::invalid(
            "channels",
            channels,
            "images have 1 (grey) or 3 (RGB) channels",
        ));
    }
    let bytes = crate::fs::read_whole(path)?;
    let unreadable = |reason: String| Error::file(path, format!("not a readable PNG or JPEG image ({reason})"));
    let (width, height, source_channels, pixels) = if bytes.starts_with(b"\x89PNG") {
        decode_png(&bytes, path)?
    } else if bytes.starts_with(&[0xFF, 0xD8]) {
        decode_jpeg(&bytes, path)?
    } else {
        return Err(unreadable("neither a PNG nor a JPEG signature".into()));
    };
    if width == 0 || height == 0 {
        return Err(unreadable(format!("{width}×{height} pixels")));
    }
    Ok(Picture {
        width,
        height,
        channels,
        pixels: convert_channels(&pixels, source_channels, channels),
    })
}

/// Checks `width × height × channels` bytes against the memory budget.
fn check_pixels(path: &Path, width: usize, height: usize, channels: usize) -> Result<usize> {
    let bytes = width.checked_mul(height).and_then(|n| n.checked_mul(channels));
    limits::check_memory(
        || format!("the {width}×{height} image {}", path.display()),
        bytes.and_then(|n| u64::try_from(n).ok()),
    )?;
    Ok(bytes.unwrap_or(usize::MAX))
}

/// Decodes a PNG of any colour type and depth to 8 bits: `(width, height, channels, pixels)`
/// with channels 1 (grey), 2 (grey, alpha), 3 (RGB) or 4 (RGBA).
fn decode_png(bytes: &[u8], path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    let unreadable = |e: png::DecodingError| Error::file(path, format!("not a readable PNG image ({e})"));
    let budget = usize::try_from(limits::memory_budget()?).unwrap_or(usize::MAX);
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: budget });
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(unreadable)?;
    let (width, height) = (reader.info().width as usize, reader.info().height as usize);
    check_pixels(path, width, height, 4)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::file(path, format!("a {width}×{height} PNG is too large to decode")))?;
    let mut pixels = vec![0; size];
    let frame = reader.next_frame(&mut pixels).map_err(unreadable)?;
    let channels = frame.color_type.samples();
    pixels.truncate(width * height * channels);
    Ok((width, height, channels, pixels))
}

/// Decodes a baseline or progressive JPEG to RGB (CMYK and YCCK converted by the decoder).
fn decode_jpeg(bytes: &[u8], path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    use zune_jpeg::zune_core::{bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions};
    let unreadable =
        |e: zune_jpeg::errors::DecodeErrors| Error::file(path, format!("not a readable JPEG image ({e:?})"));
    let options = DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX))
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(unreadable)?;
    let (width, height) = decoder
        .dimensions()
        .ok_or_else(|| Error::file(path, "a JPEG without image dimensions"))?;
    check_pixels(path, width, height, 3)?;
    let pixels = decoder.decode().map_err(unreadable)?;
    if pixels.len() != width * height * 3 {
        return Err(Error::file(
            path,
            format!("a {width}×{height} JPEG decoded to {} values", pixels.len()),
        ));
    }
    Ok((width, height, 3, pixels))
}

/// Pixels of `from` channels (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA) as `to` (1 or 3).
fn convert_channels(pixels: &[u8], from: usize, to: usize) -> Vec<u8> {
    let color = from >= 3;
    match (color, to) {
        (false, 1) => pixels.chunks_exact(from).map(|p| p[0]).collect(),
        (false, _) => pixels.chunks_exact(from).flat_map(|p| [p[0]; 3]).collect(),
        (true, 1) => pixels.chunks_exact(from).map(|p| luma(p[0], p[1], p[2])).collect(),
        (true, _) => pixels.chunks_exact(from).flat_map(|p| [p[0], p[1], p[2]]).collect(),
    }
}

/// Rec. 709 luma, rounded.
fn luma(red: u8, green: u8, blue: u8) -> u8 {
    let value = 0.2126 * f32::from(red) + 0.7152 * f32::from(green) + 0.0722 * f32::from(blue);
    value.round().clamp(0.0, 255.0) as u8
}

/// How hard [`encode_png`] compresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    /// For images written every epoch (TensorBoard's kernels): speed over size.
    Fast,
    /// For files a person keeps (charts).
    Balanced,
}

/// Encodes 8-bit grey (`channels` 1) or RGB (3) pixels as a PNG file's bytes.
pub(crate) fn encode_png(
    pixels: &[u8],
    width: u32,
    height: u32,
    channels: usize,
    compression: Compression,
) -> std::result::Result<Vec<u8>, String> {
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, width, height);
    encoder.set_color(if channels == 1 {
        png::ColorType::Grayscale
    } else {
        png::ColorType::Rgb
    });
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(match compression {
        Compression::Fast => png::Compression::Fast,
        Compression::Balanced => png::Compression::Balanced,
    });
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(pixels).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-picture-{}", crate::fs::test_run_id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn png_round_trips_grey_and_rgb_and_converts_between_them() {
        let rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30];
        let path = scratch("rgb.png");
        std::fs::write(&path, encode_png(&rgb, 2, 2, 3, Compression::Balanced).unwrap()).unwrap();
        let read = read_picture(&path, 3).unwrap();
        assert_eq!((read.width, read.height, read.channels), (2, 2, 3));
        assert_eq!(read.pixels, rgb);
        // Rec. 709: 0.2126·255 = 54.2, 0.7152·255 = 182.4, 0.0722·255 = 18.4, 18.7.
        assert_eq!(read_picture(&path, 1).unwrap().pixels, [54, 182, 18, 19]);
        let path = scratch("grey.png");
        std::fs::write(&path, encode_png(&[0, 100, 200], 3, 1, 1, Compression::Fast).unwrap()).unwrap();
        assert_eq!(read_picture(&path, 1).unwrap().pixels, [0, 100, 200]);
        assert_eq!(
            read_picture(&path, 3).unwrap().pixels,
            [0, 0, 0, 100, 100, 100, 200, 200, 200]
        );
    }

    #[test]
    fn decodes_a_jpeg_written_by_another_encoder() {
        // The `image` crate's encoder (a dev-dependency), a flat colour survives JPEG nearly exactly.
        let path = scratch("flat.jpg");
        image::RgbImage::from_pixel(16, 8, image::Rgb([200, 100, 50]))
            .save(&path)
            .unwrap();
        let read = read_picture(&path, 3).unwrap();
        assert_eq!((read.width, read.height, read.channels), (16, 8, 3));
        for pixel in read.pixels.chunks(3) {
            for (value, expected) in pixel.iter().zip([200, 100, 50]) {
                assert!((i32::from(*value) - expected).abs() <= 2, "{pixel:?}");
            }
        }
    }

    #[test]
    fn bad_files_are_errors_naming_the_file() {
        let path = scratch("text.png");
        std::fs::write(&path, b"not an image").unwrap();
        let error = read_picture(&path, 3).unwrap_err().to_string();
        assert!(error.contains("text.png") && error.contains("PNG or JPEG"), "{error}");
        let png = encode_png(&[1; 12], 2, 2, 3, Compression::Fast).unwrap();
        let path = scratch("truncated.png");
        std::fs::write(&path, &png[..png.len() - 20]).unwrap();
        assert!(matches!(read_picture(&path, 3), Err(Error::File { .. })));
        assert!(read_picture(&path, 2).is_err());
    }

    #[test]
    fn a_huge_declared_size_is_refused_before_allocating() {
        // A valid header declaring 2³¹−1 × 2³¹−1 pixels (the most PNG allows), and no data.
        let mut png = encode_png(&[0; 3], 1, 1, 3, Compression::Fast).unwrap();
        png[16..20].copy_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
        png[20..24].copy_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        let path = scratch("huge.png");
        std::fs::write(&path, &png).unwrap();
        let error = read_picture(&path, 3).unwrap_err();
        assert!(error.to_string().contains("huge.png"), "{error}");
    }

    /// The CRC-32 of PNG chunks (ISO 3309), for editing a header in a test.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
