//! Writing HDF5: the subset the reader in this folder reads, which is what h5py writes by
//! default and what Keras's `load_model` (through h5py) reads back.
//!
//! Why strata writes HDF5 itself (an exception to "prefer a well-kept crate", as for reading,
//! see `mod.rs`): the `hdf5` crate wraps libhdf5, a system C library; the pure-Rust writers
//! (`hdf5-pure`, `rust-hdf5`) are young, change weekly and carry far more than Keras's weights
//! need (chunking, filters, fractal heaps, MATLAB files), at a cost in clean-build time. A
//! `model.weights.h5` is groups of small float32 arrays, which takes a few hundred lines:
//!
//! - superblock version 0, 8-byte offsets and lengths, no user block;
//! - version 1 object headers without continuations;
//! - groups as symbol tables: one local heap of names, symbol table nodes ("SNOD") of at most
//!   [`LEAF_K`]·2 members sorted by name (HDF5 finds members by binary search), under one
//!   B-tree leaf whose `K` the superblock raises when a group has more nodes than 2·16;
//! - contiguous little-endian float32 datasets (layout message version 3);
//! - attributes holding UTF-8 strings of fixed length, one (a scalar) or a list of them,
//!   where legacy `.h5` files keep their JSON and their layer and weight names; an attribute
//!   too large for an object header message (a large model's `model_config`) holds
//!   variable-length strings instead, their characters in a global heap collection, as h5py
//!   writes a Python `str`.
//!
//! Every structure starts on an 8-byte boundary, and every object header message is padded to
//! a multiple of 8 bytes, as HDF5 requires of version 1 headers.

use std::collections::BTreeMap;

/// Symbol table nodes hold up to `2·LEAF_K` members (HDF5's default, what h5py writes).
const LEAF_K: usize = 4;
/// B-tree nodes hold up to `2·K` children; HDF5's default `K`, raised when a group needs it.
const DEFAULT_INTERNAL_K: usize = 16;
/// Size of the superblock (version 0, 8-byte offsets and lengths, root entry included).
const SUPERBLOCK_SIZE: usize = 96;
/// Size of a symbol table entry with 8-byte offsets.
const ENTRY_SIZE: usize = 40;
/// An address of all ones means "not allocated".
const UNDEFINED: u64 = u64::MAX;
/// HDF5's "no free block" in a local heap's free list (libhdf5's `H5HL_FREE_NULL`).
const FREE_LIST_NULL: u64 = 1;
/// The largest object header message: its size is a 16-bit field.
const MAX_MESSAGE: usize = u16::MAX as usize & !7;
/// The smallest global heap collection libhdf5 writes (`H5HG_MINSIZE`).
const MIN_GLOBAL_HEAP: usize = 4096;
/// The header of a global heap collection, and of each object in it (8-byte lengths).
const GLOBAL_HEAP_HEADER: usize = 16;

/// Message types (HDF5 spec, section IV.A.2).
const MSG_DATASPACE: u16 = 0x01;
const MSG_DATATYPE: u16 = 0x03;
const MSG_LAYOUT: u16 = 0x08;
const MSG_ATTRIBUTE: u16 = 0x0C;
const MSG_SYMBOL_TABLE: u16 = 0x11;

/// A group to write: members by name (a `BTreeMap`, so in the byte order HDF5 sorts names in)
/// and string attributes.
#[derive(Debug, Default)]
pub(crate) struct Group {
    members: BTreeMap<String, Member>,
    attributes: Vec<(String, Attribute)>,
}

/// A member of a group.
#[derive(Debug)]
enum Member {
    Group(Group),
    Array { shape: Vec<usize>, values: Vec<f32> },
}

/// A string attribute: one string (a scalar, as h5py writes a `str` or `bytes`), or a list.
#[derive(Debug)]
pub(crate) enum Attribute {
    Text(String),
    Texts(Vec<String>),
}

impl Group {
    /// An empty group.
    pub fn new() -> Group {
        Group::default()
    }

