//! A minimal HDF5 reader for the files h5py writes by default, which is how Keras stores a
//! `.keras` archive's `model.weights.h5`; `writer.rs` writes the same subset.
//!
//! Why strata has its own reader instead of a crate (an exception to "prefer a well-kept
//! crate"): the `hdf5`/`hdf5-metno` crates wrap libhdf5, a C library that cannot be trusted with
//! hostile files and needs a system package. The pure-Rust `hdf5-reader` crate reads these files
//! correctly and survived our mutation tests, but it and its dependencies (ndarray among them)
//! cost a large share of the clean-build time budget (docs/PERFORMANCE.md, "Figures moved from
//! code comments"), for ~23,000 lines of which Keras weights use a few hundred. What h5py writes without `libver="latest"` is
//! a small subset of HDF5, and this file reads exactly that subset:
//!
//! - superblock version 0 or 1 (8-, 4- or 2-byte offsets and lengths);
//! - version 1 object headers, with continuation blocks;
//! - groups as symbol tables: a version 1 B-tree of symbol nodes, names in a local heap;
//! - datasets of little-endian IEEE float32, stored contiguously or compactly (layout v3);
//! - attributes holding strings, fixed-length or variable-length in the global heap
//!   (`attribute.rs`), where legacy Keras `.h5` files keep the model's config and weight names.
//!
//! Anything else (superblock v2/v3, version 2 object headers, link-message groups, chunked or
//! filtered datasets, other types) is refused with an error that says what was found.
//!
//! Every offset, length and count comes from the file, so each is checked against the file's
//! bytes before it is used: a read past the end is an error, a structure visited twice (a cycle)
//! is an error, and no buffer is sized from a count before the bytes it describes are known to
//! be in the file. Allocations are therefore bounded by the file's size.

mod attribute;
mod dataset;
pub(crate) mod writer;

pub(crate) use dataset::Dataset;
use std::collections::HashSet;

/// An error inside the HDF5 structure; the caller adds which file it came from.
pub(crate) type H5Result<T> = std::result::Result<T, String>;

const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
/// An address of all ones means "not allocated".
const UNDEFINED: u64 = u64::MAX;
/// Message types (HDF5 spec, section IV.A.2).
const MSG_DATASPACE: u16 = 0x01;
const MSG_LINK_INFO: u16 = 0x02;
const MSG_DATATYPE: u16 = 0x03;
const MSG_LINK: u16 = 0x06;
const MSG_LAYOUT: u16 = 0x08;
const MSG_FILTERS: u16 = 0x0B;
const MSG_CONTINUATION: u16 = 0x10;
const MSG_SYMBOL_TABLE: u16 = 0x11;
/// More continuation blocks than this in one object header is taken as corruption (h5py
/// writes one or two).
const MAX_CONTINUATIONS: usize = 1024;
/// HDF5 limits a dataspace to 32 dimensions.
const MAX_RANK: usize = 32;

/// A bounds-checked reader over the file's bytes.
#[derive(Clone)]
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> H5Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated: {n} bytes needed at offset {}", self.pos))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> H5Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> H5Result<u16> {
        Ok(self.uint(2)? as u16)
    }

    fn u32(&mut self) -> H5Result<u32> {
        Ok(self.uint(4)? as u32)
    }

    /// A little-endian unsigned integer of `n` ≤ 8 bytes; all ones stays all ones (undefined).
    fn uint(&mut self, n: usize) -> H5Result<u64> {
        let bytes = self.take(n)?;
        if bytes.iter().all(|&b| b == 0xff) {
            return Ok(UNDEFINED);
        }
        Ok(bytes.iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }
}

/// One object header message: its type, flags and body.
struct Message<'a> {
    kind: u16,
    flags: u8,
    body: &'a [u8],
}

/// An opened HDF5 file. Objects are named by the address of their object header.
pub(crate) struct Hdf5File<'a> {
    bytes: &'a [u8],
    /// Where addresses count from (the superblock's position for files with a user block).
    base: u64,
    offset_size: usize,
    length_size: usize,
    root: u64,
}

