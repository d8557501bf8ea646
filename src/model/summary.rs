//! Keras 3's `model.summary()` table.

use super::Model;
use super::plan::Plan;
use crate::error::{Result, keras_shape};

const WIDTHS: [usize; 3] = [33, 24, 15];
/// Keras's functional summary has a fourth column, "Connected to".
const FUNCTIONAL_WIDTHS: [usize; 4] = [26, 22, 12, 32];

impl Model {
    /// Keras's `model.summary()` table as text, for the shapes the model is built for or
    /// else the input shapes it declares (without them: `?` shapes and no weights). Comes
    /// from the layers' shape inference, not from building: it makes no weight, so the
    /// summary of a model too large for the machine is still printed.
    pub fn summary(&mut self) -> Result<String> {
        let input_shapes = match self.network.input_shapes.is_empty() {
            false => Some(self.network.input_shapes.clone()),
            true => self.declared_input_shapes(),
        };
        match input_shapes {
            Some(shapes) => self.summary_for(&shapes.iter().map(Vec::as_slice).collect::<Vec<_>>()),
            None => Ok(render(self, None)),
        }
    }

    /// [`Model::summary`] for per-sample `input_shapes` (one per input), built or not.
    pub fn summary_for(&self, input_shapes: &[&[usize]]) -> Result<String> {
        self.check_buildable(input_shapes)?;
        Ok(render(self, Some(&self.plan(input_shapes)?)))
    }
}

/// The per-sample shape of output `output` and the weights of layer `layer` as the summary
/// prints them (`?` and 0 without a plan).
fn shape_and_count(plan: Option<&Plan>, output: Option<usize>, layer: usize) -> (String, usize) {
    let shape = plan
        .zip(output)
        .and_then(|(plan, o)| plan.output_shapes.get(o))
        .map_or("?".to_string(), |s| keras_shape(s));
    (shape, plan.map_or(0, |plan| plan.layer_params[layer].0))
}

/// The summary of a model as text.
fn render(model: &Model, plan: Option<&Plan>) -> String {
    if model.network.functional {
        return render_functional(model, plan);
    }
    let mut out = format!("Model: \"{}\"\n", model.name);
    out += &rule('┏', '┳', '┓', '━');
    out += &row(&["Layer (type)", "Output Shape", "Param #"], '┃');
    out += &rule('┡', '╇', '┩', '━');
    let visible: Vec<usize> = (0..model.network.layers.len())
        .filter(|&i| !model.network.layers[i].is_input())
        .collect();
    for (n, &i) in visible.iter().enumerate() {
        let layer = &model.network.layers[i];
        let (shape, count) = shape_and_count(plan, Some(i), i);
        let names = name_lines(layer.name(), &class_label(model, i), WIDTHS[0]);
        out += &row(&[&names[0], &shape, &group_thousands(count)], '│');
        for more in &names[1..] {
            out += &row(&[more, "", ""], '│');
        }
        if n + 1 < visible.len() {
            out += &rule('├', '┼', '┤', '─');
        }
    }
    out += &rule('└', '┴', '┘', '─');
    out + &totals(plan) + &nested_model_lines(model, plan) + &quantized_sizes(model)
}

/// A functional model: one row per layer, with the calls it reads from ("connected to").
fn render_functional(model: &Model, plan: Option<&Plan>) -> String {
    let widths = FUNCTIONAL_WIDTHS;
    let line = |left: char, middle: char, right: char, fill: char| {
        let cells: Vec<String> = widths.iter().map(|&w| fill.to_string().repeat(w)).collect();
        format!("{left}{}{right}\n", cells.join(&middle.to_string()))
    };
    let cells = |texts: [&str; 4], bar: char| {
        format!(
            "{bar} {:<a$}{bar} {:<b$}{bar} {:>c$} {bar} {:<d$}{bar}\n",
            texts[0],
            texts[1],
            texts[2],
            texts[3],
            a = widths[0] - 1,
            b = widths[1] - 1,
            c = widths[2] - 2,
            d = widths[3] - 1
        )
    };
    let mut out = format!("Model: \"{}\"\n", model.name);
    out += &line('┏', '┳', '┓', '━');
    out += &cells(["Layer (type)", "Output Shape", "Param #", "Connected to"], '┃');
    out += &line('┡', '╇', '┩', '━');
    for (index, layer) in model.network.layers.iter().enumerate() {
        let calls: Vec<usize> = (0..model.network.calls.len())
            .filter(|&c| model.network.calls[c].layer == index)
            .collect();
        let first_output = calls.first().map(|&c| model.network.calls[c].first_output);
        let (shape, count) = shape_and_count(plan, first_output, index);
        let mut connected: Vec<String> = calls
            .iter()
            .flat_map(|&c| model.inbound(&model.network.calls[c]))
            .collect();
        if connected.is_empty() {
            connected.push("-".into());
        }
        let names = name_lines(layer.name(), &class_label(model, index), widths[0]);
        let count = group_thousands(count);
        for line in 0..names.len().max(connected.len()) {
            let name = names.get(line).map_or("", String::as_str);
            let connection = connected.get(line).map_or("", String::as_str);
            let (shape, count) = if line == 0 {
                (shape.as_str(), count.as_str())
            } else {
                ("", "")
            };
            out += &cells([name, shape, count, connection], '│');
        }
        if index + 1 < model.network.layers.len() {
            out += &line('├', '┼', '┤', '─');
        }
    }
    out += &line('└', '┴', '┘', '─');
    out + &totals(plan) + &nested_model_lines(model, plan) + &quantized_sizes(model)
}

