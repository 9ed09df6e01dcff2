//! The YAML document as a tree of located nodes.
//!
//! serde-saphyr parses the text once into `Node`s, each with its 1-based line/column (taken
//! from serde-saphyr's `Spanned` wrapper). The raw model is then deserialized from this tree by
//! `de::NodeDe`, which knows every node's position and field path.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Visitor};

/// A parsed YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub line: u32,
    pub column: u32,
    /// Unique within a document (pre-order), so a failing node can be removed and retried.
    pub id: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl NodeKind {
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) | NodeKind::UInt(_) => "an integer",
            NodeKind::Float(_) => "a number",
            NodeKind::Str(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// A scalar's text, for string fields given a number or boolean (`X-Id: 42`).
    pub(crate) fn scalar_text(&self) -> Option<String> {
        match self {
            NodeKind::Bool(b) => Some(b.to_string()),
            NodeKind::Int(i) => Some(i.to_string()),
            NodeKind::UInt(u) => Some(u.to_string()),
            NodeKind::Float(f) => Some(f.to_string()),
            NodeKind::Str(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl Node {
    /// Parses one YAML document. Errors carry serde-saphyr's location of the syntax problem.
    /// Repeated keys are kept here (serde-saphyr passes them through) so that `duplicates` can
    /// report every one of them, in our words.
    pub fn parse(text: &str) -> Result<Node, (u32, u32, String)> {
        let options = serde_saphyr::options! {
            duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        };
        let parsed: Result<serde_saphyr::Spanned<NodeKind>, serde_saphyr::Error> =
            serde_saphyr::from_str_with_options(text, options);
        match parsed {
            Ok(sp) => {
                let mut root = Node {
                    kind: sp.value,
                    line: sp.referenced.line() as u32,
                    column: sp.referenced.column() as u32,
                    id: 0,
                };
                let mut next = 0;
                number(&mut root, &mut next);
                Ok(root)
            }
            Err(e) => {
                let (line, column) = e
                    .location()
                    .map(|l| (l.line() as u32, l.column() as u32))
                    .unwrap_or((1, 1));
                // The plain message, without serde-saphyr's snippet rendering.
                let msg = e.without_snippet().to_string();
                let msg = msg.lines().next().unwrap_or("invalid YAML").to_string();
                // serde-saphyr's resource budget (alias expansion, nesting) in our words.
                if let Some(what) = msg.strip_prefix("budget breached: ") {
                    let why = match what.split([' ', '{']).next().unwrap_or("") {
                        "Depth" | "InclusionDepth" => "is nested too deeply",
                        "Aliases" | "Anchors" => "uses too many aliases or anchors",
                        "Documents" => "holds too many documents (one is expected)",
                        "ScalarBytes" => "holds too much text",
                        _ => "is too large once its aliases are expanded",
                    };
                    return Err((
                        line,
                        column,
                        format!("the document {why} (a YAML resource limit)"),
                    ));
                }
                Err((line, column, strip_location_suffix(&msg)))
            }
        }
    }
}

/// A key given more than once in one mapping: where the repeat is, its field path, and the
/// line of the first occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub line: u32,
    pub column: u32,
    pub path: String,
    pub key: String,
    pub first_line: u32,
}

impl Node {
    /// Every repeated key of every mapping (each repeat once), removing the repeats from the
    /// tree: the first occurrence is the one that counts.
    pub fn take_duplicates(&mut self) -> Vec<Duplicate> {
        let mut out = Vec::new();
        take_duplicates(self, "", &mut out);
        out
    }
}

fn take_duplicates(node: &mut Node, path: &str, out: &mut Vec<Duplicate>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match &mut node.kind {
        NodeKind::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                take_duplicates(item, &format!("{path}[{i}]"), out);
            }
        }
        NodeKind::Map(pairs) => {
            let mut seen: Vec<(String, u32)> = Vec::new();
            pairs.retain(|(k, _)| {
                let Some(name) = k.kind.scalar_text() else {
                    return true;
                };
                match seen.iter().find(|(n, _)| *n == name) {
                    Some((_, first_line)) => {
                        out.push(Duplicate {
                            line: k.line,
                            column: k.column,
                            path: join(&name),
                            key: name.clone(),
                            first_line: *first_line,
                        });
                        false
                    }
                    None => {
                        seen.push((name, k.line));
                        true
                    }
                }
            });
            for (k, v) in pairs.iter_mut() {
                let name = k.kind.scalar_text().unwrap_or_default();
                take_duplicates(v, &join(&name), out);
            }
        }
        _ => {}
    }
}

/// serde-saphyr appends " at line X, column Y"; our error format carries the position already.
fn strip_location_suffix(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn number(node: &mut Node, next: &mut u32) {
    node.id = *next;
    *next += 1;
    match &mut node.kind {
        NodeKind::Seq(items) => items.iter_mut().for_each(|n| number(n, next)),
        NodeKind::Map(pairs) => pairs.iter_mut().for_each(|(k, v)| {
            number(k, next);
            number(v, next);
        }),
        _ => {}
    }
}

impl<'de> Deserialize<'de> for NodeKind {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

fn spanned_node<E>(sp: serde_saphyr::Spanned<NodeKind>) -> Result<Node, E> {
    Ok(Node {
        kind: sp.value,
        line: sp.referenced.line() as u32,
        column: sp.referenced.column() as u32,
        id: 0,
    })
}

impl<'de> Visitor<'de> for KindVisitor {
    type Value = NodeKind;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<NodeKind, E> {
        Ok(NodeKind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<NodeKind, E> {
        Ok(NodeKind::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<NodeKind, E> {
        Ok(NodeKind::UInt(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<NodeKind, E> {
        Ok(NodeKind::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v))
    }
    fn visit_unit<E>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }
    fn visit_none<E>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<NodeKind, D::Error> {
        d.deserialize_any(KindVisitor)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<NodeKind, A::Error> {
        let mut items = Vec::new();
        while let Some(sp) = seq.next_element::<serde_saphyr::Spanned<NodeKind>>()? {
            items.push(spanned_node(sp)?);
        }
        Ok(NodeKind::Seq(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<NodeKind, A::Error> {
        let mut pairs = Vec::new();
        while let Some(k) = map.next_key::<serde_saphyr::Spanned<NodeKind>>()? {
            let v = map.next_value::<serde_saphyr::Spanned<NodeKind>>()?;
            pairs.push((spanned_node(k)?, spanned_node(v)?));
        }
        Ok(NodeKind::Map(pairs))
    }
}
