//! The crate's layering, read from its source: which module names which.
//!
//! Every file under `src/` (the binaries under `src/bin/` aside: they are applications of the
//! library) is scanned for the paths it names: `crate::x::…`, `super::…`, `self::…`, and in a
//! folder's root file (`mod.rs`, or `x.rs` beside a folder `x/`) its children by name. Two
//! graphs come out of that:
//!
//! - between top-level modules (`autograd`, `model`, …): no two may name each other, and the
//!   lower tiers of the stack (foundation, building blocks, model and above) may not name the
//!   higher ones;
//! - between the files of one folder: no circle (`ops.rs` → `losses.rs` → `ops.rs`). A folder's
//!   root file re-exporting a child's names (`pub use ops::Op;`) is the folder's face, not a
//!   dependency; a root file that calls into a child while the child takes names from it is.
//!
//! Ties being removed are listed below. Both lists must match what the scan finds exactly: a
//! new tie fails the test, and so does a removed one that is still listed.
//!
//! The scan reads text, not Rust's syntax tree: comments and a file's trailing `#[cfg(test)]`
//! module are skipped, glob re-exports (`pub use x::*`) resolve to the folder's root file, and
//! a `super::` inside an inline module (`mod avx2 { … }`) is read as its file's: at worst a tie
//! that is not there, which would show in the lists below rather than hide one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Known ties between top-level modules that the redesign (issue 15) is removing: mutual ones
/// as `"a <-> b"`, a lower layer naming a higher one as `"lower -> higher"`.
const KNOWN_EXCEPTIONS: &[&str] = &[];

/// Known circles between the files of one folder, as `"folder: file, file, …"` (file stems,
/// sorted; `mod` is the folder's root file).
// On its way out (from the merges of 2026-12-03): `inference` plans predict over `mod`'s
// `Network` and `graph`'s `Source`, which `mod` and `graph` name back, and `inference_mobilenet`
// extends `Network` with MobileNet's fusions that `inference`'s plan names (move the network's
// description into `graph` and have `mod` only hold it).
const KNOWN_FILE_CIRCLES: &[&str] = &["model: graph, inference, inference_mobilenet, mod"];

/// The foundation of the stack: numbers, their storage and their derivatives. It names no
/// module of [`MIDDLE`] or [`HIGHER`].
const LOWER: &[&str] = &["error", "rng", "limits", "kernels", "tensor", "autograd"];

/// The building blocks a model is made of, on top of [`LOWER`]: they name no module of
/// [`HIGHER`].
const MIDDLE: &[&str] = &[
    "layers",
    "losses",
    "optimizers",
    "activations",
    "initializers",
    "regularizers",
    "metrics",
];

/// Modules that build on the model and everything under it.
const HIGHER: &[&str] = &[
    "model",
    "io",
    "data",
    "datasets",
    "callbacks",
    "plot",
    "distributed",
    "run",
    "applications",
];

/// The tiers of the stack, lowest first: a module may name its own tier's modules and lower
/// ones, never a higher tier's.
const TIERS: &[&[&str]] = &[LOWER, MIDDLE, HIGHER];

#[test]
fn no_module_names_a_module_that_names_it_back_or_one_above_it() {
    let crate_map = CrateMap::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let edges = crate_map.module_edges();
    let mut found = BTreeSet::new();
    for (from, to) in &edges {
        if from < to && edges.contains(&(to.clone(), from.clone())) {
            found.insert(format!("{from} <-> {to}"));
        }
        if tier(from).zip(tier(to)).is_some_and(|(low, high)| low < high) {
            found.insert(format!("{from} -> {to}"));
        }
    }
    assert_matches_known("module ties", &found, KNOWN_EXCEPTIONS);
}

#[test]
fn no_circle_between_the_files_of_a_folder() {
    let crate_map = CrateMap::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let mut found = BTreeSet::new();
    for (folder, edges) in crate_map.file_edges() {
        for circle in circles(&edges) {
            found.insert(format!("{folder}: {}", circle.join(", ")));
        }
    }
    assert_matches_known("file circles", &found, KNOWN_FILE_CIRCLES);
}

