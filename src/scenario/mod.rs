//! Scenario file → raw model, with source positions kept for line/column errors. Also the JSON
//! Schema of the format (`json_schema`, printed by `trafficgen schema`).
//!
//! Stage (1) of the data flow: text → `node::Node` tree (serde-saphyr) → `model::Scenario`
//! (our located deserializer, `de`). Meaning is checked later by `plan::build`.

pub mod de;
pub mod forms;
pub mod limits;
pub mod model;
pub mod node;
pub mod suggest;
pub mod units;

use serde::Deserialize;

pub use model::Scenario;
pub use units::Sp;

/// One problem found while reading a scenario.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {path}: {message}")]
pub struct Problem {
    pub line: u32,
    pub column: u32,
    /// Dotted field path (`load.stages[1].rate`); empty for the document itself.
    pub path: String,
    pub message: String,
    /// The node was left out of the model (a wrong type, a bad value, a missing field), so
    /// checks across sections must not trust what is under `path`. An unknown field or a
    /// repeated key loses nothing: the rest is read as written.
    pub dropped: bool,
}

/// Deserializes `text`, collecting every problem. Returns the model when it could be built
/// (possibly with bad nodes removed, then `problems` is not empty) and the problems sorted by
/// position.
pub fn parse(text: &str) -> (Option<Scenario>, Vec<Problem>) {
    let mut root = match node::Node::parse(text) {
        Ok(root) => root,
        Err((line, column, message)) => {
            return (
                None,
                vec![Problem {
                    line,
                    column,
                    path: "yaml".into(),
                    message,
                    dropped: true,
                }],
            );
        }
    };
    let duplicates: Vec<Problem> = root
        .take_duplicates()
        .into_iter()
        .map(|d| Problem {
            line: d.line,
            column: d.column,
            message: format!(
                "`{}` is given twice (first on line {}); keep one",
                d.key, d.first_line
            ),
            path: d.path,
            dropped: false,
        })
        .collect();
    let mut ctx = de::Ctx::default();
    let mut errors: Vec<de::DeError> = Vec::new();
    let mut next_id = max_id(&root) + 1;
    let mut result = None;
    // Each failed pass removes the node that failed, so this ends within the node count.
    // (+3: at most one stand-in per required section.)
    for _ in 0..=root_size(&root) + 3 {
        let r = Scenario::deserialize(de::NodeDe {
            node: &root,
            path: String::new(),
            ctx: &ctx,
        });
        match r {
            Ok(s) => {
                result = Some(s);
                break;
            }
            Err(e) => {
                let at = e.at.clone().unwrap_or(de::At {
                    line: 1,
                    column: 1,
                    path: String::new(),
                    id: 0,
                });
                // A missing field whose value we removed ourselves is a consequence, not news.
                let missing = e.missing;
                let consequence = missing.is_some_and(|f| removed_child(&root, at.id, f, &ctx));
                if !consequence && !errors.contains(&e) {
                    errors.push(e);
                }
                if at.id == root.id {
                    // A required section that is missing or was dropped gets an empty stand-in,
                    // so the other sections are still checked for meaning (its own problems
                    // are reported already; checks skip damaged sections).
                    match missing.and_then(|f| stand_in(f, &mut next_id)) {
                        Some(pair) => {
                            if let node::NodeKind::Map(pairs) = &mut root.kind {
                                pairs.push(pair);
                                continue;
                            }
                            break;
                        }
                        None => break,
                    }
                }
                ctx.removed.insert(at.id);
            }
        }
    }
    let noted = ctx.found.into_inner();
    let dropped = errors.len();
    errors.extend(noted);
    let mut problems: Vec<Problem> = errors
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let at = e.at.unwrap_or(de::At {
                line: 1,
                column: 1,
                path: String::new(),
                id: 0,
            });
            Problem {
                line: at.line,
                column: at.column,
                path: at.path,
                message: e.message,
                dropped: i < dropped,
            }
        })
        .collect();
    problems.extend(duplicates);
    problems.sort_by_key(|p| (p.line, p.column));
    problems.dedup();
    (result, problems)
}

