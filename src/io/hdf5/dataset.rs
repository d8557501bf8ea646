//! Reading a dataset: its dataspace (shape), datatype (float32 or float64, or the integers of
//! a counter such as Keras's `Normalization` `count`) and layout (contiguous or compact) messages,
//! each checked against the file before its values are copied out.

use super::{Cursor, H5Result, Hdf5File, MAX_RANK, MSG_DATASPACE, MSG_DATATYPE, MSG_FILTERS, MSG_LAYOUT, Message};

/// A dataset's shape and values.
#[derive(Debug)]
pub(crate) struct Dataset {
    /// Dimensions, outermost first (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

impl<'a> Hdf5File<'a> {
    /// Reads the float32 (or float64 or integer, converted) dataset whose object header is at
    /// `address`.
    pub fn read_f32(&self, address: u64) -> H5Result<Dataset> {
        let messages = self.messages(address)?;
        let find = |kind: u16, what: &str| -> H5Result<&Message<'a>> {
            let message = messages
                .iter()
                .find(|m| m.kind == kind)
                .ok_or_else(|| format!("the object at {address} is not a dataset (no {what})"))?;
            if message.flags & 0x02 != 0 {
                return Err(format!(
                    "the dataset at {address} uses a shared {what}, which strata does not read"
                ));
            }
            Ok(message)
        };
        if messages.iter().any(|m| m.kind == MSG_FILTERS) {
            return Err(format!(
                "the dataset at {address} is compressed or filtered; strata reads unfiltered datasets"
            ));
        }
        let shape = self.dataspace(find(MSG_DATASPACE, "dataspace")?.body)?;
        let element = element_type(find(MSG_DATATYPE, "datatype")?.body)?;
        let width = element.width();
        let count = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|n| n.checked_mul(width).is_some())
            .ok_or("the dataset's shape overflows")?;
        let raw = self.layout(find(MSG_LAYOUT, "layout")?.body, count * width)?;
        let values = raw.chunks_exact(width).map(|b| element.value(b)).collect();
        Ok(Dataset { shape, values })
    }

    /// A dataspace message (versions 1 and 2): the dimensions.
    pub(super) fn dataspace(&self, body: &[u8]) -> H5Result<Vec<usize>> {
        let mut c = Cursor { bytes: body, pos: 0 };
        let version = c.u8()?;
        let rank = c.u8()? as usize;
        c.u8()?; // flags: whether maximum dimensions follow, which reading ignores
        match version {
            1 => drop(c.take(5)?), // reserved
            2 => {
                if c.u8()? == 2 {
                    return Err("the dataset has a null dataspace (no values)".into());
                }
            }
            _ => return Err(format!("dataspace message version {version}")),
        }
        if rank > MAX_RANK {
            return Err(format!("a dataspace of rank {rank} (HDF5 allows {MAX_RANK})"));
        }
        (0..rank)
            .map(|_| {
                let d = self.length(&mut c)?;
                usize::try_from(d).map_err(|_| format!("dimension {d} is too large"))
            })
            .collect()
    }

    /// The raw bytes of a version 3 layout message's data, which must be `size` bytes.
    fn layout(&self, body: &'a [u8], size: usize) -> H5Result<&'a [u8]> {
        let mut c = Cursor { bytes: body, pos: 0 };
        let version = c.u8()?;
        if version != 3 {
            return Err(format!("data layout message version {version}; strata reads version 3"));
        }
        let (stored, mut data) = match c.u8()? {
            // Compact: the values are inside the message itself.
            0 => (u64::from(c.u16()?), c),
            1 => {
                let address = self.offset(&mut c)?;
                let stored = self.length(&mut c)?;
                if size == 0 && stored == 0 {
                    return Ok(&[]);
                }
                (stored, self.at(address)?)
            }
            2 => return Err("the dataset is chunked; strata reads contiguous datasets, as Keras writes".into()),
            other => return Err(format!("data layout class {other}")),
        };
        if stored != size as u64 {
            return Err(format!("the dataset stores {stored} bytes, its shape needs {size}"));
        }
        data.take(size)
            .map_err(|_| format!("the dataset's {size} bytes lie outside the file"))
    }
}

/// The element types read: weights are float32 (float64, as a model of Keras's `float64` policy
/// saves them, is rounded to the nearest float32); a layer's counter (Keras's `Normalization`
/// keeps how many samples `adapt` saw) is an integer of 8 to 64 bits, depending on the Keras
/// version, read as the nearest float32.
#[derive(Clone, Copy)]
enum Element {
    F32,
    F64,
    Int { width: usize, signed: bool },
}

impl Element {
    fn width(self) -> usize {
        match self {
            Element::F32 => 4,
            Element::F64 => 8,
            Element::Int { width, .. } => width,
        }
    }