    /// The group at `path` below this one (`layers/dense/vars`), made with the groups on the
    /// way if missing. An error when a dataset is in the way.
    pub fn group(&mut self, path: &str) -> Result<&mut Group, String> {
        let mut group = self;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let member = group
                .members
                .entry(part.to_string())
                .or_insert_with(|| Member::Group(Group::new()));
            group = match member {
                Member::Group(inner) => inner,
                Member::Array { .. } => return Err(format!("'{part}' of '{path}' is a dataset, not a group")),
            };
        }
        Ok(group)
    }

    /// Adds a float32 dataset at `path` (its groups made as needed). `values` are row-major
    /// and must number the product of `shape`; a name taken is an error.
    pub fn add_array(&mut self, path: &str, shape: &[usize], values: &[f32]) -> Result<(), String> {
        let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if count != Some(values.len()) {
            return Err(format!("'{path}': {} values for the shape {shape:?}", values.len()));
        }
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        if name.is_empty() {
            return Err(format!("'{path}' names no dataset"));
        }
        let group = self.group(parent)?;
        if group.members.contains_key(name) {
            return Err(format!("'{path}' is written twice"));
        }
        let array = Member::Array {
            shape: shape.to_vec(),
            values: values.to_vec(),
        };
        group.members.insert(name.to_string(), array);
        Ok(())
    }

    /// Sets the string attribute `name` of this group.
    pub fn set_attribute(&mut self, name: &str, value: Attribute) {
        self.attributes.retain(|(n, _)| n != name);
        self.attributes.push((name.to_string(), value));
    }

    /// The HDF5 file whose root group is this one.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        // One B-tree node lists every symbol table node of a group: K must allow the largest.
        let nodes = self.most_symbol_nodes();
        let internal_k = DEFAULT_INTERNAL_K.max(nodes.div_ceil(2));
        let internal_k = u16::try_from(internal_k).map_err(|_| "a group has too many members for HDF5")?;
        let mut writer = Writer {
            out: vec![0; SUPERBLOCK_SIZE],
            internal_k: usize::from(internal_k),
        };
        let root = writer.group(self)?;
        let end = writer.out.len() as u64;
        let mut superblock = Vec::with_capacity(SUPERBLOCK_SIZE);
        superblock.extend_from_slice(b"\x89HDF\r\n\x1a\n");
        // Superblock, free-space, root group entry and shared header versions; reserved; sizes
        // of offsets and lengths; reserved.
        superblock.extend_from_slice(&[0, 0, 0, 0, 0, 8, 8, 0]);
        superblock.extend_from_slice(&(LEAF_K as u16).to_le_bytes());
        superblock.extend_from_slice(&internal_k.to_le_bytes());
        superblock.extend_from_slice(&0u32.to_le_bytes()); // consistency flags
        for address in [0, UNDEFINED, end, UNDEFINED] {
            // base, free-space info, end of file, driver information block
            superblock.extend_from_slice(&address.to_le_bytes());
        }
        superblock.extend_from_slice(&root.entry(0));
        writer.out[..SUPERBLOCK_SIZE].copy_from_slice(&superblock);
        Ok(writer.out)
    }

    /// The most symbol table nodes any group below (and including) this one needs.
    fn most_symbol_nodes(&self) -> usize {
        let own = self.members.len().div_ceil(2 * LEAF_K);
        self.members
            .values()
            .filter_map(|m| match m {
                Member::Group(g) => Some(g.most_symbol_nodes()),
                Member::Array { .. } => None,
            })
            .fold(own, usize::max)
    }
}

/// Where an object was written: its header and, for a group, its B-tree and heap (the "cache"
/// HDF5 keeps in a group's symbol table entry).
struct Written {
    header: u64,
    group: Option<(u64, u64)>,
}

impl Written {
    /// The object's symbol table entry, its name at `name_offset` in its parent's heap.
    fn entry(&self, name_offset: u64) -> [u8; ENTRY_SIZE] {
        let mut entry = [0u8; ENTRY_SIZE];
        entry[..8].copy_from_slice(&name_offset.to_le_bytes());
        entry[8..16].copy_from_slice(&self.header.to_le_bytes());
        if let Some((btree, heap)) = self.group {
            entry[16..20].copy_from_slice(&1u32.to_le_bytes());
            entry[24..32].copy_from_slice(&btree.to_le_bytes());
            entry[32..40].copy_from_slice(&heap.to_le_bytes());
        }
        entry
    }
}

/// Appends structures to the file's bytes; an address is a position in them.
struct Writer {
    out: Vec<u8>,
    internal_k: usize,
}

impl Writer {
    /// Pads to an 8-byte boundary and returns the address there.
    fn align(&mut self) -> u64 {
        let padded = self.out.len().next_multiple_of(8);
        self.out.resize(padded, 0);
        padded as u64
    }

