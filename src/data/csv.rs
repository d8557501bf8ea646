//! Numeric tables from CSV files: feature columns and one label column (numbers, or class
//! names such as `setosa`, read as class indices).

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::path::Path;

/// Which column holds the labels.
#[derive(Clone, Debug)]
pub enum LabelColumn {
    /// By header name.
    Name(String),
    /// By 0-based position.
    Index(usize),
    /// The last column.
    Last,
}

/// What to do with `NaN` and infinite values in a table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NonFinite {
    /// An error naming the row and column: one NaN feature silently poisons training (a ReLU
    /// turns it into 0 in the forward pass while the weights it touches become NaN).
    #[default]
    Reject,
    /// Read them as they are, for data whose model handles them.
    Allow,
}

/// Reads a CSV file with a header row into `(x, y)`: `x` `(rows, features)` from every column
/// but the label column, `y` `(rows)` from the label column. Every value must be a finite
/// number (see [`load_csv_with`] to allow NaN and infinities).
pub fn load_csv(path: impl AsRef<Path>, label: LabelColumn) -> Result<(Tensor, Tensor)> {
    load_csv_with(path, label, NonFinite::Reject)
}

/// [`load_csv`], with NaN and infinite values rejected or allowed as `non_finite` says. Text
/// labels become class indices as [`load_csv_classes`] numbers them (their names are dropped).
pub fn load_csv_with(path: impl AsRef<Path>, label: LabelColumn, non_finite: NonFinite) -> Result<(Tensor, Tensor)> {
    load_csv_classes(path, label, non_finite, None).map(|(x, y, _)| (x, y))
}

/// [`load_csv_with`] for a label column that may hold text (`setosa`, `versicolor`): labels that
/// are numbers are read as they are (and no names come back; a word among them is an error
/// naming its line); labels that are all text become the index of their name in `classes` when
/// given (a name outside it is an error naming the line), or else in the sorted list of the
/// names found, which comes back as the third value.
pub fn load_csv_classes(
    path: impl AsRef<Path>,
    label: LabelColumn,
    non_finite: NonFinite,
    classes: Option<&[String]>,
) -> Result<(Tensor, Tensor, Option<Vec<String>>)> {
    let path = path.as_ref();
    let mut reader = csv::Reader::from_path(path).map_err(|e| Error::file(path, format!("cannot open ({e})")))?;
    let headers = reader
        .headers()
        .map_err(|e| Error::file(path, format!("cannot read the header row ({e})")))?
        .clone();
    let label_index = label_column(path, &headers, &label)?;
    let (mut features, mut labels) = (Vec::new(), Vec::new());
    for (row, record) in reader.records().enumerate() {
        let line = row + 2;
        let record = record.map_err(|e| Error::file(path, format!("line {line}: {e}")))?;
        if record.len() != headers.len() {
            return Err(Error::file(
                path,
                format!(
                    "line {line} has {} fields, the header has {}",
                    record.len(),
                    headers.len()
                ),
            ));
        }
        for (column, field) in record.iter().enumerate() {
            if column == label_index {
                labels.push(field.trim().to_string());
            } else {
                features.push(number(path, line, &headers[column], field, non_finite)?);
            }
        }
    }
    if labels.is_empty() {
        return Err(Error::file(path, "no data rows after the header"));
    }
    let rows = labels.len();
    let (y, names) = encode_labels(path, &headers[label_index], &labels, non_finite, classes)?;
    Ok((
        Tensor::from_vec(vec![rows, headers.len() - 1], features)?,
        Tensor::from_vec(vec![rows], y)?,
        names,
    ))
}

/// The index of the label column among `headers`.
fn label_column(path: &Path, headers: &csv::StringRecord, label: &LabelColumn) -> Result<usize> {
    match label {
        LabelColumn::Name(name) => headers.iter().position(|h| h.trim() == name).ok_or_else(|| {
            Error::file(
                path,
                format!(
                    "no column named '{name}'; the columns are: {}",
                    headers.iter().collect::<Vec<_>>().join(", ")
                ),
            )
        }),
        LabelColumn::Index(i) if *i < headers.len() => Ok(*i),
        LabelColumn::Index(i) => Err(Error::file(
            path,
            format!("label column {i} is past the {} columns", headers.len()),
        )),
        LabelColumn::Last => headers
            .len()
            .checked_sub(1)
            .ok_or_else(|| Error::file(path, "the file has no columns")),
    }
}

/// A cell as a number; text, and NaN or infinities unless allowed, are errors naming the cell.
fn number(path: &Path, line: usize, column: &str, field: &str, non_finite: NonFinite) -> Result<f32> {
    let value: f32 = field.trim().parse().map_err(|_| {
        Error::file(
            path,
            format!("line {line}, column '{column}': '{field}' is not a number"),
        )
    })?;
    if !value.is_finite() && non_finite == NonFinite::Reject {
        return Err(Error::file(
            path,
            format!(
                "line {line}, column '{column}': '{}' is not a finite float32 number (allow NaN and infinities \
                 with --allow-nonfinite)",
                field.trim()
            ),
        ));
    }
    Ok(value)
}