    /// The value of one element's little-endian bytes.
    fn value(self, b: &[u8]) -> f32 {
        match self {
            Element::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Element::F64 => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32,
            Element::Int { width, signed } => {
                // Sign- or zero-extended to 64 bits.
                let fill = if signed && b[width - 1] & 0x80 != 0 { 0xff } else { 0 };
                let mut bytes = [fill; 8];
                bytes[..width].copy_from_slice(&b[..width]);
                match signed {
                    true => i64::from_le_bytes(bytes) as f32,
                    false => u64::from_le_bytes(bytes) as f32,
                }
            }
        }
    }
}

/// Accepts IEEE 754 binary32 and binary64, little-endian (class 1, 4 or 8 bytes, with the
/// standard exponent and mantissa fields), and little-endian integers of 1, 2, 4 or 8 bytes
/// (class 0, every bit used, offset 0).
fn element_type(body: &[u8]) -> H5Result<Element> {
    let mut c = Cursor { bytes: body, pos: 0 };
    let class = c.u8()? & 0x0f;
    let bits = c.take(3)?;
    let size = c.u32()?;
    if class == 0 && matches!(size, 1 | 2 | 4 | 8) {
        if bits[0] & 0x01 != 0 {
            return Err("the dataset holds big-endian integers; strata reads little-endian ones".into());
        }
        if (c.u16()?, c.u16()?) != (0, size as u16 * 8) {
            return Err(format!("the dataset holds {}-bit integers with padding bits", size * 8));
        }
        return Ok(Element::Int {
            width: size as usize,
            signed: bits[0] & 0x08 != 0,
        });
    }
    // In 64 bits: a corrupt size of 2²⁹ bytes or more would overflow a u32 times 8.
    let describe = || match class {
        0 => format!("{}-bit integers", u64::from(size) * 8),
        1 => format!("{}-bit floats", u64::from(size) * 8),
        3 => "strings".to_string(),
        other => format!("values of HDF5 type class {other}"),
    };
    if class != 1 || !matches!(size, 4 | 8) {
        return Err(format!(
            "the dataset holds {}; strata reads float32 and float64 weights",
            describe()
        ));
    }
    if bits[0] & 0x41 != 0 {
        return Err("the dataset holds big-endian floats; strata reads little-endian ones".into());
    }
    let properties = (c.u16()?, c.u16()?, c.u8()?, c.u8()?, c.u8()?, c.u8()?, c.u32()?);
    match (size, properties) {
        (4, (0, 32, 23, 8, 0, 23, 127)) => Ok(Element::F32),
        (8, (0, 64, 52, 11, 0, 52, 1023)) => Ok(Element::F64),
        _ => Err(format!(
            "the dataset holds {}-bit floats that are not IEEE 754",
            size * 8
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datatype message: class and version, bit fields, size, then `properties`.
    fn datatype(class: u8, bits: u8, size: u32, properties: &[u8]) -> Vec<u8> {
        let mut body = vec![0x10 | class, bits, 0, 0];
        body.extend_from_slice(&size.to_le_bytes());
        body.extend_from_slice(properties);
        body
    }

    #[test]
    fn integers_of_every_width_read_as_their_value() {
        // Keras 3.15 keeps `Normalization`'s `count` as an int32, earlier versions as an int64.
        for (size, value) in [(1u32, -5i64), (2, -300), (4, -70_000), (8, 1 << 40)] {
            let bits = (size as u16 * 8).to_le_bytes();
            let element = element_type(&datatype(0, 0x08, size, &[0, 0, bits[0], bits[1]])).unwrap();
            assert_eq!(element.value(&value.to_le_bytes()), value as f32, "{size} bytes");
        }
        let unsigned = element_type(&datatype(0, 0, 1, &[0, 0, 8, 0])).unwrap();
        assert_eq!(unsigned.value(&[0xff]), 255.0);
        let padded = element_type(&datatype(0, 0x08, 4, &[0, 0, 24, 0]));
        assert!(padded.err().unwrap().contains("padding bits"));
    }

    #[test]
    fn float64_is_rounded_and_other_floats_are_refused() {
        let ieee64 = [
            &0u16.to_le_bytes()[..],
            &64u16.to_le_bytes(),
            &[52, 11, 0, 52],
            &1023u32.to_le_bytes(),
        ]
        .concat();
        let element = element_type(&datatype(1, 0x20, 8, &ieee64)).unwrap();
        assert_eq!(element.value(&0.1f64.to_le_bytes()), 0.1f32);
        let half = element_type(&datatype(1, 0x20, 2, &[0, 0, 16, 0, 10, 5, 0, 10, 15, 0, 0, 0]));
        assert!(half.err().unwrap().contains("16-bit floats"));
    }

    #[test]
    fn a_corrupt_element_size_is_described_without_overflow() {
        // 2²⁹ bytes times 8 bits overflows a u32 (wrapping to "0-bit" in a release build).
        for (class, kind) in [(0, "integers"), (1, "floats")] {
            let error = element_type(&datatype(class, 0, 1 << 29, &[0; 12])).err().unwrap();
            assert!(error.contains(&format!("4294967296-bit {kind}")), "{error}");
        }
    }
}