    /// Writes a group's members, then its name heap, symbol table nodes, B-tree and header.
    fn group(&mut self, group: &Group) -> Result<Written, String> {
        let mut children = Vec::with_capacity(group.members.len());
        for (name, member) in &group.members {
            let written = match member {
                Member::Group(inner) => self.group(inner)?,
                Member::Array { shape, values } => self.array(shape, values)?,
            };
            children.push((name, written));
        }
        // The heap's data: the empty name at 0, then each name NUL-terminated, padded to 8.
        let mut names = vec![0u8; 8];
        let mut offsets = Vec::with_capacity(children.len());
        for (name, _) in &children {
            if name.contains('\0') || name.contains('/') {
                return Err(format!("'{name}' cannot name an HDF5 object"));
            }
            offsets.push(names.len() as u64);
            names.extend_from_slice(name.as_bytes());
            names.push(0);
            names.resize(names.len().next_multiple_of(8), 0);
        }
        let heap = self.align();
        self.out.extend_from_slice(b"HEAP\0\0\0\0");
        self.out.extend_from_slice(&(names.len() as u64).to_le_bytes());
        self.out.extend_from_slice(&FREE_LIST_NULL.to_le_bytes());
        self.out.extend_from_slice(&(heap + 32).to_le_bytes());
        self.out.extend_from_slice(&names);

        let per_node = 2 * LEAF_K;
        let mut nodes = Vec::new();
        for (chunk, chunk_offsets) in children.chunks(per_node).zip(offsets.chunks(per_node)) {
            let address = self.align();
            self.out.extend_from_slice(b"SNOD\x01\0");
            self.out.extend_from_slice(&(chunk.len() as u16).to_le_bytes());
            for ((_, written), &offset) in chunk.iter().zip(chunk_offsets) {
                self.out.extend_from_slice(&written.entry(offset));
            }
            // Nodes are read whole: the unused entries are there, zeroed.
            self.out
                .resize(self.out.len() + (per_node - chunk.len()) * ENTRY_SIZE, 0);
            // The key after a child is its last (largest) name.
            nodes.push((address, *chunk_offsets.last().unwrap_or(&0)));
        }
        let btree = self.align();
        self.out.extend_from_slice(b"TREE\0\0");
        self.out.extend_from_slice(&(nodes.len() as u16).to_le_bytes());
        self.out.extend_from_slice(&UNDEFINED.to_le_bytes()); // left sibling
        self.out.extend_from_slice(&UNDEFINED.to_le_bytes()); // right sibling
        self.out.extend_from_slice(&0u64.to_le_bytes()); // the first key: the empty name
        for &(address, key) in &nodes {
            self.out.extend_from_slice(&address.to_le_bytes());
            self.out.extend_from_slice(&key.to_le_bytes());
        }
        let capacity = 2 * self.internal_k;
        self.out.resize(self.out.len() + (capacity - nodes.len()) * 16, 0);

        let mut messages = vec![(MSG_SYMBOL_TABLE, [btree.to_le_bytes(), heap.to_le_bytes()].concat())];
        for (name, value) in &group.attributes {
            let message = match fixed_attribute(name, value)? {
                Some(message) => message,
                None => {
                    let references = self.global_heap(&value.texts())?;
                    variable_attribute(name, value, &references)?
                }
            };
            messages.push((MSG_ATTRIBUTE, message));
        }
        let header = self.object_header(&messages)?;
        Ok(Written {
            header,
            group: Some((btree, heap)),
        })
    }

    /// Writes a float32 dataset's values, then its header.
    fn array(&mut self, shape: &[usize], values: &[f32]) -> Result<Written, String> {
        let size = values.len() as u64 * 4;
        let data = match values.is_empty() {
            true => UNDEFINED,
            false => self.align(),
        };
        for value in values {
            self.out.extend_from_slice(&value.to_le_bytes());
        }
        let mut layout = vec![3, 1];
        layout.extend_from_slice(&data.to_le_bytes());
        layout.extend_from_slice(&size.to_le_bytes());
        let messages = [
            (MSG_DATASPACE, dataspace(shape)),
            (MSG_DATATYPE, float32_type()),
            (MSG_LAYOUT, layout),
        ];
        Ok(Written {
            header: self.object_header(&messages)?,
            group: None,
        })
    }