impl<'a> Hdf5File<'a> {
    /// Reads the superblock. HDF5 puts it at 0, or after a user block at 512, 1024, 2048, ...
    pub fn parse(bytes: &'a [u8]) -> H5Result<Self> {
        let mut at = 0usize;
        while !bytes[at.min(bytes.len())..].starts_with(SIGNATURE) {
            at = if at == 0 { 512 } else { at * 2 };
            if at >= bytes.len() {
                return Err("not an HDF5 file (no HDF5 signature)".into());
            }
        }
        let mut cur = Cursor { bytes, pos: at + 8 };
        let version = cur.u8()?;
        if version > 1 {
            return Err(format!(
                "HDF5 superblock version {version} (written with libver='latest'); strata reads versions 0 and 1, \
                 which h5py and Keras write by default"
            ));
        }
        cur.take(4)?; // free-space, root-group and shared-header versions, reserved
        let offset_size = cur.u8()? as usize;
        let length_size = cur.u8()? as usize;
        for (what, size) in [("offsets", offset_size), ("lengths", length_size)] {
            if ![2, 4, 8].contains(&size) {
                return Err(format!("unsupported size of {what}: {size} bytes"));
            }
        }
        cur.take(1 + 2 + 2 + 4)?; // reserved, B-tree K values, consistency flags
        if version == 1 {
            cur.take(4)?; // indexed-storage K, reserved
        }
        let base = cur.uint(offset_size)?;
        cur.take(3 * offset_size)?; // free-space, end-of-file and driver-block addresses
        cur.uint(offset_size)?; // root entry: link name offset
        let root = cur.uint(offset_size)?;
        if base == UNDEFINED || root == UNDEFINED {
            return Err("the superblock has no root group".into());
        }
        Ok(Hdf5File {
            bytes,
            base,
            offset_size,
            length_size,
            root,
        })
    }

    /// The file's size in bytes: what a reader of it may allocate at most.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// The root group's address.
    pub fn root(&self) -> u64 {
        self.root
    }

