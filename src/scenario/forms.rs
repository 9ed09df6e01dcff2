//! Scenario values that can be written in more than one form (a scalar or a mapping, one item
//! or a list), each with a hand-written `Deserialize` and `JsonSchema`: think time, status
//! lists, threshold lists, tolerances, and order-keeping mappings.

use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Visitor};

use super::units::{Duration, Sp};

/// `1s` (fixed) or `{min: 500ms, max: 2s}` (uniform).
#[derive(Debug, Clone, PartialEq)]
pub enum ThinkTimeSpec {
    Fixed(Duration),
    Uniform { min: Duration, max: Duration },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UniformThink {
    min: Duration,
    max: Duration,
}

impl<'de> Deserialize<'de> for ThinkTimeSpec {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ThinkTimeSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration or `{min: <duration>, max: <duration>}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ThinkTimeSpec, E> {
                v.parse().map(ThinkTimeSpec::Fixed).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ThinkTimeSpec, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<ThinkTimeSpec, A::Error> {
                let u = UniformThink::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ThinkTimeSpec::Uniform {
                    min: u.min,
                    max: u.max,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for ThinkTimeSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ThinkTime".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let d = g.subschema_for::<Duration>();
        schemars::json_schema!({
            "description": "A fixed pause (`1s`) or a uniform one (`{min: 500ms, max: 2s}`).",
            "anyOf": [
                d,
                { "type": "object", "additionalProperties": false, "required": ["min", "max"],
                  "properties": { "min": d, "max": d } }
            ]
        })
    }
}

/// Inclusive status ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusList(pub Vec<(u16, u16)>);

fn parse_status(s: &str) -> Result<(u16, u16), String> {
    let t = s.trim();
    let bad = || format!("`{s}` is not a status (examples: `200`, `2xx`, `200-299`)");
    let code = |c: &str| match c.trim().parse::<u16>() {
        Ok(n) if (100..=599).contains(&n) => Ok(n),
        _ => Err(bad()),
    };
    if let Some(class) = t.strip_suffix("xx").or_else(|| t.strip_suffix("XX")) {
        return match class {
            "1" | "2" | "3" | "4" | "5" => {
                let c: u16 = class.parse().map_err(|_| bad())?;
                Ok((c * 100, c * 100 + 99))
            }
            _ => Err(bad()),
        };
    }
    match t.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (code(a)?, code(b)?);
            if a > b { Err(bad()) } else { Ok((a, b)) }
        }
        None => code(t).map(|c| (c, c)),
    }
}

impl<'de> Deserialize<'de> for StatusList {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StatusList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a status (`200`, `2xx`, `200-299`) or a list of them")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StatusList, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StatusList, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StatusList, E> {
                parse_status(v)
                    .map(|r| StatusList(vec![r]))
                    .map_err(E::custom)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<StatusList, A::Error> {
                let mut out = Vec::new();
                while let Some(one) = seq.next_element::<StatusList>()? {
                    out.extend(one.0);
                }
                Ok(StatusList(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for StatusList {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StatusList".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let one = serde_json::json!({ "anyOf": [
            { "type": "integer", "minimum": 100, "maximum": 599 },
            { "type": "string", "pattern": "^([1-5]xx|[1-5][0-9][0-9](-[1-5][0-9][0-9])?)$" }
        ]});
        schemars::json_schema!({
            "description": "A status (`200`, `2xx`, `200-299`) or a list of them.",
            "anyOf": [one, { "type": "array", "items": one }]
        })
    }
}

/// The expressions of one threshold key: one string, or a list of strings and
/// `{threshold, abort_on_fail, delay_abort_eval}` mappings.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdList(pub Vec<Sp<ThresholdEntry>>);

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdEntry {
    /// `<aggregation> <comparison> <value>[unit] [over <window>]`, e.g. `p(95)<300ms`.
    pub threshold: String,
    /// Stop the run as soon as this threshold fails.
    #[serde(default)]
    pub abort_on_fail: bool,
    /// Do not abort before this much of the run has passed. Default `0`.
    pub delay_abort_eval: Option<Duration>,
}

struct EntryVisitor;
impl<'de> Visitor<'de> for EntryVisitor {
    type Value = ThresholdEntry;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a threshold expression or `{threshold: ..., abort_on_fail: true}`")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<ThresholdEntry, E> {
        Ok(ThresholdEntry {
            threshold: v.to_string(),
            abort_on_fail: false,
            delay_abort_eval: None,
        })
    }
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<ThresholdEntry, A::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            threshold: String,
            #[serde(default)]
            abort_on_fail: bool,
            delay_abort_eval: Option<Duration>,
        }
        let l = Long::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(ThresholdEntry {
            threshold: l.threshold,
            abort_on_fail: l.abort_on_fail,
            delay_abort_eval: l.delay_abort_eval,
        })
    }
}

/// One list element: either form of an entry.
struct EntryItem(ThresholdEntry);
impl<'de> Deserialize<'de> for EntryItem {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EntryVisitor).map(EntryItem)
    }
}

impl<'de> Deserialize<'de> for ThresholdList {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ThresholdList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a threshold expression or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ThresholdList, E> {
                EntryVisitor
                    .visit_str(v)
                    .map(|e| ThresholdList(vec![Sp::new(e)]))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<ThresholdList, A::Error> {
                EntryVisitor
                    .visit_map(map)
                    .map(|e| ThresholdList(vec![Sp::new(e)]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ThresholdList, A::Error> {
                let mut out = Vec::new();
                while let Some(e) = seq.next_element::<Sp<EntryItem>>()? {
                    out.push(Sp {
                        value: e.value.0,
                        line: e.line,
                        column: e.column,
                    });
                }
                Ok(ThresholdList(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for ThresholdList {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ThresholdList".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let long = g.subschema_for::<ThresholdEntry>();
        let one = serde_json::json!({ "anyOf": [{ "type": "string" }, long] });
        schemars::json_schema!({
            "description": "Threshold expressions (see scenarios/README.md for the grammar).",
            "anyOf": [one, { "type": "array", "items": one }]
        })
    }
}

/// `1%` (relative) or a number (absolute).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ToleranceSpec {
    Absolute(f64),
    Relative(f64),
}

impl<'de> Deserialize<'de> for ToleranceSpec {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ToleranceSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a tolerance: `1%` or a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ToleranceSpec, E> {
                Ok(ToleranceSpec::Absolute(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ToleranceSpec, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ToleranceSpec, E> {
                if v >= 0.0 {
                    Ok(ToleranceSpec::Absolute(v))
                } else {
                    Err(E::custom("a tolerance cannot be negative"))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ToleranceSpec, E> {
                match v.trim().strip_suffix('%') {
                    Some(p) => match p.trim().parse::<f64>() {
                        Ok(p) if p >= 0.0 => Ok(ToleranceSpec::Relative(p / 100.0)),
                        _ => Err(E::custom(format!(
                            "`{v}` is not a tolerance (`1%` or a number)"
                        ))),
                    },
                    None => match v.trim().parse::<f64>() {
                        Ok(n) => self.visit_f64(n),
                        Err(_) => Err(E::custom(format!(
                            "`{v}` is not a tolerance (`1%` or a number)"
                        ))),
                    },
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for ToleranceSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Tolerance".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`1%` (relative to the expected value) or an absolute number.",
            "anyOf": [
                { "type": "number", "minimum": 0 },
                { "type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?%$" }
            ]
        })
    }
}

/// A mapping that keeps the file's order (headers, vars, thresholds, captures).
#[derive(Debug, Clone, PartialEq)]
pub struct Entries<V>(pub Vec<(Sp<String>, V)>);

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Vis<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Entries<V>, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<Sp<String>>()? {
                    out.push((k, map.next_value()?));
                }
                Ok(Entries(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Entries<V>, E> {
                Ok(Entries(Vec::new()))
            }
        }
        d.deserialize_map(Vis(std::marker::PhantomData))
    }
}

impl<V: JsonSchema> JsonSchema for Entries<V> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let v = g.subschema_for::<V>();
        schemars::json_schema!({ "type": "object", "additionalProperties": v })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(parse_status("200"), Ok((200, 200)));
        assert_eq!(parse_status("2xx"), Ok((200, 299)));
        assert_eq!(parse_status("200-204"), Ok((200, 204)));
        assert!(parse_status("700").is_err());
        assert!(parse_status("204-200").is_err());
        assert!(parse_status("6xx").is_err());
    }
}
