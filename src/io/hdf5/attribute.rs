//! Reading attributes: the strings that legacy Keras `.h5` files keep beside their groups
//! (`model_config`, `layer_names`, `weight_names`, `keras_version`).
//!
//! What h5py writes by default: attribute messages (versions 1 to 3) in the object header,
//! holding fixed-length strings (`numpy.bytes_`, as h5py 2.x wrote every string) or
//! variable-length strings (Python `str`), whose characters live in a global heap collection
//! elsewhere in the file. An attribute too large for the 64 KB object header is refused by
//! h5py's default file format, which is why Keras splits long lists over `layer_names0`,
//! `layer_names1`, ...; dense attribute storage (`libver="latest"`) is named and refused.
//!
//! The bytes a string list produces are capped at the file's size, so references into the
//! global heap, however many and however repeated, allocate no more than the file holds.

use super::{Cursor, H5Result, Hdf5File, UNDEFINED};
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// The attribute message type and the attribute info message type (dense storage).
const MSG_ATTRIBUTE: u16 = 0x0C;
const MSG_ATTRIBUTE_INFO: u16 = 0x15;

/// One attribute message, split into its parts.
struct Attribute<'a> {
    name: &'a [u8],
    datatype: &'a [u8],
    dataspace: &'a [u8],
    data: &'a [u8],
}

/// How an attribute's elements are stored.
enum StringType {
    /// `width` bytes each, padded with NULs (`space_padded`: with spaces).
    Fixed { width: usize, space_padded: bool },
    /// A reference into a global heap collection: length, collection address, object index.
    Variable,
}

impl<'a> Hdf5File<'a> {
    /// The strings of the attribute `name` of the object at `object`: one for a scalar string,
    /// one per element for an array, none for an empty array of any type (Keras writes
    /// `weight_names` of a layer without weights as an empty float64 array). `None` when the
    /// object has no such attribute.
    pub fn attribute_strings(&self, object: u64, name: &str) -> H5Result<Option<Vec<String>>> {
        let messages = self.messages(object)?;
        for message in messages.iter().filter(|m| m.kind == MSG_ATTRIBUTE) {
            let attribute = split_attribute(message.body)?;
            if trim_nul(attribute.name) == name.as_bytes() {
                return self
                    .strings(&attribute, &mut self.bytes.len())
                    .map(Some)
                    .map_err(|e| format!("attribute '{name}' of the object at {object}: {e}"));
            }
        }
        if let Some(info) = messages.iter().find(|m| m.kind == MSG_ATTRIBUTE_INFO)
            && self.dense_heap(info.body)? != UNDEFINED
        {
            return Err(format!(
                "the object at {object} keeps its attributes in dense storage (libver='latest'); strata reads \
                 attributes in the object header, as h5py writes them by default"
            ));
        }
        Ok(None)
    }

    /// The fractal heap address of an attribute info message (undefined when the object has
    /// no dense attributes).
    fn dense_heap(&self, body: &[u8]) -> H5Result<u64> {
        let mut c = Cursor { bytes: body, pos: 0 };
        c.u8()?; // version
        if c.u8()? & 0x01 != 0 {
            c.u16()?; // maximum creation index
        }
        self.offset(&mut c)
    }

    /// The strings of the attributes `{prefix}0`, `{prefix}1`, ... of `object` up to the first
    /// number missing (Keras's lists split over several attributes), the object header read
    /// once rather than once per part; `None` without `{prefix}0`. All the parts' strings
    /// together are capped at the file's size.
    pub fn numbered_attribute_strings(&self, object: u64, prefix: &str) -> H5Result<Option<Vec<String>>> {
        let mut parts: HashMap<usize, Attribute<'a>> = HashMap::new();
        for message in self.messages(object)?.iter().filter(|m| m.kind == MSG_ATTRIBUTE) {
            let attribute = split_attribute(message.body)?;
            let number = trim_nul(attribute.name)
                .strip_prefix(prefix.as_bytes())
                .and_then(|rest| std::str::from_utf8(rest).ok())
                .and_then(|rest| rest.parse::<usize>().ok().filter(|n| n.to_string() == rest));
            if let Some(number) = number {
                parts.entry(number).or_insert(attribute);
            }
        }
        let mut budget = self.bytes.len();
        let mut strings: Option<Vec<String>> = None;
        for index in 0..parts.len() {
            let Some(attribute) = parts.get(&index) else { break };
            let part = self
                .strings(attribute, &mut budget)
                .map_err(|e| format!("attribute '{prefix}{index}' of the object at {object}: {e}"))?;
            strings.get_or_insert_with(Vec::new).extend(part);
        }
        Ok(strings)
    }

    /// The attribute's elements as strings, their bytes counted against `budget`.
    fn strings(&self, attribute: &Attribute<'a>, budget: &mut usize) -> H5Result<Vec<String>> {
        let count = self
            .dataspace(attribute.dataspace)?
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or("its shape overflows")?;
        if count == 0 {
            return Ok(Vec::new());
        }
        let kind = self.string_type(attribute.datatype)?;
        let width = match kind {
            StringType::Fixed { width, .. } => width,
            StringType::Variable => 4 + self.offset_size + 4,
        };
        // The elements must be in the message: this bounds `count` by the file's size.
        let needed = count.checked_mul(width).filter(|&n| n <= attribute.data.len());
        let needed = needed.ok_or_else(|| {
            format!(
                "{count} elements of {width} bytes do not fit in its {} bytes",
                attribute.data.len()
            )
        })?;
        let mut heaps = HashMap::new();
        let mut strings = Vec::with_capacity(count);
        for element in attribute.data[..needed].chunks_exact(width) {
            let bytes = match kind {
                StringType::Fixed { space_padded, .. } => {
                    let text = trim_nul(element);
                    match space_padded {
                        true => text.trim_ascii_end(),
                        false => text,
                    }
                }
                StringType::Variable => self.heap_string(element, &mut heaps)?,
            };
            *budget = budget
                .checked_sub(bytes.len())
                .ok_or("its strings add up to more bytes than the file holds")?;
            let text = std::str::from_utf8(bytes).map_err(|_| "a string is not UTF-8")?;
            strings.push(text.to_string());
        }
        Ok(strings)
    }