#[test]
fn the_scan_reads_grouped_renamed_and_inline_paths() {
    let code = "use super::{ops::{self, Op}, tape::Graph as G};\nlet x = crate::kernels::fill(y);";
    let paths: Vec<String> = relative_paths(code).iter().map(|p| p.join("::")).collect();
    let expected = [
        "super::ops",
        "super::ops::Op",
        "super::tape::G",
        "super::tape::Graph",
        "crate::kernels::fill",
    ];
    assert_eq!(paths, expected);
}

/// The position in [`TIERS`] of a top-level module, if it has one.
fn tier(module: &str) -> Option<usize> {
    TIERS.iter().position(|modules| modules.contains(&module))
}

/// Fails, naming both differences, unless `found` is exactly `known`.
fn assert_matches_known(what: &str, found: &BTreeSet<String>, known: &[&str]) {
    let known: BTreeSet<String> = known.iter().map(|s| s.to_string()).collect();
    let new: Vec<_> = found.difference(&known).collect();
    let gone: Vec<_> = known.difference(found).collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "{what}: new (remove them, or list them if they are on their way out): {new:#?}\n\
         listed but no longer found (take them off the list): {gone:#?}"
    );
}

/// One source file: its module path (`["autograd", "ops"]`) and its code without comments
/// and tests.
struct SourceFile {
    module: Vec<String>,
    code: String,
    /// Whether the file is the root of a folder of files (`mod.rs`, or `x.rs` beside `x/`).
    is_root: bool,
}

/// Every library source file, by module path.
struct CrateMap {
    files: BTreeMap<Vec<String>, SourceFile>,
}

impl CrateMap {
    fn read(src: PathBuf) -> Self {
        let mut files = BTreeMap::new();
        for path in rust_files(&src) {
            let relative = path.strip_prefix(&src).expect("found under src");
            let mut module: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if module.first().is_some_and(|m| m == "bin") || module == ["lib"] || module == ["main"] {
                continue;
            }
            let is_mod_rs = module.last().is_some_and(|m| m == "mod");
            if is_mod_rs {
                module.pop();
            }
            let is_root = is_mod_rs || path.with_extension("").is_dir();
            let text = std::fs::read_to_string(&path).expect("source file readable");
            let code = without_tests(&without_comments(&text));
            files.insert(module.clone(), SourceFile { module, code, is_root });
        }
        CrateMap { files }
    }

    /// `(from, to)` for each top-level module `from` that names another, `to`.
    fn module_edges(&self) -> BTreeSet<(String, String)> {
        let mut edges = BTreeSet::new();
        for file in self.files.values() {
            for path in self.paths_named(file, true) {
                if let Some(target) = path.first()
                    && *target != file.module[0]
                    && self.files.contains_key(std::slice::from_ref(target))
                {
                    edges.insert((file.module[0].clone(), target.clone()));
                }
            }
        }
        edges
    }

    /// Per folder (`"autograd"`, `"data/text"`), the edges between its files' stems.
    fn file_edges(&self) -> BTreeMap<String, BTreeSet<(String, String)>> {
        let mut folders: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
        for file in self.files.values() {
            let paths: Vec<Vec<String>> = self.paths_named(file, false).iter().map(|p| self.resolve(p)).collect();
            // Every folder the file sits in, at any depth (a root file heads its own folder).
            let depth = if file.is_root {
                file.module.len()
            } else {
                file.module.len() - 1
            };
            for folder in (1..=depth).map(|d| &file.module[..d]) {
                let from = stem_in(folder, &file.module);
                for target in paths.iter().filter(|t| t.starts_with(folder)) {
                    let to = stem_in(folder, target);
                    if from != to {
                        folders.entry(folder.join("/")).or_default().insert((from.clone(), to));
                    }
                }
            }
        }
        folders
    }