/// The class name, with `int8` or `f32` after it in a quantized model (for layers with weights).
fn class_label(model: &Model, layer: usize) -> String {
    let class_name = model.network.layers[layer].class_name();
    let params = model.network.layers[layer].params();
    if !model.params.is_quantized() || params.is_empty() {
        return class_name.to_string();
    }
    match params.iter().any(|&id| model.params.quantized(id).is_some()) {
        true => format!("{class_name}, int8"),
        false => format!("{class_name}, f32"),
    }
}

/// For a quantized model, the bytes its weights take now (int8 values, f32 scales and the
/// weights left f32) beside their f32 size.
fn quantized_sizes(model: &Model) -> String {
    if !model.params.is_quantized() {
        return String::new();
    }
    let (mut int8, mut scales, mut float) = (0usize, 0usize, 0usize);
    for id in model.params.ids() {
        match model.params.quantized(id) {
            Some(kernel) => {
                int8 += kernel.values().len();
                scales += kernel.scales().len();
            }
            None => float += model.params.value(id).len(),
        }
    }
    let stored = int8 + 4 * (scales + float);
    let f32_size = 4 * (int8 + float);
    format!(
        " Quantized (int8): {} weights in int8, {} scales and {} weights in f32: {} (f32: {})\n",
        group_thousands(int8),
        group_thousands(scales),
        group_thousands(float),
        crate::limits::format_bytes(Some(stored as u64)),
        crate::limits::format_bytes(Some(f32_size as u64)),
    )
}

/// `name (Class)` on one line when it fits the column, else the name and `(Class)` on two
/// lines, as Keras wraps them.
fn name_lines(name: &str, class_name: &str, width: usize) -> Vec<String> {
    let joined = format!("{name} ({class_name})");
    if joined.chars().count() < width {
        vec![joined]
    } else {
        vec![name.to_string(), format!("({class_name})")]
    }
}

/// The parameter totals under the table.
fn totals(plan: Option<&Plan>) -> String {
    let mut out = String::new();
    let (total, trainable) = plan.map_or((0, 0), Plan::param_counts);
    out += &format!(" Total params: {} ({})\n", group_thousands(total), bytes(total));
    out += &format!(
        " Trainable params: {} ({})\n",
        group_thousands(trainable),
        bytes(trainable)
    );
    out += &format!(
        " Non-trainable params: {} ({})\n",
        group_thousands(total - trainable),
        bytes(total - trainable)
    );
    out
}

fn rule(left: char, middle: char, right: char, line: char) -> String {
    let cells: Vec<String> = WIDTHS.iter().map(|&w| line.to_string().repeat(w)).collect();
    format!("{left}{}{right}\n", cells.join(&middle.to_string()))
}

fn row(cells: &[&str; 3], bar: char) -> String {
    format!(
        "{bar} {:<w0$}{bar} {:<w1$}{bar} {:>w2$} {bar}\n",
        cells[0],
        cells[1],
        cells[2],
        w0 = WIDTHS[0] - 1,
        w1 = WIDTHS[1] - 1,
        w2 = WIDTHS[2] - 2
    )
}

/// `101770` → `101,770`.
pub(crate) fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Size of `count` f32 weights as Keras prints it (`readable_memory_size`): `397.54 KB`,
/// `4.00 GB`, in powers of 1024.
fn bytes(count: usize) -> String {
    let mut size = count as f64 * 4.0;
    for unit in ["B", "KB", "MB", "GB", "TB"] {
        if size < 1024.0 {
            return format!("{size:.2} {unit}");
        }
        size /= 1024.0;
    }
    format!("{size:.2} PB")
}

/// The summary's lines on nested models: each one's name, class, layers and weights (`plan`'s
/// counts; none without a plan), and whether it is trainable.
fn nested_model_lines(model: &Model, plan: Option<&Plan>) -> String {
    let mut out = String::new();
    for nested in &model.network.nested {
        let members: Vec<usize> = (0..model.network.layers.len())
            .filter(|&i| nested.layer_names().iter().any(|n| n == model.network.layers[i].name()))
            .collect();
        let params: usize = plan.map_or(0, |plan| members.iter().map(|&i| plan.layer_params[i].0).sum());
        let first = members.first().map_or("", |&i| model.network.layers[i].name());
        let last = members.last().map_or("", |&i| model.network.layers[i].name());
        let trainable = match model.is_nested_trainable(nested.name()) {
            Ok(true) => "trainable",
            _ => "frozen",
        };
        out += &format!(
            " Nested model: {} ({}): {} layers, {first} to {last}, {} params, {trainable}\n",
            nested.name(),
            nested.class_name(),
            members.len(),
            group_thousands(params),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_keras() {
        assert_eq!(group_thousands(101770), "101,770");
        assert_eq!(group_thousands(0), "0");
        assert_eq!(bytes(101770), "397.54 KB");
        assert_eq!(bytes(0), "0.00 B");
        assert_eq!(bytes(1_074_102_282), "4.00 GB");
        assert_eq!(bytes(262_144), "1.00 MB");
    }
}
