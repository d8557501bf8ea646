//! Activations exporters write as several nodes, found for `fusion.rs`: GELU (`Erf`, or
//! `Tanh` for its tanh approximation), softsign (`x / (1 + |x|)`) and Mish (`x ·
//! tanh(softplus(x))`) become one node each, and
//! torch.export's guard around softplus (`Where(x > 20, x, Softplus(x))`, which strata's
//! softplus needs no guard for) is dropped.

use super::fusion::Patterns;
use super::proto::{AttributeProto, NodeProto};

/// Above this, softplus(x) is x to float precision (its excess, ln(1 + e^−x), is under half an
/// ulp of x), so a guard that returns x there changes nothing.
const SOFTPLUS_LINEAR_FROM: f32 = 15.0;

/// A GELU found in the graph: its nodes, the last of them, its input and output, and whether
/// it is the tanh approximation.
pub(super) struct Gelu {
    pub nodes: Vec<usize>,
    pub last: usize,
    x: String,
    output: String,
    tanh: bool,
}

impl Gelu {
    /// The `Gelu` node (opset 20's) that replaces the pattern.
    pub(super) fn node(self, name: &str) -> NodeProto {
        let attribute = match self.tanh {
            true => vec![AttributeProto {
                name: "approximate".into(),
                r#type: 3,
                s: Some(b"tanh".to_vec()),
                ..Default::default()
            }],
            false => vec![],
        };
        NodeProto {
            name: name.into(),
            op_type: "Gelu".into(),
            input: vec![self.x],
            output: vec![self.output],
            attribute,
            ..Default::default()
        }
    }
}