    /// The file (module path) that a path names: the longest module prefix, then one step into
    /// a child when the root file re-exports the named item from it.
    fn resolve(&self, path: &[String]) -> Vec<String> {
        let mut length = path.len();
        while length > 0 && !self.files.contains_key(&path[..length]) {
            length -= 1;
        }
        let module = path[..length].to_vec();
        if let (Some(root), Some(name)) = (self.files.get(&module), path.get(length))
            && let Some(child) = reexported_from(&root.code, name)
        {
            let mut child_module = module.clone();
            child_module.push(child);
            if self.files.contains_key(&child_module) {
                return child_module;
            }
        }
        module
    }

    /// The absolute paths (`["autograd", "ops", "sigmoid"]`) a file names. `with_reexports`:
    /// whether a root file's `pub use child::…` counts (it does between modules, not between
    /// the files of its folder).
    fn paths_named(&self, file: &SourceFile, with_reexports: bool) -> Vec<Vec<String>> {
        let children: BTreeSet<&str> = self
            .files
            .keys()
            .filter(|m| m.len() == file.module.len() + 1 && m[..file.module.len()] == file.module[..])
            .map(|m| m[file.module.len()].as_str())
            .collect();
        let mut paths = Vec::new();
        for (kind, statement) in statements(&file.code) {
            for relative in relative_paths(statement) {
                let absolute = match relative[0].as_str() {
                    "crate" | "$crate" => Some(relative[1..].to_vec()),
                    "super" => {
                        let supers = relative.iter().take_while(|s| *s == "super").count();
                        let base = file.module.len().checked_sub(supers);
                        base.map(|b| [&file.module[..b], &relative[supers..]].concat())
                    }
                    "self" => Some([&file.module[..], &relative[1..]].concat()),
                    child if file.is_root && children.contains(child) && kind != Statement::Declaration => {
                        (with_reexports || kind != Statement::Reexport)
                            .then(|| [&file.module[..], &relative[..]].concat())
                    }
                    _ => None,
                };
                if let Some(path) = absolute.filter(|p| !p.is_empty()) {
                    paths.push(path);
                }
            }
        }
        paths
    }
}

/// The child module a root file re-exports `name` from (`pub use ops::{Op, UnaryOp}`,
/// `pub(crate) use conv::window as conv_window`), if it does by name.
fn reexported_from(root_code: &str, name: &str) -> Option<String> {
    let reexports = statements(root_code)
        .into_iter()
        .filter(|(kind, _)| *kind == Statement::Reexport);
    reexports
        .flat_map(|(_, statement)| relative_paths(statement))
        .find_map(|path| {
            let exported = path.last()?;
            (*exported == name && path.len() > 2).then(|| path[1].clone())
        })
}

/// What a piece of code between two `;` is, as far as naming modules goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Statement {
    /// `pub use …` or `pub(crate) use …`: a folder's face.
    Reexport,
    /// `mod x` or `pub mod x`.
    Declaration,
    /// Anything else (private `use`, code).
    Other,
}

/// The code split at `;` and at the start of each `use`/`mod` item, each piece classified.
fn statements(code: &str) -> Vec<(Statement, &str)> {
    let mut pieces = Vec::new();
    for chunk in code.split(';') {
        let mut offset = 0;
        let item = chunk.lines().find_map(|line| {
            let start = offset;
            offset += line.len() + 1;
            let line = line.trim_start();
            let kind = if ["pub use ", "pub(crate) use ", "pub(super) use "]
                .iter()
                .any(|k| line.starts_with(k))
            {
                Statement::Reexport
            } else if line.starts_with("mod ") || line.starts_with("pub mod ") || line.starts_with("pub(crate) mod ") {
                Statement::Declaration
            } else {
                return None;
            };
            Some((kind, start))
        });
        match item {
            Some((kind, start)) => {
                pieces.push((Statement::Other, &chunk[..start]));
                pieces.push((kind, &chunk[start..]));
            }
            None => pieces.push((Statement::Other, chunk)),
        }
    }
    pieces
}

