//! TFRecord framing, the container of TensorBoard's event files: each record is its length
//! (u64, little-endian), the masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C
//! of the data. The checksums let a reader stop at a record a killed writer left half-written.

/// TFRecord's masked CRC-32C: a checksum of data that itself holds checksums (a record inside a
/// record) is not the checksum's fixed point.
pub(crate) fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// `data` framed as one record.
pub(crate) fn frame(data: &[u8]) -> Vec<u8> {
    let length = (data.len() as u64).to_le_bytes();
    let mut record = Vec::with_capacity(data.len() + 16);
    record.extend_from_slice(&length);
    record.extend_from_slice(&masked_crc(&length).to_le_bytes());
    record.extend_from_slice(data);
    record.extend_from_slice(&masked_crc(data).to_le_bytes());
    record
}

/// The data of the whole records at the start of `bytes`, in order, as TensorBoard reads a file
/// that may still be growing: reading stops at the first record that is cut short or whose
/// checksums do not match.
pub(crate) fn unframe(mut bytes: &[u8]) -> Vec<&[u8]> {
    let mut records = Vec::new();
    while bytes.len() >= 12 {
        let (header, rest) = bytes.split_at(8);
        let header_crc = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
        if masked_crc(header) != header_crc {
            break;
        }
        let length = u64::from_le_bytes(header.try_into().expect("8 bytes"));
        let rest = &rest[4..];
        let Some(length) = usize::try_from(length)
            .ok()
            .filter(|&l| l.checked_add(4).is_some_and(|n| n <= rest.len()))
        else {
            break;
        };
        let (data, rest) = rest.split_at(length);
        let data_crc = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
        if masked_crc(data) != data_crc {
            break;
        }
        records.push(data);
        bytes = &rest[4..];
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masked_crc_matches_tensorflows() {
        // CRC-32C of "123456789" is 0xe3069283 (RFC 3720's check value); masked by hand
        // (((crc >> 15) | (crc << 17)) + 0xa282ead8, worked out in Python) it is 0xc78ab0e5.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xc78a_b0e5);
        // An empty record as TensorFlow writes it: length 0, then its checksums.
        assert_eq!(
            frame(b""),
            [0, 0, 0, 0, 0, 0, 0, 0, 0x29, 0x03, 0x98, 0x07, 0xd8, 0xea, 0x82, 0xa2]
        );
    }

    #[test]
    fn reading_stops_at_the_first_cut_or_damaged_record() {
        let mut file = frame(b"first");
        file.extend(frame(b"second"));
        let whole = file.len();
        file.extend(frame(b"third"));
        assert_eq!(unframe(&file), [&b"first"[..], b"second", b"third"]);
        for cut in whole..file.len() {
            assert_eq!(unframe(&file[..cut]), [&b"first"[..], b"second"], "cut at {cut}");
        }
        let mut damaged = file.clone();
        damaged[whole + 12] ^= 1;
        assert_eq!(unframe(&damaged), [&b"first"[..], b"second"]);
    }
}
