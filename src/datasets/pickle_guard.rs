//! A check of a pickle's opcodes before `serde-pickle` reads them.
//!
//! A few bytes of pickle can ask for an unbounded value: `DUP` copies the value on top of the
//! stack and `APPEND` puts the copy inside the original, doubling it (40 times: 2⁴⁰ values);
//! `GET` copies a memoized value each time; each `MARK` makes `serde-pickle` allocate a new
//! stack; a million nested lists overflow the thread's stack when the value is converted or
//! dropped (both recurse). `serde-pickle` has no limits of its own, so this scan follows the
//! opcodes (Python's `pickletools` table gives each one's argument) the way `serde-pickle`
//! runs them, counting what each would allocate and how deep containers nest, without building
//! anything. A pickle within the limits is read as before; one beyond them is refused before
//! `serde-pickle` sees it.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// The most digits of a decimal integer read (Python's `sys.int_info.default_max_str_digits`).
const MAX_DIGITS: usize = 4300;

/// The deepest nesting of containers read (a numpy array in a CIFAR batch nests 3 deep, an
/// IMDB review 4): converting and dropping a value recurse once per level.
pub(super) const MAX_DEPTH: u32 = 64;

/// Bytes one Python object costs while read: `serde-pickle`'s value of it, the converted
/// value, and the vectors' slack.
const OBJECT_BYTES: u64 = 96;

/// Bytes one `MARK` costs: `serde-pickle` starts a new stack with room for 128 values.
const MARK_BYTES: u64 = 128 * 32;

/// A value on the simulated stack: what it costs fully expanded (memo references replaced by
/// the values they name, as `serde-pickle` does), how deep it nests, and, for a memo
/// reference, which entry it names (whose cost may still grow).
#[derive(Clone, Copy)]
struct Item {
    bytes: u64,
    depth: u32,
    memo: Option<u32>,
}

/// A memoized value: its cost and depth, and whether a `GET` has copied it (after which it
/// may not grow: the copies were counted at their size then).
struct Entry {
    bytes: u64,
    depth: u32,
    fetched: bool,
}

/// How an opcode's argument is written (Python's `pickletools` argument descriptors).
enum Argument {
    None,
    Fixed(usize),
    Line,
    TwoLines,
    /// A length of this many little-endian bytes, then that many bytes.
    Counted(usize),
}

/// The state of the scan: the stack with its marks, the memo, and the bytes counted so far.
struct Scan<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Item>,
    marks: Vec<usize>,
    memo: HashMap<u32, Entry>,
    total: u64,
    budget: u64,
}

/// Why a scan stopped: a fault in the stream, or the memory budget.
enum Stop {
    Bad(String),
    OverBudget,
}

impl From<String> for Stop {
    fn from(reason: String) -> Self {
        Stop::Bad(reason)
    }
}

/// Checks that the pickle `data` (the contents of `path`, named in errors) builds a value
/// within the memory budget and [`MAX_DEPTH`], using only opcodes `serde-pickle` reads.
pub(super) fn check_pickle(data: &[u8], path: &Path) -> Result<()> {
    let budget = crate::limits::memory_budget()?;
    let mut scan = Scan {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        total: 0,
        budget,
    };
    match scan.run() {
        Ok(()) => Ok(()),
        Err(Stop::Bad(reason)) => Err(Error::file(path, format!("not a Python pickle strata reads: {reason}"))),
        Err(Stop::OverBudget) => crate::limits::check_memory(
            || {
                format!(
                    "{}: the Python objects of its pickle (counted up to byte {})",
                    path.display(),
                    scan.pos
                )
            },
            Some(scan.total),
        ),
    }
}

