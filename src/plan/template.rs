//! Path, header and body templates: compiled once at plan time, rendered per request into a
//! reused buffer (no allocation per request on the hot path).
//!
//! Syntax (scenarios/README.md has the user-facing version):
//!
//! ```text
//! template    := ( literal | "{{" ws expr ws "}}" )*      literal: any text; "{{{{" is a literal "{{"
//! expr        := NAME                    flow capture or scenario `vars:` entry
//!              | "env." NAME [":-" TEXT]  environment variable, resolved at plan time; TEXT
//!                                        is the fallback when it is unset (else an error)
//!              | "seq"                   the caller's per-worker counter (`Vars::seq`)
//!              | "uuid"                  random v4 UUID
//!              | "random_int(" INT "," INT ")"     uniform integer in [a, b]
//!              | "random_string(" INT ")"          that many random [a-zA-Z0-9] chars
//! NAME        := [A-Za-z_][A-Za-z0-9_]*
//! ```
//!
//! Scenario variables and `env.` values become literals at compile time; only captures,
//! `seq` and the random generators are left for render time.

use rand::Rng;

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    // private representation, owned by the plan helper
    pub(crate) parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Literal(String),
    /// A flow capture, looked up in `Vars::values` at render time.
    Var(String),
    RandomInt(i64, i64),
    Uuid,
    RandomString(usize),
    Seq,
}

/// Variables visible to a render: flow captures (by name) and the worker's counter.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub values: Vec<(String, String)>,
    /// Rendered by `{{seq}}`; the executor bumps it per request (per worker).
    pub seq: u64,
}

impl Vars {
    /// Sets `name`, reusing the existing slot (and its allocation) when present.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.values.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => {
                v.clear();
                v.push_str(value);
            }
            None => self.values.push((name.to_string(), value.to_string())),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A template that does not compile: what and where (char offset in the template text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {offset})")]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