fn max_id(n: &node::Node) -> u32 {
    match &n.kind {
        node::NodeKind::Seq(items) => items.iter().map(max_id).fold(n.id, u32::max),
        node::NodeKind::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| max_id(k).max(max_id(v)))
            .fold(n.id, u32::max),
        _ => n.id,
    }
}

/// The empty stand-in of a required top-level section: `name: ""`, `load: {stages: []}`,
/// `mix: {operations: []}`.
fn stand_in(field: &str, next_id: &mut u32) -> Option<(node::Node, node::Node)> {
    use node::{Node, NodeKind};
    let mut make = |kind: NodeKind| {
        *next_id += 1;
        Node {
            kind,
            line: 1,
            column: 1,
            id: *next_id,
        }
    };
    let value = match field {
        "name" => make(NodeKind::Str(String::new())),
        "load" | "mix" => {
            let inner = if field == "load" {
                "stages"
            } else {
                "operations"
            };
            let k = make(NodeKind::Str(inner.into()));
            let v = make(NodeKind::Seq(Vec::new()));
            make(NodeKind::Map(vec![(k, v)]))
        }
        _ => return None,
    };
    Some((make(NodeKind::Str(field.into())), value))
}

fn root_size(n: &node::Node) -> usize {
    match &n.kind {
        node::NodeKind::Seq(items) => 1 + items.iter().map(root_size).sum::<usize>(),
        node::NodeKind::Map(pairs) => {
            1 + pairs
                .iter()
                .map(|(k, v)| root_size(k) + root_size(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

/// Whether the mapping `map_id` has key `field` whose value (or key) was removed.
fn removed_child(n: &node::Node, map_id: u32, field: &str, ctx: &de::Ctx) -> bool {
    match &n.kind {
        node::NodeKind::Map(pairs) if n.id == map_id => pairs.iter().any(|(k, v)| {
            k.kind.scalar_text().as_deref() == Some(field)
                && (ctx.removed.contains(&v.id) || ctx.removed.contains(&k.id))
        }),
        node::NodeKind::Map(pairs) => pairs
            .iter()
            .any(|(_, v)| removed_child(v, map_id, field, ctx)),
        node::NodeKind::Seq(items) => items.iter().any(|v| removed_child(v, map_id, field, ctx)),
        _ => false,
    }
}

/// JSON Schema of the scenario format (what `trafficgen schema` prints).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<Scenario>();
    let mut v = serde_json::to_value(schema).expect("a schema serializes");
    scalars_as_text(&mut v);
    v
}

/// The reader takes a number or a boolean where text is expected (`X-Id: 42` is the header
/// value `"42"`), so the schema's free-text fields take them too: the schema never refuses
/// what the validator accepts. (Text with a pattern or a fixed set of values is left alone.)
fn scalars_as_text(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(o) => {
            let free = !["enum", "const", "pattern", "format"]
                .iter()
                .any(|k| o.contains_key(*k));
            if free {
                let widened = match o.get("type") {
                    Some(Value::String(t)) if t == "string" => {
                        Some(serde_json::json!(["string", "number", "boolean"]))
                    }
                    Some(Value::Array(ts)) if ts.iter().any(|t| t == "string") => {
                        let mut ts = ts.clone();
                        for extra in ["number", "boolean"] {
                            if !ts.iter().any(|t| t == extra) {
                                ts.push(extra.into());
                            }
                        }
                        Some(Value::Array(ts))
                    }
                    _ => None,
                };
                if let Some(w) = widened {
                    o.insert("type".into(), w);
                }
            }
            o.values_mut().for_each(scalars_as_text);
        }
        Value::Array(items) => items.iter_mut().for_each(scalars_as_text),
        _ => {}
    }
}