impl Patterns<'_> {
    /// The GELU around `Erf` or `Tanh` node `core`: the pattern's nodes, the last of them, its
    /// input, its output and whether it is the tanh form; `None` when the nodes around it are
    /// not the pattern.
    pub(super) fn gelu(&self, core: usize) -> Option<Gelu> {
        let nodes = &self.graph.node;
        let tanh = nodes[core].op_type == "Tanh";
        let (mut pattern, x) = match tanh {
            true => self.tanh_gelu_argument(core)?,
            false => self.erf_gelu_argument(core)?,
        };
        pattern.push(core);
        // core + 1.
        let core_out = nodes[core].output.first()?;
        let plus = self.only_reader(core_out)?;
        if nodes[plus].op_type != "Add" || self.operand_beside(plus, 1.0, true)? != *core_out {
            return None;
        }
        let sum = nodes[plus].output.first()?.as_str();
        // Then x · sum · 0.5 in some order.
        let first = self.only_reader(sum)?;
        if nodes[first].op_type != "Mul" {
            return None;
        }
        let other = self.other_operand(first, sum)?;
        pattern.extend([plus, first]);
        let last = if other == x || self.is_scalar(&other, 0.5) {
            // (x · sum) · 0.5 or (sum · 0.5) · x.
            let product = nodes[first].output.first()?;
            let second = self.only_reader(product)?;
            let rest = self.other_operand(second, product)?;
            let closes = match other == x {
                true => self.is_scalar(&rest, 0.5),
                false => rest == x,
            };
            if nodes[second].op_type != "Mul" || !closes {
                return None;
            }
            pattern.push(second);
            second
        } else {
            // (x · 0.5) · sum.
            let half = self.maker_of(&other)?;
            if nodes[half].op_type != "Mul" || self.operand_beside(half, 0.5, true)? != x || !self.read_once(&other) {
                return None;
            }
            pattern.push(half);
            first
        };
        // Inside the pattern, only `x` is read from outside.
        let once = |k: &usize| *k == last || nodes[*k].output.iter().all(|o| self.read_once(o));
        if !pattern.iter().all(once) {
            return None;
        }
        let output = nodes[last].output.first()?.clone();
        Some(Gelu {
            nodes: pattern,
            last,
            x,
            output,
            tanh,
        })
    }

    /// `x / √2` (or `x · 1/√2`) before `Erf` node `erf`: that node and `x`.
    fn erf_gelu_argument(&self, erf: usize) -> Option<(Vec<usize>, String)> {
        let nodes = &self.graph.node;
        let scaled = self.maker_of(nodes[erf].input.first()?)?;
        let x = match nodes[scaled].op_type.as_str() {
            "Div" => self.operand_beside(scaled, std::f32::consts::SQRT_2, false)?,
            "Mul" => self.operand_beside(scaled, std::f32::consts::FRAC_1_SQRT_2, true)?,
            _ => return None,
        };
        (nodes[scaled].input.len() == 2).then_some((vec![scaled], x))
    }

    /// `√(2/π) · (x + 0.044715 · x³)` before `Tanh` node `tanh`, its products and sum in
    /// either order and the cube as `Pow(x, 3)` or two products: those nodes and `x`.
    fn tanh_gelu_argument(&self, tanh: usize) -> Option<(Vec<usize>, String)> {
        let nodes = &self.graph.node;
        let inner = self.maker_of(nodes[tanh].input.first()?)?;
        let scale = (2.0 / std::f32::consts::PI).sqrt();
        let sum = self.maker_of(&self.operand_beside(inner, scale, true)?)?;
        if nodes[inner].op_type != "Mul" || nodes[sum].op_type != "Add" {
            return None;
        }
        let [a, b] = nodes[sum].input.as_slice() else {
            return None;
        };
        // One operand of the sum is x, the other 0.044715 · x³.
        for (x, weighted) in [(a, b), (b, a)] {
            let Some(weight) = self.maker_of(weighted) else {
                continue;
            };
            if nodes[weight].op_type != "Mul" {
                continue;
            }
            let Some(cube) = self.operand_beside(weight, 0.044_715, true) else {
                continue;
            };
            if let Some(cubing) = self.cube_of(&cube, x) {
                let mut pattern = vec![inner, sum, weight];
                pattern.extend(cubing);
                return Some((pattern, x.clone()));
            }
        }
        None
    }

    /// The nodes that make `cube` as `x³`: `Pow(x, 3)`, or `x · (x · x)` in either order.
    fn cube_of(&self, cube: &str, x: &str) -> Option<Vec<usize>> {
        let nodes = &self.graph.node;
        let k = self.maker_of(cube)?;
        match nodes[k].op_type.as_str() {
            "Pow" if self.operand_beside(k, 3.0, false)? == x => Some(vec![k]),
            "Mul" => {
                let square = self.maker_of(&self.other_operand(k, x)?)?;
                let squares = nodes[square].op_type == "Mul" && nodes[square].input.iter().all(|i| i == x);
                (squares && nodes[square].input.len() == 2).then_some(vec![k, square])
            }
            _ => None,
        }
    }

    /// `x / (|x| + 1)` around `Abs` node `abs`, the sum in either order: the pattern's nodes
    /// (the division last) and the `Softsign` node that replaces them.
    pub(super) fn softsign(&self, abs: usize) -> Option<(Vec<usize>, NodeProto)> {
        let nodes = &self.graph.node;
        let x = nodes[abs].input.first()?;
        let magnitude = nodes[abs].output.first()?;
        let plus = self.only_reader(magnitude)?;
        if nodes[plus].op_type != "Add" || self.operand_beside(plus, 1.0, true)? != *magnitude {
            return None;
        }
        let sum = nodes[plus].output.first()?;
        let divide = self.only_reader(sum)?;
        if nodes[divide].op_type != "Div" || nodes[divide].input != [x.clone(), sum.clone()] {
            return None;
        }
        Some((vec![abs, plus, divide], self.unary_in_place_of(divide, "Softsign", x)))
    }

    /// `x · tanh(softplus(x))` from `Softplus` node `softplus` (the product in either order),
    /// as opsets before 18 (which have no `Mish`) write it: the pattern's nodes (the product
    /// last) and the `Mish` node that replaces them.
    pub(super) fn mish(&self, softplus: usize) -> Option<(Vec<usize>, NodeProto)> {
        let nodes = &self.graph.node;
        let x = nodes[softplus].input.first()?;
        let tanh = self.only_reader(nodes[softplus].output.first()?)?;
        let gate = nodes[tanh].output.first()?;
        let product = self.only_reader(gate)?;
        let closes = nodes[tanh].op_type == "Tanh"
            && nodes[product].op_type == "Mul"
            && self.other_operand(product, gate).as_ref() == Some(x);
        closes.then(|| {
            (
                vec![softplus, tanh, product],
                self.unary_in_place_of(product, "Mish", x),
            )
        })
    }

    /// A node of operator `op` on `x` that makes what node `last` made, under its name.
    fn unary_in_place_of(&self, last: usize, op: &str, x: &str) -> NodeProto {
        let last = &self.graph.node[last];
        NodeProto {
            name: last.name.clone(),
            op_type: op.into(),
            input: vec![x.to_string()],
            output: last.output.clone(),
            ..Default::default()
        }
    }

    /// `Where(x > t, x, Softplus(x))` with `t` where softplus is linear to float precision, as
    /// torch.export writes `F.softplus` (threshold 20): the `Greater` node, when `Where` node
    /// `k` is that guard.
    pub(super) fn softplus_guard(&self, k: usize) -> Option<usize> {
        let nodes = &self.graph.node;
        let [condition, x, softplus] = nodes[k].input.as_slice() else {
            return None;
        };
        let greater = self.maker_of(condition)?;
        let soft = self.maker_of(softplus)?;
        let guards = nodes[greater].op_type == "Greater"
            && nodes[greater].input.first() == Some(x)
            && self.scalar(nodes[greater].input.get(1)?)? >= SOFTPLUS_LINEAR_FROM
            && self.read_once(condition)
            && nodes[soft].op_type == "Softplus"
            && nodes[soft].input.first() == Some(x);
        guards.then_some(greater)
    }
}