/// What names a template may use.
pub struct Scope<'a> {
    /// Scenario `vars:` (become literals).
    pub constants: &'a [(String, String)],
    /// Names captured by earlier flow steps (rendered from `Vars`).
    pub captures: &'a [String],
    /// Environment lookup for `{{env.NAME}}`.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Template {
    /// A template with no placeholders.
    pub fn literal(s: impl Into<String>) -> Self {
        Template {
            parts: vec![Part::Literal(s.into())],
        }
    }

    /// Compiles `src`, resolving constants and environment variables.
    pub fn compile(src: &str, scope: &Scope) -> Result<Template, TemplateError> {
        let mut parts: Vec<Part> = Vec::new();
        let mut lit = String::new();
        let mut rest = src;
        let mut offset = 0usize;
        while let Some(open) = rest.find("{{") {
            lit.push_str(&rest[..open]);
            offset += rest[..open].chars().count();
            let after = &rest[open + 2..];
            if let Some(tail) = after.strip_prefix("{{") {
                lit.push_str("{{");
                rest = tail;
                offset += 4;
                continue;
            }
            let close = after.find("}}").ok_or_else(|| TemplateError {
                offset,
                message: "`{{` is never closed with `}}`".into(),
            })?;
            let expr = after[..close].trim();
            match compile_expr(expr, scope).map_err(|message| TemplateError { offset, message })? {
                Part::Literal(s) => lit.push_str(&s),
                part => {
                    if !lit.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut lit)));
                    }
                    parts.push(part);
                }
            }
            offset += after[..close].chars().count() + 4;
            rest = &after[close + 2..];
        }
        lit.push_str(rest);
        if !lit.is_empty() || parts.is_empty() {
            parts.push(Part::Literal(lit));
        }
        Ok(Template { parts })
    }

    /// The flow variables this template reads at render time.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            _ => None,
        })
    }

    /// Whether rendering always gives the same text (no variables, no randomness).
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// Appends the rendered text to `out`.
    pub fn render(&self, vars: &Vars, rng: &mut impl Rng, out: &mut Vec<u8>) {
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.extend_from_slice(s.as_bytes()),
                Part::Var(name) => {
                    if let Some(v) = vars.get(name) {
                        out.extend_from_slice(v.as_bytes());
                    }
                }
                Part::RandomInt(a, b) => write_int(out, rng.random_range(*a..=*b)),
                Part::Uuid => write_uuid(out, rng.random::<u128>()),
                Part::RandomString(n) => {
                    for _ in 0..*n {
                        out.push(ALPHANUMERIC[rng.random_range(0..ALPHANUMERIC.len())]);
                    }
                }
                Part::Seq => write_int(out, vars.seq as i64),
            }
        }
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn compile_expr(expr: &str, scope: &Scope) -> Result<Part, String> {
    if expr.is_empty() {
        return Err("empty `{{}}`".into());
    }
    if let Some(rest) = expr.strip_prefix("env.") {
        let (name, fallback) = match rest.split_once(":-") {
            Some((n, f)) => (n.trim(), Some(f.trim())),
            None => (rest, None),
        };
        if !is_name(name) {
            return Err(format!("`{name}` is not an environment variable name"));
        }
        return match ((scope.env)(name), fallback) {
            (Some(v), _) => Ok(Part::Literal(v)),
            (None, Some(f)) => Ok(Part::Literal(f.to_string())),
            (None, None) => Err(format!(
                "environment variable `{name}` is not set (give a fallback: `{{{{env.{name}:-value}}}}`)"
            )),
        };
    }
    if let Some(open) = expr.find('(') {
        let func = expr[..open].trim();
        let args = expr[open + 1..]
            .strip_suffix(')')
            .ok_or_else(|| format!("`{expr}`: missing `)`"))?;
        let args: Vec<&str> = if args.trim().is_empty() {
            Vec::new()
        } else {
            args.split(',').map(str::trim).collect()
        };
        let int = |s: &str| {
            s.parse::<i64>()
                .map_err(|_| format!("`{expr}`: `{s}` is not an integer"))
        };
        return match (func, args.as_slice()) {
            ("random_int", [a, b]) => {
                let (a, b) = (int(a)?, int(b)?);
                if a > b {
                    return Err(format!(
                        "`{expr}`: the lower bound is above the upper bound"
                    ));
                }
                Ok(Part::RandomInt(a, b))
            }
            ("random_int", _) => Err(format!(
                "`{expr}`: random_int takes two integers: random_int(1,100)"
            )),
            ("random_string", [n]) => match int(n)? {
                n @ 1..=4096 => Ok(Part::RandomString(n as usize)),
                _ => Err(format!("`{expr}`: the length must be 1..=4096")),
            },
            ("random_string", _) => Err(format!(
                "`{expr}`: random_string takes one length: random_string(8)"
            )),
            (f, _) => Err(unknown_name(
                f,
                &["random_int", "random_string"],
                "function",
            )),
        };
    }
    match expr {
        "uuid" => return Ok(Part::Uuid),
        "seq" => return Ok(Part::Seq),
        _ => {}
    }
    if !is_name(expr) {
        return Err(format!("`{expr}` is not a variable name"));
    }
    if let Some((_, v)) = scope.constants.iter().find(|(n, _)| n == expr) {
        return Ok(Part::Literal(v.clone()));
    }
    if scope.captures.iter().any(|c| c == expr) {
        return Ok(Part::Var(expr.to_string()));
    }
    let mut known: Vec<&str> = vec!["uuid", "seq"];
    known.extend(scope.constants.iter().map(|(n, _)| n.as_str()));
    known.extend(scope.captures.iter().map(String::as_str));
    Err(unknown_name(expr, &known, "variable"))
}

fn unknown_name(got: &str, known: &[&str], what: &str) -> String {
    match crate::scenario::suggest::suggest(got, known) {
        Some(s) => format!("unknown {what} `{got}`, did you mean `{s}`?"),
        None => format!("unknown {what} `{got}`"),
    }
}

fn write_int(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; 20];
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