/// The label cells as numbers: read as they are when no `classes` are given and they are
/// numbers (a column of numbers with a stray word is an error naming it), otherwise as indices
/// of their names (in `classes`, or in the sorted names found).
fn encode_labels(
    path: &Path,
    column: &str,
    labels: &[String],
    non_finite: NonFinite,
    classes: Option<&[String]>,
) -> Result<(Vec<f32>, Option<Vec<String>>)> {
    let numbers = labels.iter().filter(|l| l.parse::<f32>().is_ok()).count();
    if classes.is_none() && numbers > 0 {
        // All numbers, or a typo among numbers: text classes must be text throughout, or one
        // stray cell would renumber every label.
        let values = labels
            .iter()
            .enumerate()
            .map(|(row, l)| number(path, row + 2, column, l, non_finite))
            .collect::<Result<_>>()?;
        return Ok((values, None));
    }
    let names: Vec<String> = match classes {
        Some(names) => names.to_vec(),
        None => labels
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .cloned()
            .collect(),
    };
    let index: std::collections::HashMap<&str, usize> =
        names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let values = labels
        .iter()
        .enumerate()
        .map(|(row, l)| {
            index.get(l.as_str()).map(|&i| i as f32).ok_or_else(|| {
                Error::file(
                    path,
                    format!(
                        "line {}, column '{column}': '{l}' is not one of the model's classes ({})",
                        row + 2,
                        names.join(", ")
                    ),
                )
            })
        })
        .collect::<Result<_>>()?;
    Ok((values, Some(names)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_features_and_labels_and_reports_bad_cells() {
        let dir = std::env::temp_dir().join(format!("strata-csv-{}", crate::fs::test_run_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.csv");
        std::fs::write(&good, "a,label,b\n1,0,2\n3,1,4\n").unwrap();
        let (x, y) = load_csv(&good, LabelColumn::Name("label".into())).unwrap();
        assert_eq!(x.shape(), &[2, 2]);
        assert_eq!(x.data(), &[1., 2., 3., 4.]);
        assert_eq!(y.data(), &[0., 1.]);
        let bad = dir.join("bad.csv");
        std::fs::write(&bad, "a,label\n1,0\nx,1\n").unwrap();
        let message = load_csv(&bad, LabelColumn::Last).unwrap_err().to_string();
        assert!(
            message.contains("line 3") && message.contains("'x' is not a number"),
            "{message}"
        );
    }

    #[test]
    fn text_labels_become_sorted_class_indices_with_their_names() {
        let dir = std::env::temp_dir().join(format!("strata-csv-classes-{}", crate::fs::test_run_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("iris.csv");
        std::fs::write(&path, "a,species\n1,virginica\n2,setosa\n3,virginica\n").unwrap();
        let (x, y, names) = load_csv_classes(&path, LabelColumn::Last, NonFinite::Reject, None).unwrap();
        assert_eq!(x.data(), &[1., 2., 3.]);
        assert_eq!(y.data(), &[1., 0., 1.]);
        assert_eq!(names.unwrap(), ["setosa", "virginica"]);
        // Known classes number the labels, even ones this table lacks; others are errors.
        let known = ["versicolor", "virginica", "setosa"].map(String::from);
        let (_, y, _) = load_csv_classes(&path, LabelColumn::Last, NonFinite::Reject, Some(&known)).unwrap();
        assert_eq!(y.data(), &[1., 2., 1.]);
        let message = load_csv_classes(&path, LabelColumn::Last, NonFinite::Reject, Some(&known[..2]))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("line 3, column 'species': 'setosa' is not one"),
            "{message}"
        );
        // A word among numbers is a typo, not a class.
        std::fs::write(&path, "a,label\n1,0\n2,1\n3,l\n").unwrap();
        let message = load_csv_classes(&path, LabelColumn::Last, NonFinite::Reject, None)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("line 4, column 'label': 'l' is not a number"),
            "{message}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn non_finite_values_are_errors_naming_row_and_column_unless_allowed() {
        let dir = std::env::temp_dir().join(format!("strata-csv-nan-{}", crate::fs::test_run_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nan.csv");
        for (cell, shown) in [("NaN", "NaN"), ("inf", "inf"), ("-1e39", "'-1e39'")] {
            std::fs::write(&path, format!("a,b,label\n1,2,0\n3,{cell},1\n")).unwrap();
            let message = load_csv(&path, LabelColumn::Last).unwrap_err().to_string();
            assert!(
                message.contains("nan.csv") && message.contains("line 3, column 'b'") && message.contains(shown),
                "{message}"
            );
            let (x, _) = load_csv_with(&path, LabelColumn::Last, NonFinite::Allow).unwrap();
            assert!(!x.data()[3].is_finite());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
