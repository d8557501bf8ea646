//! Numeric tables from CSV files: feature columns and one label column.

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

/// [`load_csv`], with NaN and infinite values rejected or allowed as `non_finite` says.
pub fn load_csv_with(path: impl AsRef<Path>, label: LabelColumn, non_finite: NonFinite) -> Result<(Tensor, Tensor)> {
    let path = path.as_ref();
    let mut reader = csv::Reader::from_path(path).map_err(|e| Error::file(path, format!("cannot open ({e})")))?;
    let headers = reader
        .headers()
        .map_err(|e| Error::file(path, format!("cannot read the header row ({e})")))?
        .clone();
    let label_index = match &label {
        LabelColumn::Name(name) => headers.iter().position(|h| h.trim() == name).ok_or_else(|| {
            Error::file(
                path,
                format!(
                    "no column named '{name}'; the columns are: {}",
                    headers.iter().collect::<Vec<_>>().join(", ")
                ),
            )
        })?,
        LabelColumn::Index(i) if *i < headers.len() => *i,
        LabelColumn::Index(i) => {
            return Err(Error::file(
                path,
                format!("label column {i} is past the {} columns", headers.len()),
            ));
        }
        LabelColumn::Last => headers
            .len()
            .checked_sub(1)
            .ok_or_else(|| Error::file(path, "the file has no columns"))?,
    };
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
            let value: f32 = field.trim().parse().map_err(|_| {
                Error::file(
                    path,
                    format!("line {line}, column '{}': '{field}' is not a number", &headers[column]),
                )
            })?;
            if !value.is_finite() && non_finite == NonFinite::Reject {
                return Err(Error::file(
                    path,
                    format!(
                        "line {line}, column '{}': {value} is not a finite number (allow NaN and \
                         infinities with --allow-nonfinite)",
                        &headers[column]
                    ),
                ));
            }
            if column == label_index {
                labels.push(value)
            } else {
                features.push(value)
            }
        }
    }
    if labels.is_empty() {
        return Err(Error::file(path, "no data rows after the header"));
    }
    let rows = labels.len();
    Ok((
        Tensor::from_vec(vec![rows, headers.len() - 1], features)?,
        Tensor::from_vec(vec![rows], labels)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_features_and_labels_and_reports_bad_cells() {
        let dir = std::env::temp_dir().join(format!("strata-csv-{}", std::process::id()));
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
    fn non_finite_values_are_errors_naming_row_and_column_unless_allowed() {
        let dir = std::env::temp_dir().join(format!("strata-csv-nan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nan.csv");
        for (cell, shown) in [("NaN", "NaN"), ("inf", "inf"), ("-1e39", "-inf")] {
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