impl Scan<'_> {
    /// Follows the opcodes up to `STOP`.
    fn run(&mut self) -> std::result::Result<(), Stop> {
        loop {
            let at = self.pos;
            let Some(&op) = self.data.get(at) else {
                return Err(Stop::Bad("it ends without a STOP opcode; it is truncated".into()));
            };
            self.pos += 1;
            let data = self.data;
            let argument = &data[self.argument(op, at)?];
            if self.step(op, argument, at)? {
                return Ok(());
            }
        }
    }

    /// Reads past the argument of `op` (at byte `at`), returning where its bytes are.
    fn argument(&mut self, op: u8, at: usize) -> std::result::Result<std::ops::Range<usize>, Stop> {
        let start = self.pos;
        let end = match argument_kind(op) {
            Some(Argument::None) => Some(start),
            Some(Argument::Fixed(n)) => start.checked_add(n),
            Some(Argument::Line) => self.line_end(start),
            Some(Argument::TwoLines) => self.line_end(start).and_then(|end| self.line_end(end)),
            Some(Argument::Counted(width)) => self.counted_end(op, start, width)?,
            None => {
                return Err(Stop::Bad(format!(
                    "opcode 0x{op:02x} at byte {at} is not one strata reads"
                )));
            }
        };
        match end.filter(|&end| end <= self.data.len()) {
            Some(end) => {
                self.pos = end;
                Ok(start..end)
            }
            None => Err(Stop::Bad(format!(
                "the argument of opcode 0x{op:02x} at byte {at} runs past the end; it is truncated"
            ))),
        }
    }

    /// The position just past the newline that ends the line starting at `start`.
    fn line_end(&self, start: usize) -> Option<usize> {
        let line = self.data.get(start..)?;
        line.iter().position(|&b| b == b'\n').map(|n| start + n + 1)
    }

    /// The end of a counted argument: `width` bytes of length, then the bytes.
    fn counted_end(&self, op: u8, start: usize, width: usize) -> std::result::Result<Option<usize>, Stop> {
        let Some(length) = self.data.get(start..start + width) else {
            return Ok(None);
        };
        let mut word = [0u8; 8];
        word[..width].copy_from_slice(length);
        let length = u64::from_le_bytes(word);
        // BINSTRING and LONG4 have signed lengths.
        if width == 4 && matches!(op, b'T' | 0x8b) && length >= 1 << 31 {
            return Err(Stop::Bad(format!("opcode 0x{op:02x} has a negative length")));
        }
        Ok(usize::try_from(length)
            .ok()
            .and_then(|n| (start + width).checked_add(n)))
    }

    /// Runs `op` with its `argument` on the simulated stack; true at `STOP`.
    fn step(&mut self, op: u8, argument: &[u8], at: usize) -> std::result::Result<bool, Stop> {
        let payload = argument.len() as u64;
        match op {
            b'.' => {
                self.pop()?;
                return Ok(true);
            }
            0x80 | 0x95 => {}
            b'(' => {
                self.charge(MARK_BYTES)?;
                self.marks.push(self.stack.len());
            }
            b'0' => {
                if self.marks.last() == Some(&self.stack.len()) {
                    self.pop_mark()?;
                } else {
                    self.pop()?;
                }
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = *self.stack.last().ok_or_else(underflow)?;
                let (bytes, depth) = self.expanded(top);
                self.charge(bytes)?;
                self.stack.push(Item {
                    bytes,
                    depth,
                    memo: None,
                });
            }
            b'p' | b'q' | b'r' | 0x94 => self.memoize(op, argument, at)?,
            b'g' | b'h' | b'j' => self.fetch(memo_id(op, argument, at)?, at)?,
            // Containers made from items on the stack.
            0x85..=0x87 => {
                let count = usize::from(op - 0x84);
                let start = self.stack.len().checked_sub(count).ok_or_else(underflow)?;
                if self.marks.last().is_some_and(|&mark| mark > start) {
                    return Err(underflow().into());
                }
                let items = self.stack.split_off(start);
                self.push_container(&items)?;
            }
            b't' | b'l' | b'd' | 0x91 | b'i' => {
                let items = self.pop_mark()?;
                self.push_container(&items)?;
            }
            b'o' => {
                let items = self.pop_mark()?;
                self.pop()?;
                self.push_container(&items)?;
            }
            b'R' => {
                let args = self.pop()?;
                self.pop()?;
                // serde-pickle copies a memoized argument tuple, then its last item.
                let (bytes, _) = self.expanded(args);
                self.charge(bytes)?;
                self.push_container(&[args])?;
            }
            0x81 | b'b' => {
                let kept = self.pop()?;
                self.pop()?;
                self.push_container(&[kept])?;
            }
            0x92 => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                self.pop()?;
                self.push_container(&[args, kwargs])?;
            }
            0x93 => {
                for _ in 0..2 {
                    let name = self.pop()?;
                    let (bytes, _) = self.expanded(name);
                    self.charge(bytes)?;
                }
                self.push_leaf(0)?;
            }
            // Additions to the container on top of the stack.
            b'a' => {
                let item = self.pop()?;
                self.grow_top(&[item])?;
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.grow_top(&[key, value])?;
            }
            b'e' | b'u' | 0x90 => {
                let items = self.pop_mark()?;
                self.grow_top(&items)?;
            }
            // Python's limit: reading a longer decimal number takes quadratic time.
            b'I' | b'L' if argument.len() > MAX_DIGITS => {
                return Err(Stop::Bad(format!(
                    "the number at byte {at} has more than {MAX_DIGITS} digits"
                )));
            }
            // Everything else pushes one new value: a scalar, a string, an empty container.
            _ => self.push_leaf(payload)?,
        }
        Ok(false)
    }

    /// Counts `bytes` more allocated; past the budget the scan stops.
    fn charge(&mut self, bytes: u64) -> std::result::Result<(), Stop> {
        self.total = self.total.saturating_add(bytes);
        if self.total > self.budget {
            return Err(Stop::OverBudget);
        }
        Ok(())
    }

    /// What `item` costs and how deep it nests, a memo reference's as its entry's now.
    fn expanded(&self, item: Item) -> (u64, u32) {
        match item.memo.and_then(|id| self.memo.get(&id)) {
            Some(entry) => (entry.bytes, entry.depth),
            None => (item.bytes, item.depth),
        }
    }

    fn pop(&mut self) -> std::result::Result<Item, Stop> {
        if self.marks.last() == Some(&self.stack.len()) {
            return Err(underflow().into());
        }
        self.stack.pop().ok_or_else(|| underflow().into())
    }

    fn pop_mark(&mut self) -> std::result::Result<Vec<Item>, Stop> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| Stop::Bad("an opcode needs a MARK and there is none".into()))?;
        Ok(self.stack.split_off(mark))
    }

    /// Pushes a new value with `payload` bytes of its own (a string's, a number's digits).
    fn push_leaf(&mut self, payload: u64) -> std::result::Result<(), Stop> {
        let bytes = OBJECT_BYTES + payload;
        self.charge(bytes)?;
        self.stack.push(Item {
            bytes,
            depth: 1,
            memo: None,
        });
        Ok(())
    }

    /// Pushes a container holding `items` (already counted when they were made).
    fn push_container(&mut self, items: &[Item]) -> std::result::Result<(), Stop> {
        self.charge(OBJECT_BYTES)?;
        let mut container = Item {
            bytes: OBJECT_BYTES,
            depth: 1,
            memo: None,
        };
        self.add_items(&mut container.bytes, &mut container.depth, items)?;
        self.stack.push(container);
        Ok(())
    }

    /// Adds `items` to the container on top of the stack (APPEND, SETITEM, ...).
    fn grow_top(&mut self, items: &[Item]) -> std::result::Result<(), Stop> {
        let top = *self.stack.last().ok_or_else(underflow)?;
        if self.marks.last() == Some(&self.stack.len()) {
            return Err(underflow().into());
        }
        let (mut bytes, mut depth) = self.expanded(top);
        self.add_items(&mut bytes, &mut depth, items)?;
        match top.memo.and_then(|id| self.memo.get_mut(&id).map(|entry| (id, entry))) {
            Some((id, entry)) if entry.fetched => Err(Stop::Bad(format!(
                "memo entry {id} grows after it was copied (a recursive or self-copying structure)"
            ))),
            Some((_, entry)) => {
                (entry.bytes, entry.depth) = (bytes, depth);
                Ok(())
            }
            None => {
                let last = self.stack.len() - 1;
                self.stack[last] = Item {
                    bytes,
                    depth,
                    memo: None,
                };
                Ok(())
            }
        }
    }

    /// Adds the cost and depth of `items` to a container's.
    fn add_items(&self, bytes: &mut u64, depth: &mut u32, items: &[Item]) -> std::result::Result<(), Stop> {
        for &item in items {
            let (item_bytes, item_depth) = self.expanded(item);
            *bytes = bytes.saturating_add(item_bytes);
            *depth = (*depth).max(item_depth + 1);
        }
        if *depth > MAX_DEPTH {
            return Err(Stop::Bad(format!("its containers nest more than {MAX_DEPTH} deep")));
        }
        Ok(())
    }

    /// PUT, BINPUT, LONG_BINPUT and MEMOIZE: the top value moves into the memo.
    fn memoize(&mut self, op: u8, argument: &[u8], at: usize) -> std::result::Result<(), Stop> {
        let id = if op == 0x94 {
            u32::try_from(self.memo.len()).map_err(|_| Stop::Bad("too many memo entries".into()))?
        } else {
            memo_id(op, argument, at)?
        };
        if self.memo.contains_key(&id) {
            return Err(Stop::Bad(format!("byte {at} stores memo entry {id} a second time")));
        }
        let item = self.pop()?;
        let (bytes, depth) = self.expanded(item);
        if item.memo.is_some() {
            // serde-pickle copies a memoized value memoized again.
            self.charge(bytes)?;
        }
        self.charge(OBJECT_BYTES)?;
        self.memo.insert(
            id,
            Entry {
                bytes,
                depth,
                fetched: false,
            },
        );
        self.stack.push(Item {
            bytes,
            depth,
            memo: Some(id),
        });
        Ok(())
    }

    /// GET, BINGET and LONG_BINGET: a reference to entry `id`, which costs a copy of it.
    fn fetch(&mut self, id: u32, at: usize) -> std::result::Result<(), Stop> {
        let entry = self
            .memo
            .get_mut(&id)
            .ok_or_else(|| Stop::Bad(format!("byte {at} fetches memo entry {id}, never stored")))?;
        entry.fetched = true;
        let (bytes, depth) = (entry.bytes, entry.depth);
        self.charge(bytes)?;
        self.stack.push(Item {
            bytes,
            depth,
            memo: Some(id),
        });
        Ok(())
    }
}