    /// Writes a global heap collection holding `texts`, one object each (numbered from 1),
    /// then a free-space object to the collection's end; returns each text's reference as a
    /// variable-length string element stores it (length, collection address, object number).
    fn global_heap(&mut self, texts: &[&str]) -> Result<Vec<[u8; 16]>, String> {
        let objects: usize = texts
            .iter()
            .map(|text| GLOBAL_HEAP_HEADER + text.len().next_multiple_of(8))
            .sum();
        // Room for a free-space object after them: libhdf5 reads one where 16 bytes are left.
        let size = (GLOBAL_HEAP_HEADER + objects + GLOBAL_HEAP_HEADER).max(MIN_GLOBAL_HEAP);
        let address = self.align();
        self.out.extend_from_slice(b"GCOL\x01\0\0\0");
        self.out.extend_from_slice(&(size as u64).to_le_bytes());
        let mut references = Vec::with_capacity(texts.len());
        for (k, text) in texts.iter().enumerate() {
            let too_many = || format!("an attribute of {} strings (at most 65535)", texts.len());
            let index = u16::try_from(k + 1).map_err(|_| too_many())?;
            let length = u32::try_from(text.len()).map_err(|_| "an attribute string over 4 GB")?;
            self.out.extend_from_slice(&index.to_le_bytes());
            self.out.extend_from_slice(&1u16.to_le_bytes()); // reference count
            self.out.extend_from_slice(&[0; 4]); // reserved
            self.out.extend_from_slice(&(text.len() as u64).to_le_bytes());
            self.out.extend_from_slice(text.as_bytes());
            self.out.resize(self.out.len().next_multiple_of(8), 0);
            let mut reference = [0u8; 16];
            reference[..4].copy_from_slice(&length.to_le_bytes());
            reference[4..12].copy_from_slice(&address.to_le_bytes());
            reference[12..].copy_from_slice(&u32::from(index).to_le_bytes());
            references.push(reference);
        }
        // The free-space object (number 0): its size counts its own header.
        let free = address as usize + size - self.out.len();
        self.out.extend_from_slice(&[0; 8]);
        self.out.extend_from_slice(&(free as u64).to_le_bytes());
        self.out.resize(address as usize + size, 0);
        Ok(references)
    }

    /// A version 1 object header of `messages` (type, body), each padded to 8 bytes.
    fn object_header(&mut self, messages: &[(u16, Vec<u8>)]) -> Result<u64, String> {
        let mut body = Vec::new();
        for (kind, message) in messages {
            let padded = message.len().next_multiple_of(8);
            if padded > MAX_MESSAGE {
                return Err(format!(
                    "an HDF5 object header message of {} bytes (at most {MAX_MESSAGE})",
                    message.len()
                ));
            }
            body.extend_from_slice(&kind.to_le_bytes());
            body.extend_from_slice(&(padded as u16).to_le_bytes());
            body.extend_from_slice(&[0, 0, 0, 0]); // flags, reserved
            body.extend_from_slice(message);
            body.resize(body.len() + padded - message.len(), 0);
        }
        let size = u32::try_from(body.len()).map_err(|_| "an HDF5 object header over 4 GB")?;
        let address = self.align();
        self.out.extend_from_slice(&[1, 0]);
        self.out.extend_from_slice(&(messages.len() as u16).to_le_bytes());
        self.out.extend_from_slice(&1u32.to_le_bytes()); // reference count
        self.out.extend_from_slice(&size.to_le_bytes());
        self.out.extend_from_slice(&[0; 4]); // to an 8-byte boundary
        self.out.extend_from_slice(&body);
        Ok(address)
    }
}

/// A version 1 dataspace message: rank 0 is a scalar, else the dimensions.
fn dataspace(shape: &[usize]) -> Vec<u8> {
    let mut message = vec![1, shape.len() as u8, 0, 0, 0, 0, 0, 0];
    for &d in shape {
        message.extend_from_slice(&(d as u64).to_le_bytes());
    }
    message
}

/// IEEE float32, little-endian: class 1, sign at bit 31, exponent 8 bits at 23 (bias 127),
/// mantissa 23 bits at 0, normalized with an implied leading one.
fn float32_type() -> Vec<u8> {
    let mut message = vec![0x11, 0x20, 0x1f, 0x00];
    message.extend_from_slice(&4u32.to_le_bytes());
    message.extend_from_slice(&0u16.to_le_bytes()); // bit offset
    message.extend_from_slice(&32u16.to_le_bytes()); // precision
    message.extend_from_slice(&[23, 8, 0, 23]);
    message.extend_from_slice(&127u32.to_le_bytes());
    message
}

