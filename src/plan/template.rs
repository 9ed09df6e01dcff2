//! Path, header and body templates: compiled once at plan time, rendered per request into a
//! reused buffer (no allocation per request on the hot path).
//!
//! (OWNER: scenario/plan helper.) Syntax: `{{var}}` flow/scenario variables, plus random
//! generators; see scenarios/README.md.

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    // private representation, owned by the plan helper
    pub(crate) parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Literal(String),
}

/// Variables visible to a render: flow captures (by name).
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub values: Vec<(String, String)>,
}

impl Template {
    /// A template with no placeholders.
    pub fn literal(s: impl Into<String>) -> Self {
        Template { parts: vec![Part::Literal(s.into())] }
    }

    /// Appends the rendered text to `out`.
    pub fn render(&self, _vars: &Vars, _rng: &mut impl rand::Rng, out: &mut Vec<u8>) {
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.extend_from_slice(s.as_bytes()),
            }
        }
    }
}