    /// A datatype message describing strings: fixed-length (class 3) or variable-length
    /// strings (class 9, type 1).
    fn string_type(&self, body: &[u8]) -> H5Result<StringType> {
        let mut c = Cursor { bytes: body, pos: 0 };
        let class_and_version = c.u8()?;
        let bits = c.take(3)?;
        let size = c.u32()? as usize;
        match class_and_version & 0x0f {
            3 if size > 0 => Ok(StringType::Fixed {
                width: size,
                space_padded: bits[0] & 0x0f == 2,
            }),
            9 if bits[0] & 0x0f == 1 => Ok(StringType::Variable),
            9 => Err("it holds variable-length sequences, not strings".into()),
            class => Err(format!("it holds values of HDF5 type class {class}, not strings")),
        }
    }

    /// The bytes of a variable-length string element: `length`, then the global heap
    /// collection's address and the object's index in it.
    fn heap_string(&self, element: &[u8], heaps: &mut HashMap<u64, Vec<(u16, &'a [u8])>>) -> H5Result<&'a [u8]> {
        let mut c = Cursor { bytes: element, pos: 0 };
        let length = c.u32()? as usize;
        let collection = self.offset(&mut c)?;
        let index = c.u32()?;
        if length == 0 {
            return Ok(&[]);
        }
        let objects = match heaps.entry(collection) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(new) => new.insert(self.global_heap(collection)?),
        };
        let object = objects
            .iter()
            .find(|(i, _)| u32::from(*i) == index)
            .map(|(_, bytes)| *bytes)
            .ok_or_else(|| format!("no object {index} in the global heap at {collection}"))?;
        object
            .get(..length)
            .ok_or_else(|| format!("a string of {length} bytes is longer than its heap object"))
    }

    /// The objects of the global heap collection ("GCOL") at `address`, by index.
    fn global_heap(&self, address: u64) -> H5Result<Vec<(u16, &'a [u8])>> {
        let mut cur = self.at(address)?;
        if cur.take(4)? != b"GCOL" || cur.u8()? != 1 {
            return Err(format!("no global heap collection at address {address}"));
        }
        cur.take(3)?; // reserved
        let size = self.length(&mut cur)?;
        let header = 8 + self.length_size;
        let size = usize::try_from(size)
            .ok()
            .filter(|&s| s >= header)
            .ok_or_else(|| format!("the global heap at {address} has an impossible size {size}"))?;
        let mut collection = Cursor {
            bytes: self.at(address)?.take(size)?,
            pos: header,
        };
        let mut objects = Vec::new();
        // Each object takes at least 8 + length_size bytes, so the loop ends within the collection.
        while size - collection.pos >= 8 + self.length_size {
            let index = collection.u16()?;
            if index == 0 {
                break; // free space: the rest of the collection
            }
            collection.take(2 + 4)?; // reference count, reserved
            let length = self.length(&mut collection)?;
            let length = usize::try_from(length).map_err(|_| "global heap object too large")?;
            let data = collection
                .take(length)
                .map_err(|_| format!("object {index} of the global heap at {address} runs past it"))?;
            objects.push((index, data));
            // Objects are padded to a multiple of 8 bytes.
            let padding = (8 - length % 8) % 8;
            collection.take(padding.min(size - collection.pos))?;
        }
        Ok(objects)
    }
}

/// Splits an attribute message (versions 1, 2 and 3) into name, datatype, dataspace and data.
fn split_attribute(body: &[u8]) -> H5Result<Attribute<'_>> {
    let mut c = Cursor { bytes: body, pos: 0 };
    let version = c.u8()?;
    let flags = c.u8()?;
    let sizes = [c.u16()? as usize, c.u16()? as usize, c.u16()? as usize];
    // Version 1 pads each part to 8 bytes; versions 2 and 3 do not, and 3 adds the name's encoding.
    let pad = match version {
        1 => 8,
        2 => 1,
        3 => {
            c.u8()?;
            1
        }
        _ => return Err(format!("attribute message version {version}")),
    };
    if version > 1 && flags & 0x03 != 0 {
        return Err("an attribute with a shared datatype or dataspace, which strata does not read".into());
    }
    let mut part = |size: usize| -> H5Result<&[u8]> {
        let padded = size.div_ceil(pad) * pad;
        let bytes = c.take(padded).map_err(|_| "an attribute message is cut short")?;
        Ok(&bytes[..size])
    };
    let (name, datatype, dataspace) = (part(sizes[0])?, part(sizes[1])?, part(sizes[2])?);
    Ok(Attribute {
        name,
        datatype,
        dataspace,
        data: &body[c.pos..],
    })
}

/// The bytes before the first NUL.
fn trim_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}