    /// A cursor at a file address, checked to lie inside the file.
    fn at(&self, address: u64) -> H5Result<Cursor<'a>> {
        if address == UNDEFINED {
            return Err("an undefined address (data never written, or stored outside this file)".into());
        }
        let pos = self
            .base
            .checked_add(address)
            .and_then(|p| usize::try_from(p).ok())
            .filter(|&p| p < self.bytes.len() && address != UNDEFINED)
            .ok_or_else(|| format!("address {address} lies outside the file ({} bytes)", self.bytes.len()))?;
        Ok(Cursor { bytes: self.bytes, pos })
    }

    fn offset(&self, cur: &mut Cursor) -> H5Result<u64> {
        cur.uint(self.offset_size)
    }

    fn length(&self, cur: &mut Cursor) -> H5Result<u64> {
        cur.uint(self.length_size)
    }

    /// The object at `path` (`layers/dense/vars/0`), `None` if some part of it does not exist.
    pub fn lookup(&self, path: &str) -> H5Result<Option<u64>> {
        self.lookup_from(self.root, path)
    }

    /// The object at `path` below the group at `group`, `None` if some part of it does not
    /// exist.
    pub fn lookup_from(&self, group: u64, path: &str) -> H5Result<Option<u64>> {
        let mut object = group;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            match self.members(object)?.into_iter().find(|(name, _)| name == part) {
                Some((_, child)) => object = child,
                None => return Ok(None),
            }
        }
        Ok(Some(object))
    }

    /// The messages of the version 1 object header at `address`, following continuations.
    fn messages(&self, address: u64) -> H5Result<Vec<Message<'a>>> {
        let mut cur = self.at(address)?;
        let version = cur.u8()?;
        if version != 1 {
            let found = if cur.bytes[cur.pos - 1..].starts_with(b"OHDR") {
                "a version 2 object header (libver='latest')".to_string()
            } else {
                format!("object header version {version}")
            };
            return Err(format!("at address {address}: {found}; strata reads version 1 headers"));
        }
        cur.take(1 + 2 + 4)?; // reserved, message count, reference count
        let size = cur.u32()? as usize;
        cur.take(4)?; // padding to an 8-byte boundary
        let mut blocks = vec![(cur.pos, size)];
        let mut seen = HashSet::new();
        // Blocks may not add up to more than the file: overlapping blocks cannot multiply work.
        let mut total = size;
        let mut messages = Vec::new();
        while let Some((start, size)) = blocks.pop() {
            let mut block = Cursor {
                bytes: self.bytes,
                pos: start,
            };
            let end = start
                .checked_add(size)
                .filter(|&e| e <= self.bytes.len())
                .ok_or_else(|| format!("object header at {address} runs past the end of the file"))?;
            while end - block.pos >= 8 {
                let kind = block.u16()?;
                let body_size = block.u16()? as usize;
                let flags = block.u8()?;
                block.take(3)?;
                if body_size > end - block.pos {
                    return Err(format!("object header at {address}: a message runs past its block"));
                }
                let body = block.take(body_size)?;
                if kind == MSG_CONTINUATION {
                    let mut c = Cursor { bytes: body, pos: 0 };
                    let (next, next_size) = (self.offset(&mut c)?, self.length(&mut c)?);
                    let next_size = usize::try_from(next_size).map_err(|_| "continuation too large")?;
                    total = total.saturating_add(next_size);
                    if !seen.insert(next) || seen.len() > MAX_CONTINUATIONS || total > self.bytes.len() {
                        return Err(format!("object header at {address}: its continuations loop or overlap"));
                    }
                    blocks.push((self.at(next)?.pos, next_size));
                }
                messages.push(Message { kind, flags, body });
            }
        }
        Ok(messages)
    }

    /// A group's members as (name, object address), in name order.
    pub fn members(&self, group: u64) -> H5Result<Vec<(String, u64)>> {
        let messages = self.messages(group)?;
        let Some(table) = messages.iter().find(|m| m.kind == MSG_SYMBOL_TABLE) else {
            return Err(
                if messages.iter().any(|m| m.kind == MSG_LINK || m.kind == MSG_LINK_INFO) {
                    format!(
                        "the group at {group} stores links in link messages (libver='latest'); strata reads symbol tables"
                    )
                } else {
                    format!("the object at {group} is not a group")
                },
            );
        };
        let mut c = Cursor {
            bytes: table.body,
            pos: 0,
        };
        let (btree, heap) = (self.offset(&mut c)?, self.offset(&mut c)?);
        let names = self.local_heap(heap)?;
        let mut members = Vec::new();
        let mut visited = HashSet::new();
        self.walk_btree(btree, None, names, &mut visited, &mut members)?;
        Ok(members)
    }

    /// The data segment of the local heap at `address`, where a group keeps its member names.
    fn local_heap(&self, address: u64) -> H5Result<&'a [u8]> {
        let mut cur = self.at(address)?;
        if cur.take(4)? != b"HEAP" {
            return Err(format!("no local heap at address {address}"));
        }
        cur.take(4)?; // version, reserved
        let size = self.length(&mut cur)?;
        self.length(&mut cur)?; // free list
        let data = self.offset(&mut cur)?;
        let mut segment = self.at(data)?;
        segment.take(usize::try_from(size).map_err(|_| "local heap too large")?)
    }

    /// Collects the members listed under the group B-tree node at `address`. Each level is
    /// one lower than its parent's and no node is read twice, so the walk ends.
    fn walk_btree(
        &self,
        address: u64,
        level: Option<u8>,
        names: &[u8],
        visited: &mut HashSet<u64>,
        members: &mut Vec<(String, u64)>,
    ) -> H5Result<()> {
        if !visited.insert(address) {
            return Err(format!("the group B-tree visits address {address} twice"));
        }
        let mut cur = self.at(address)?;
        if cur.take(4)? != b"TREE" || cur.u8()? != 0 {
            return Err(format!("no group B-tree node at address {address}"));
        }
        let node_level = cur.u8()?;
        if level.is_some_and(|l| l != node_level) {
            return Err(format!(
                "B-tree node at {address} has level {node_level}, expected {level:?}"
            ));
        }
        let entries = cur.u16()?;
        cur.take(2 * self.offset_size)?; // siblings
        for _ in 0..entries {
            self.length(&mut cur)?; // key: offset of the largest name in the child
            let child = self.offset(&mut cur)?;
            if node_level > 0 {
                self.walk_btree(child, Some(node_level - 1), names, visited, members)?;
            } else {
                if !visited.insert(child) {
                    return Err(format!("the group B-tree visits address {child} twice"));
                }
                self.symbol_node(child, names, members)?;
            }
        }
        Ok(())
    }

    /// Reads a symbol table node ("SNOD"): entries of (name offset, object address, cache).
    fn symbol_node(&self, address: u64, names: &[u8], members: &mut Vec<(String, u64)>) -> H5Result<()> {
        let mut cur = self.at(address)?;
        if cur.take(4)? != b"SNOD" {
            return Err(format!("no symbol table node at address {address}"));
        }
        cur.take(2)?; // version, reserved
        let count = cur.u16()?;
        // Entries cannot overlap in a real file, so there are at most this many.
        let most = self.bytes.len() / (2 * self.offset_size + 24);
        for _ in 0..count {
            if members.len() >= most {
                return Err("the group lists more members than the file can hold".into());
            }
            let name_at = self.offset(&mut cur)?;
            let object = self.offset(&mut cur)?;
            cur.take(4 + 4 + 16)?; // cache type, reserved, scratch pad
            let tail = usize::try_from(name_at)
                .ok()
                .and_then(|at| names.get(at..))
                .ok_or_else(|| format!("a member name offset ({name_at}) lies outside its heap"))?;
            let len = tail
                .iter()
                .position(|&b| b == 0)
                .ok_or("a member name is not terminated")?;
            let name = std::str::from_utf8(&tail[..len]).map_err(|_| "a member name is not UTF-8")?;
            members.push((name.to_string(), object));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