fn underflow() -> String {
    "an opcode takes more values than the stack holds".into()
}

/// The memo index a PUT or GET opcode names.
fn memo_id(op: u8, argument: &[u8], at: usize) -> std::result::Result<u32, Stop> {
    let id = match op {
        b'q' | b'h' => Some(u32::from(argument[0])),
        b'r' | b'j' => Some(u32::from_le_bytes([argument[0], argument[1], argument[2], argument[3]])),
        _ => std::str::from_utf8(argument)
            .ok()
            .and_then(|text| text.trim_end().parse().ok()),
    };
    id.ok_or_else(|| {
        Stop::Bad(format!(
            "the memo index of opcode 0x{op:02x} at byte {at} is not a number"
        ))
    })
}

/// How `op`'s argument is written; `None` for an opcode `serde-pickle` does not read.
fn argument_kind(op: u8) -> Option<Argument> {
    Some(match op {
        // PROTO, BININT1, BINPUT, BINGET
        0x80 | b'K' | b'q' | b'h' => Argument::Fixed(1),
        b'M' => Argument::Fixed(2),
        b'J' | b'r' | b'j' => Argument::Fixed(4),
        // FRAME, BINFLOAT
        0x95 | b'G' => Argument::Fixed(8),
        // INT, LONG, FLOAT, STRING, UNICODE, PUT, GET
        b'I' | b'L' | b'F' | b'S' | b'V' | b'p' | b'g' => Argument::Line,
        // GLOBAL, INST
        b'c' | b'i' => Argument::TwoLines,
        // LONG1, SHORT_BINBYTES, SHORT_BINSTRING, SHORT_BINUNICODE
        0x8a | b'C' | b'U' | 0x8c => Argument::Counted(1),
        // LONG4, BINBYTES, BINSTRING, BINUNICODE
        0x8b | b'B' | b'T' | b'X' => Argument::Counted(4),
        // BINBYTES8, BINUNICODE8, BYTEARRAY8
        0x8e | 0x8d | 0x96 => Argument::Counted(8),
        // STOP, MARK, POP, POP_MARK, DUP, MEMOIZE, NONE, NEWTRUE, NEWFALSE, the empty
        // containers, TUPLE1-3, TUPLE, LIST, DICT, FROZENSET, APPEND(S), SETITEM(S),
        // ADDITEMS, STACK_GLOBAL, REDUCE, BUILD, OBJ, NEWOBJ, NEWOBJ_EX
        b'.'
        | b'('
        | b'0'
        | b'1'
        | b'2'
        | 0x94
        | b'N'
        | 0x88
        | 0x89
        | b')'
        | b']'
        | b'}'
        | 0x8f
        | 0x85..=0x87
        | b't'
        | b'l'
        | b'd'
        | 0x91
        | b'a'
        | b'e'
        | b's'
        | b'u'
        | 0x90
        | 0x93
        | b'R'
        | b'b'
        | b'o'
        | 0x81
        | 0x92 => Argument::None,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(data: &[u8]) -> Result<()> {
        check_pickle(data, Path::new("batch.pkl"))
    }

    #[test]
    fn ordinary_pickles_pass() {
        // pickle.dumps({'data': [[1, 2], (3, 'x')], b'k': None}, protocol=2)
        let data = b"\x80\x02}q\x00(X\x04\x00\x00\x00dataq\x01]q\x02(]q\x03(K\x01K\x02eK\x03X\x01\x00\x00\x00xq\x04\x86q\x05ec_codecs\nencode\nq\x06X\x01\x00\x00\x00kq\x07X\x06\x00\x00\x00latin1q\x08\x86q\tRq\nNu.";
        check(data).unwrap();
        // A memoized string fetched again.
        check(b"\x80\x02X\x01\x00\x00\x00aq\x00h\x00\x86q\x01.").unwrap();
    }

    #[test]
    fn refusals_name_the_file_and_the_fault() {
        let cases: [(&[u8], &str); 6] = [
            (b"\x80\x02]q\x00h\x00a.", "grows after it was copied"),
            (b"\x80\x02N\x82\x01.", "opcode 0x82 at byte 3"),
            (b"\x80\x02X\xff\xff\xff\x7fab.", "truncated"),
            (b"\x80\x02N", "without a STOP"),
            (b"\x80\x02a.", "more values than the stack holds"),
            (b"\x80\x02Nq\x00Nq\x00.", "a second time"),
        ];
        for (data, part) in cases {
            let error = check(data).unwrap_err().to_string();
            assert!(error.contains("batch.pkl") && error.contains(part), "{part} in {error}");
        }
    }
}
