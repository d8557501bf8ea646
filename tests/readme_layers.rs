//! The README's table of layer classes is made from the layer registry, so the two cannot drift
//! apart: this test renders the table and checks that the README holds exactly that between its
//! markers. `STRATA_UPDATE_README=1 cargo test --test readme_layers` rewrites the block.

use strata::layers::REGISTRY;

const START: &str = "<!-- layers:start -->";
const END: &str = "<!-- layers:end -->";

/// The block between the markers: one row per group, in registry order.
fn rendered_table() -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for entry in REGISTRY {
        match groups.iter_mut().find(|(group, _)| *group == entry.group) {
            Some((_, classes)) => classes.push(entry.class_name),
            None => groups.push((entry.group, vec![entry.class_name])),
        }
    }
    let mut table = String::from(
        "Layer classes a model file may name (generated from `strata::layers::REGISTRY`):\n\n\
         | Group | Classes |\n|---|---|\n",
    );
    for (group, classes) in groups {
        let classes: Vec<String> = classes.iter().map(|c| format!("`{c}`")).collect();
        table.push_str(&format!("| {group} | {} |\n", classes.join(", ")));
    }
    table
}

#[test]
fn the_readme_lists_exactly_the_registered_layers() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("README.md readable");
    let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md needs the markers {START} and {END} around the table of layers");
    };
    let current = &readme[start + START.len()..end];
    let expected = format!("\n{}", rendered_table());
    if current == expected {
        return;
    }
    if std::env::var_os("STRATA_UPDATE_README").is_some() {
        let updated = format!("{}{expected}{}", &readme[..start + START.len()], &readme[end..]);
        std::fs::write(path, updated).expect("README.md writable");
        return;
    }
    panic!(
        "README.md's table of layers differs from the registry; regenerate it with \
         `STRATA_UPDATE_README=1 cargo test --test readme_layers`.\nExpected:\n{expected}"
    );
}
