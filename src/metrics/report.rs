//! The text form of a [`ConfusionMatrix`]: scikit-learn's `classification_report` layout,
//! then the matrix itself, for `strata evaluate` to print.

use super::confusion::{ClassScores, ConfusionMatrix};
use std::fmt::{self, Write};

const HEADERS: [&str; 4] = ["precision", "recall", "f1-score", "support"];
/// The longest row heading of the report; the name column is at least this wide.
const LONGEST_HEADING: &str = "weighted avg";

impl ConfusionMatrix {
    /// The classification report with scores to `digits` decimals, laid out as scikit-learn's
    /// `classification_report(y_true, y_pred, digits=digits)`, followed by the matrix with true
    /// classes as rows and predicted classes as columns.
    pub fn report(&self, digits: usize) -> String {
        let mut text = String::new();
        let names = self.class_names();
        let width = names
            .iter()
            .map(|n| n.chars().count())
            .chain([LONGEST_HEADING.len(), digits])
            .max()
            .unwrap_or(0);
        // Writing into a String cannot fail.
        let _ = write!(text, "{:>width$} ", "");
        for header in HEADERS {
            let _ = write!(text, " {header:>9}");
        }
        text.push_str("\n\n");
        for (name, scores) in names.iter().zip(self.per_class()) {
            score_row(&mut text, name, &scores, width, digits);
        }
        text.push('\n');
        let _ = writeln!(
            text,
            "{:>width$}  {:>9} {:>9} {:>9.digits$} {:>9}",
            "accuracy",
            "",
            "",
            self.accuracy(),
            self.total()
        );
        score_row(&mut text, "macro avg", &self.macro_average(), width, digits);
        score_row(&mut text, LONGEST_HEADING, &self.weighted_average(), width, digits);
        text.push('\n');
        self.write_matrix(&mut text);
        text
    }

    /// The counts as a table, true classes down the side and predicted classes across.
    fn write_matrix(&self, text: &mut String) {
        let names = self.class_names();
        let widest_count = self.counts().iter().flatten().max().map_or(1, |c| c.to_string().len());
        let widest_name = names.iter().map(|n| n.chars().count()).max().unwrap_or(1);
        let cell = widest_count.max(widest_name) + 2;
        let side = widest_name;
        let _ = writeln!(text, "confusion matrix (rows: true class, columns: predicted class)");
        let _ = write!(text, "{:>side$}", "");
        for name in names {
            let _ = write!(text, "{name:>cell$}");
        }
        text.push('\n');
        for (name, row) in names.iter().zip(self.counts()) {
            let _ = write!(text, "{name:>side$}");
            for count in row {
                let _ = write!(text, "{count:>cell$}");
            }
            text.push('\n');
        }
    }
}

fn score_row(text: &mut String, name: &str, scores: &ClassScores, width: usize, digits: usize) {
    let _ = writeln!(
        text,
        "{name:>width$}  {:>9.digits$} {:>9.digits$} {:>9.digits$} {:>9}",
        scores.precision, scores.recall, scores.f1_score, scores.support
    );
}

/// The report with two decimals, scikit-learn's default.
impl fmt::Display for ConfusionMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.report(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_matches_scikit_learn_layout_and_hand_computed_scores() {
        // y_true = [0,0,1,1,2,2,2,2], y_pred = [0,1,1,1,2,0,2,1]: precision 1/2, 2/4, 2/2;
        // recall 1/2, 2/2, 2/4; accuracy 5/8; weighted precision 6/8. The first block is
        // byte for byte what scikit-learn 1.x prints for the same labels.
        let matrix = ConfusionMatrix::from_indices(&[0, 0, 1, 1, 2, 2, 2, 2], &[0, 1, 1, 1, 2, 0, 2, 1], 3).unwrap();
        let expected = "              precision    recall  f1-score   support

           0       0.50      0.50      0.50         2
           1       0.50      1.00      0.67         2
           2       1.00      0.50      0.67         4

    accuracy                           0.62         8
   macro avg       0.67      0.67      0.61         8
weighted avg       0.75      0.62      0.62         8

confusion matrix (rows: true class, columns: predicted class)
   0  1  2
0  1  1  0
1  0  2  0
2  1  1  2
";
        assert_eq!(matrix.to_string(), expected);
    }

    #[test]
    fn long_class_names_widen_the_columns() {
        let matrix = ConfusionMatrix::from_indices(&[0, 1, 1], &[0, 1, 0], 2)
            .unwrap()
            .with_class_names(&["a long class name", "b"])
            .unwrap();
        // Class "a long class name": precision 1/2, recall 1/1; "b": precision 1/1, recall 1/2.
        let expected = "                   precision    recall  f1-score   support

a long class name     0.5000    1.0000    0.6667         1
                b     1.0000    0.5000    0.6667         2

         accuracy                         0.6667         3
        macro avg     0.7500    0.7500    0.6667         3
     weighted avg     0.8333    0.6667    0.6667         3

confusion matrix (rows: true class, columns: predicted class)
                   a long class name                  b
a long class name                  1                  0
                b                  1                  1
";
        assert_eq!(matrix.report(4), expected);
    }
}