/// RFC 9562 version 4 layout: 8-4-4-4-12 hex digits, version and variant bits set.
fn write_uuid(out: &mut Vec<u8>, random: u128) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let v = (random & !(0xF << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push(b'-');
        }
        out.push(HEX[((v >> (124 - 4 * i)) & 0xF) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn scope_with<'a>(constants: &'a [(String, String)], captures: &'a [String]) -> Scope<'a> {
        Scope {
            constants,
            captures,
            env: &|n| (n == "TOKEN").then(|| "s3cret".to_string()),
        }
    }

    fn render(t: &Template, vars: &Vars) -> String {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut out = Vec::new();
        t.render(vars, &mut rng, &mut out);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn constants_env_and_captures() {
        let consts = vec![("tenant".to_string(), "acme".to_string())];
        let caps = vec!["id".to_string()];
        let t = Template::compile(
            "/t/{{ tenant }}/todos/{{id}}?k={{env.TOKEN}}",
            &scope_with(&consts, &caps),
        )
        .expect("compiles");
        assert_eq!(t.vars().collect::<Vec<_>>(), vec!["id"]);
        let mut vars = Vars::default();
        vars.set("id", "42");
        assert_eq!(render(&t, &vars), "/t/acme/todos/42?k=s3cret");
        vars.set("id", "7");
        assert_eq!(render(&t, &vars), "/t/acme/todos/7?k=s3cret");
        assert!(
            Template::compile("{{tenant}}", &scope_with(&consts, &caps))
                .expect("ok")
                .is_static()
        );
    }

    #[test]
    fn generators() {
        let s = scope_with(&[], &[]);
        let t = Template::compile(
            "{{random_int(1,100)}}|{{uuid}}|{{random_string(8)}}|{{seq}}",
            &s,
        )
        .expect("compiles");
        let vars = Vars {
            values: vec![],
            seq: 12,
        };
        let out = render(&t, &vars);
        let parts: Vec<&str> = out.split('|').collect();
        let n: i64 = parts[0].parse().expect("int");
        assert!((1..=100).contains(&n));
        assert_eq!(parts[1].len(), 36);
        assert_eq!(&parts[1][14..15], "4", "version nibble: {}", parts[1]);
        assert!(
            matches!(&parts[1][19..20], "8" | "9" | "a" | "b"),
            "variant: {}",
            parts[1]
        );
        assert_eq!(parts[2].len(), 8);
        assert!(parts[2].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(parts[3], "12");
    }

    #[test]
    fn render_reuses_the_buffer() {
        let t = Template::compile("/a/{{seq}}", &scope_with(&[], &[])).expect("ok");
        let mut out = Vec::with_capacity(64);
        let ptr = out.as_ptr();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for seq in 0..100 {
            out.clear();
            t.render(
                &Vars {
                    values: vec![],
                    seq,
                },
                &mut rng,
                &mut out,
            );
        }
        assert_eq!(out, b"/a/99");
        assert_eq!(out.as_ptr(), ptr, "no reallocation");
        assert_eq!(write_neg(-305), "-305");
    }

    fn write_neg(v: i64) -> String {
        let mut out = Vec::new();
        write_int(&mut out, v);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn errors_have_offsets() {
        let consts = vec![("tenant".to_string(), "x".to_string())];
        let s = scope_with(&consts, &[]);
        let e = |src: &str| Template::compile(src, &s).expect_err(src).to_string();
        assert_eq!(
            e("/a/{{tenat}}"),
            "unknown variable `tenat`, did you mean `tenant`? (at character 3)"
        );
        assert_eq!(
            e("/a/{{id"),
            "`{{` is never closed with `}}` (at character 3)"
        );
        // A stray `}}` is text (JSON bodies end with it).
        assert_eq!(
            Template::compile(r#"{"a":{"b":1}}"#, &s).expect("ok"),
            Template::literal(r#"{"a":{"b":1}}"#)
        );
        assert_eq!(
            e("{{random_int(5,1)}}"),
            "`random_int(5,1)`: the lower bound is above the upper bound (at character 0)"
        );
        assert_eq!(
            e("{{random_str(8)}}"),
            "unknown function `random_str`, did you mean `random_string`? (at character 0)"
        );
        assert_eq!(
            e("x{{env.NOPE}}"),
            "environment variable `NOPE` is not set (give a fallback: `{{env.NOPE:-value}}`) (at character 1)"
        );
        assert_eq!(
            Template::compile("{{env.NOPE:-20}}/{{env.TOKEN:-x}}", &s).expect("ok"),
            Template::literal("20/s3cret")
        );
        assert_eq!(e("{{}}"), "empty `{{}}` (at character 0)");
        assert_eq!(
            Template::compile("a{{{{b", &s).expect("ok"),
            Template::literal("a{{b")
        );
    }
}