/// Every path in a piece of code, braces expanded: `super::{a, b::c}` gives `super::a` and
/// `super::b::c`; `x as y` gives the path `…::y` as well, so re-exports resolve by either name.
fn relative_paths(code: &str) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut paths = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !is_ident(bytes[i - 1]) && bytes[i - 1] != b':';
        if starts_word && is_ident(bytes[i]) {
            let (prefix, end) = path_at(code, i);
            if code[end..].starts_with("::{") {
                let (group, after) = braced(code, end + 2);
                for mut inner in relative_paths_of_group(group) {
                    let mut full = prefix.clone();
                    full.append(&mut inner);
                    paths.push(full);
                }
                i = after;
                continue;
            }
            if prefix.len() > 1 {
                paths.push(prefix);
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    paths
}

/// The items of a `{…}` group, each a path (with `self` meaning the group's prefix).
fn relative_paths_of_group(group: &str) -> Vec<Vec<String>> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    let mut paths = Vec::new();
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let (name, alias) = match item.split_once(" as ") {
            Some((name, alias)) => (name.trim(), Some(alias.trim())),
            None => (item, None),
        };
        if name.contains('{') {
            paths.extend(relative_paths(name));
            continue;
        }
        let path: Vec<String> = name.split("::").map(str::to_string).filter(|s| s != "self").collect();
        if let Some(alias) = alias {
            let mut aliased = path[..path.len().saturating_sub(1)].to_vec();
            aliased.push(alias.to_string());
            paths.push(aliased);
        }
        paths.push(path);
    }
    paths
}

/// The segments of the path starting at `start` (`a::b::c`) and where it ends.
fn path_at(code: &str, start: usize) -> (Vec<String>, usize) {
    let bytes = code.as_bytes();
    let mut segments = Vec::new();
    let mut i = start;
    loop {
        let begin = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        segments.push(code[begin..i].to_string());
        if code[i..].starts_with("::") && code[i + 2..].bytes().next().is_some_and(is_ident) {
            i += 2;
        } else {
            return (segments, i);
        }
    }
}

/// The text inside the braces that open at `open`, and the index after the closing one.
fn braced(code: &str, open: usize) -> (&str, usize) {
    let mut depth = 0;
    for (i, c) in code[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return (&code[open + 1..open + i], open + i + 1);
                }
            }
            _ => {}
        }
    }
    (&code[open + 1..], code.len())
}

fn is_ident(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$'
}

/// `text` without `//` comments (doc comments included: their links are not imports).
fn without_comments(text: &str) -> String {
    let lines = text.lines().map(|line| match line.find("//") {
        Some(at) => &line[..at],
        None => line,
    });
    lines.collect::<Vec<_>>().join("\n")
}

/// `code` up to its `#[cfg(test)] mod …` (unit tests sit at the end of a file and may name
/// anything).
fn without_tests(code: &str) -> String {
    let mut kept = Vec::new();
    let mut lines = code.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" && lines.peek().is_some_and(|next| next.trim_start().starts_with("mod ")) {
            break;
        }
        kept.push(line);
    }
    kept.join("\n")
}

/// A file's name within `folder`: `mod` for the folder's root, else its first segment below.
fn stem_in(folder: &[String], module: &[String]) -> String {
    module.get(folder.len()).cloned().unwrap_or_else(|| "mod".into())
}

/// The `.rs` files under `dir`, recursively, in a stable order.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("src readable")
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    let mut files = Vec::new();
    for path in entries {
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The circles of a directed graph: each strongly connected set of two or more nodes, sorted.
fn circles(edges: &BTreeSet<(String, String)>) -> Vec<Vec<String>> {
    let nodes: BTreeSet<&String> = edges.iter().flat_map(|(a, b)| [a, b]).collect();
    let reaches = |from: &String| {
        let mut seen = BTreeSet::from([from.clone()]);
        let mut stack = vec![from.clone()];
        while let Some(node) = stack.pop() {
            for (_, to) in edges.iter().filter(|(a, _)| *a == node) {
                if seen.insert(to.clone()) {
                    stack.push(to.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> = nodes.iter().map(|n| (*n, reaches(n))).collect();
    let mut found = BTreeSet::new();
    for node in &nodes {
        let circle: Vec<String> = nodes
            .iter()
            .filter(|other| reach[node].contains(**other) && reach[**other].contains(*node))
            .map(|n| n.to_string())
            .collect();
        if circle.len() > 1 {
            found.insert(circle);
        }
    }
    found.into_iter().collect()
}