impl Attribute {
    /// The strings it holds, in order.
    fn texts(&self) -> Vec<&str> {
        match self {
            Attribute::Text(text) => vec![text],
            Attribute::Texts(texts) => texts.iter().map(String::as_str).collect(),
        }
    }

    /// Its dataspace message: a scalar, or a list.
    fn dataspace(&self) -> Vec<u8> {
        match self {
            Attribute::Text(_) => dataspace(&[]),
            Attribute::Texts(texts) => dataspace(&[texts.len()]),
        }
    }
}

/// A version 1 attribute message holding fixed-length, NUL-padded UTF-8 strings, or `None`
/// when it would be larger than an object header message can be.
fn fixed_attribute(name: &str, value: &Attribute) -> Result<Option<Vec<u8>>, String> {
    let texts = value.texts();
    let width = texts.iter().map(|t| t.len()).max().unwrap_or(0).max(1);
    let values_size = width.checked_mul(texts.len()).filter(|&size| size <= MAX_MESSAGE);
    let Some(values_size) = values_size else {
        return Ok(None);
    };
    let mut datatype = vec![0x13, 0x11, 0, 0];
    datatype.extend_from_slice(&(width as u32).to_le_bytes());
    let mut message = attribute_head(name, &datatype, &value.dataspace())?;
    message.reserve(values_size);
    for text in texts {
        message.extend_from_slice(text.as_bytes());
        message.resize(message.len() + width - text.len(), 0);
    }
    Ok((message.len() <= MAX_MESSAGE).then_some(message))
}

/// A version 1 attribute message holding variable-length UTF-8 strings, each given by its
/// reference into a global heap collection.
fn variable_attribute(name: &str, value: &Attribute, references: &[[u8; 16]]) -> Result<Vec<u8>, String> {
    // Class 9 (variable-length) version 1, a string, NUL-terminated, UTF-8; 16-byte elements;
    // the base type: an unsigned 8-bit integer (a character), as libhdf5 describes `H5T_C_S1`.
    let mut datatype = vec![0x19, 0x01, 0x01, 0x00];
    datatype.extend_from_slice(&16u32.to_le_bytes());
    datatype.extend_from_slice(&[0x10, 0x00, 0x00, 0x00]);
    datatype.extend_from_slice(&1u32.to_le_bytes());
    datatype.extend_from_slice(&0u16.to_le_bytes()); // bit offset
    datatype.extend_from_slice(&8u16.to_le_bytes()); // precision
    let mut message = attribute_head(name, &datatype, &value.dataspace())?;
    for reference in references {
        message.extend_from_slice(reference);
    }
    if message.len() > MAX_MESSAGE {
        return Err(format!(
            "the attribute '{name}' holds too many strings for an HDF5 object header"
        ));
    }
    Ok(message)
}

/// The start of a version 1 attribute message: its name, datatype and dataspace, each padded
/// to 8 bytes (the values follow).
fn attribute_head(name: &str, datatype: &[u8], space: &[u8]) -> Result<Vec<u8>, String> {
    let name_size = u16::try_from(name.len() + 1)
        .ok()
        .filter(|&size| usize::from(size) < MAX_MESSAGE / 2)
        .ok_or_else(|| format!("the attribute name '{name:.40}...' is too long for HDF5"))?;
    let mut message = vec![1, 0];
    message.extend_from_slice(&name_size.to_le_bytes());
    message.extend_from_slice(&(datatype.len() as u16).to_le_bytes());
    message.extend_from_slice(&(space.len() as u16).to_le_bytes());
    message.extend_from_slice(name.as_bytes());
    message.push(0);
    message.resize(message.len().next_multiple_of(8), 0);
    message.extend_from_slice(datatype);
    message.resize(message.len().next_multiple_of(8), 0);
    message.extend_from_slice(space);
    message.resize(message.len().next_multiple_of(8), 0);
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::super::Hdf5File;
    use super::*;

    #[test]
    fn the_reader_reads_back_what_the_writer_writes() {
        let mut root = Group::new();
        root.add_array("layers/dense/vars/0", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.5])
            .unwrap();
        root.add_array("layers/dense/vars/1", &[3], &[-1.0, 0.0, 1.0]).unwrap();
        root.add_array("scalar", &[], &[7.0]).unwrap();
        root.group("vars").unwrap();
        root.set_attribute("model_config", Attribute::Text("{\"é\": 1}".into()));
        root.group("weights")
            .unwrap()
            .set_attribute("layer_names", Attribute::Texts(vec!["dense".into(), "dense_12".into()]));
        let bytes = root.to_bytes().unwrap();

        let file = Hdf5File::parse(&bytes).unwrap();
        let top: Vec<String> = file.members(file.root()).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(top, ["layers", "scalar", "vars", "weights"]);
        let kernel = file
            .read_f32(file.lookup("layers/dense/vars/0").unwrap().unwrap())
            .unwrap();
        assert_eq!(
            (kernel.shape, kernel.values),
            (vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.5])
        );
        let scalar = file.read_f32(file.lookup("scalar").unwrap().unwrap()).unwrap();
        assert_eq!((scalar.shape, scalar.values), (vec![], vec![7.0]));
        let vars = file.lookup("vars").unwrap().unwrap();
        assert!(file.members(vars).unwrap().is_empty());
        let text = file.attribute_strings(file.root(), "model_config").unwrap();
        assert_eq!(text, Some(vec!["{\"é\": 1}".to_string()]));
        let weights = file.lookup("weights").unwrap().unwrap();
        let names = file.attribute_strings(weights, "layer_names").unwrap();
        assert_eq!(names, Some(vec!["dense".to_string(), "dense_12".to_string()]));
    }

    #[test]
    fn groups_of_many_members_span_symbol_nodes_and_keep_their_order() {
        // 300 members: 38 symbol table nodes, more than one B-tree node of K = 16 holds.
        let mut root = Group::new();
        for i in 0..300 {
            root.add_array(&format!("vars/{i}"), &[1], &[i as f32]).unwrap();
        }
        let bytes = root.to_bytes().unwrap();
        let file = Hdf5File::parse(&bytes).unwrap();
        let vars = file.lookup("vars").unwrap().unwrap();
        let members = file.members(vars).unwrap();
        assert_eq!(members.len(), 300);
        let mut sorted: Vec<String> = members.iter().map(|(n, _)| n.clone()).collect();
        sorted.sort();
        assert_eq!(members.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(), sorted);
        for i in [0, 7, 8, 123, 299] {
            let value = file
                .read_f32(file.lookup(&format!("vars/{i}")).unwrap().unwrap())
                .unwrap();
            assert_eq!(value.values, [i as f32]);
        }
    }

    #[test]
    fn refuses_what_hdf5_cannot_hold() {
        let mut root = Group::new();
        assert!(root.add_array("a", &[2], &[1.0]).unwrap_err().contains("1 values"));
        root.add_array("a", &[1], &[1.0]).unwrap();
        assert!(root.add_array("a", &[1], &[1.0]).unwrap_err().contains("twice"));
        assert!(root.group("a/b").unwrap_err().contains("is a dataset"));
        root.set_attribute(&"n".repeat(40_000), Attribute::Text("x".into()));
        assert!(root.to_bytes().unwrap_err().contains("too long"));
    }

    #[test]
    fn attributes_too_large_for_a_header_go_to_the_global_heap() {
        let mut root = Group::new();
        let config = format!("{{\"layers\": \"{}é\"}}", "x".repeat(200_000));
        root.set_attribute("model_config", Attribute::Text(config.clone()));
        // One long name makes the fixed-width form 100 KB; the references take 1.6 KB.
        let mut names: Vec<String> = (0..100).map(|i| format!("layer_{i}")).collect();
        names.push("n".repeat(1000));
        root.group("weights")
            .unwrap()
            .set_attribute("layer_names", Attribute::Texts(names.clone()));
        root.set_attribute("small", Attribute::Text("kept fixed".into()));
        let bytes = root.to_bytes().unwrap();
        let file = Hdf5File::parse(&bytes).unwrap();
        assert_eq!(
            file.attribute_strings(file.root(), "model_config").unwrap(),
            Some(vec![config])
        );
        let weights = file.lookup("weights").unwrap().unwrap();
        assert_eq!(file.attribute_strings(weights, "layer_names").unwrap(), Some(names));
        let small = file.attribute_strings(file.root(), "small").unwrap();
        assert_eq!(small, Some(vec!["kept fixed".to_string()]));
    }
}
