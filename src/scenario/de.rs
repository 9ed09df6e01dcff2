//! A serde `Deserializer` over the located `Node` tree.
//!
//! It knows the dotted field path and the position of every node, so each error is located
//! precisely. It also lets `scenario::parse` collect *every* problem instead of the first:
//! unknown fields are reported (with a "did you mean" suggestion) and skipped, and after any
//! other error the offending node is removed and the document deserialized again, until it
//! succeeds.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Error as _, IntoDeserializer, Visitor};

use super::node::{Node, NodeKind};
mod error;

pub use error::{At, DeError};

/// Shared state of one deserialization pass.
#[derive(Default)]
pub struct Ctx {
    /// Nodes removed after an earlier pass failed on them (skipped as if absent).
    pub removed: HashSet<u32>,
    /// Problems found without stopping (unknown fields), across passes.
    pub found: RefCell<Vec<DeError>>,
}

impl Ctx {
    fn note(&self, e: DeError) {
        let mut found = self.found.borrow_mut();
        if !found.contains(&e) {
            found.push(e);
        }
    }
}

/// Deserializer over one node.
pub struct NodeDe<'a> {
    pub node: &'a Node,
    pub path: String,
    pub ctx: &'a Ctx,
}

/// Name of the newtype struct `Sp<T>` asks for, so the deserializer hands it a position.
pub(crate) const SP_MARKER: &str = "__trafficgen_spanned";

fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl<'a> NodeDe<'a> {
    fn locate(&self, mut e: DeError) -> DeError {
        if e.at.is_none() {
            e.at = Some(At {
                line: self.node.line,
                column: self.node.column,
                path: self.path.clone(),
                id: self.node.id,
            });
        }
        e
    }

    fn child(&self, node: &'a Node, path: String) -> NodeDe<'a> {
        NodeDe {
            node,
            path,
            ctx: self.ctx,
        }
    }

    fn map_access(&self, pairs: &'a [(Node, Node)]) -> MapAcc<'a> {
        MapAcc {
            pairs,
            pos: 0,
            path: self.path.clone(),
            ctx: self.ctx,
            value: None,
            only: None,
        }
    }

    fn any<'de, V: Visitor<'de>>(&self, v: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Null => v.visit_unit(),
            NodeKind::Bool(b) => v.visit_bool(*b),
            NodeKind::Int(i) => v.visit_i64(*i),
            NodeKind::UInt(u) => v.visit_u64(*u),
            NodeKind::Float(f) => v.visit_f64(*f),
            NodeKind::Str(s) => v.visit_str(s),
            NodeKind::Seq(items) => v.visit_seq(SeqAcc {
                items,
                pos: 0,
                path: self.path.clone(),
                ctx: self.ctx,
            }),
            NodeKind::Map(pairs) => v.visit_map(self.map_access(pairs)),
        }
    }
}

macro_rules! forward_located {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            let r = self.any(v);
            r.map_err(|e| self.locate(e))
        }
    )*};
}

impl<'de, 'a> de::Deserializer<'de> for NodeDe<'a> {
    type Error = DeError;

    forward_located! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_bytes deserialize_byte_buf deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_string(v)
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            NodeKind::Str(s) => v.visit_str(s),
            k @ (NodeKind::Bool(_) | NodeKind::Int(_) | NodeKind::UInt(_) | NodeKind::Float(_)) => {
                v.visit_string(k.scalar_text().unwrap_or_default())
            }
            _ => self.any(v),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match self.node.kind {
            NodeKind::Null => v.visit_none(),
            _ => v.visit_some(NodeDe {
                node: self.node,
                path: self.path.clone(),
                ctx: self.ctx,
            }),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        let r = if name == SP_MARKER {
            v.visit_seq(SpSeq {
                de: Some(NodeDe {
                    node: self.node,
                    path: self.path.clone(),
                    ctx: self.ctx,
                }),
                pos: 0,
            })
        } else {
            v.visit_newtype_struct(NodeDe {
                node: self.node,
                path: self.path.clone(),
                ctx: self.ctx,
            })
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            NodeKind::Map(pairs) => {
                // Unknown keys are reported and skipped, so one pass finds all of them.
                for (k, val) in pairs {
                    if self.ctx.removed.contains(&val.id) || self.ctx.removed.contains(&k.id) {
                        continue;
                    }
                    let name = k.kind.scalar_text().unwrap_or_default();
                    if !fields.contains(&name.as_str()) {
                        let kd = self.child(k, child_path(&self.path, &name));
                        self.ctx
                            .note(kd.locate(de::Error::unknown_field(&name, fields)));
                    }
                }
                let mut acc = self.map_access(pairs);
                acc.only = Some(fields);
                v.visit_map(acc)
            }
            _ => Err(de::Error::invalid_type(unexpected(&self.node.kind), &v)),
        };
        r.map_err(|mut e| {
            // A missing field is reported at its mapping, named by its own path.
            if let (None, Some(field)) = (&e.at, e.missing) {
                e.at = Some(At {
                    line: self.node.line,
                    column: self.node.column,
                    path: child_path(&self.path, field),
                    id: self.node.id,
                });
            }
            self.locate(e)
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            NodeKind::Str(_) => v.visit_enum(EnumAcc {
                tag: self.child(self.node, self.path.clone()),
                value: None,
            }),
            NodeKind::Map(pairs) if pairs.len() == 1 => {
                let (k, val) = &pairs[0];
                let name = k.kind.scalar_text().unwrap_or_default();
                let p = child_path(&self.path, &name);
                v.visit_enum(EnumAcc {
                    tag: self.child(k, p.clone()),
                    value: Some(self.child(val, p)),
                })
            }
            other => Err(DeError::custom(format!(
                "expected {}, found {}",
                Expecting(&v),
                other.describe()
            ))),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }
}

struct Expecting<'v, V>(&'v V);
impl<'de, V: Visitor<'de>> fmt::Display for Expecting<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }
}

fn unexpected(kind: &NodeKind) -> de::Unexpected<'_> {
    match kind {
        NodeKind::Null => de::Unexpected::Unit,
        NodeKind::Bool(b) => de::Unexpected::Bool(*b),
        NodeKind::Int(i) => de::Unexpected::Signed(*i),
        NodeKind::UInt(u) => de::Unexpected::Unsigned(*u),
        NodeKind::Float(f) => de::Unexpected::Float(*f),
        NodeKind::Str(s) => de::Unexpected::Str(s),
        NodeKind::Seq(_) => de::Unexpected::Seq,
        NodeKind::Map(_) => de::Unexpected::Map,
    }
}

struct SeqAcc<'a> {
    items: &'a [Node],
    pos: usize,
    path: String,
    ctx: &'a Ctx,
}

impl<'de, 'a> de::SeqAccess<'de> for SeqAcc<'a> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        while let Some(item) = self.items.get(self.pos) {
            let index = self.pos;
            self.pos += 1;
            if self.ctx.removed.contains(&item.id) {
                continue;
            }
            let de = NodeDe {
                node: item,
                path: format!("{}[{index}]", self.path),
                ctx: self.ctx,
            };
            return seed.deserialize(de).map(Some);
        }
        Ok(None)
    }
}

struct MapAcc<'a> {
    pairs: &'a [(Node, Node)],
    pos: usize,
    path: String,
    ctx: &'a Ctx,
    value: Option<NodeDe<'a>>,
    /// For structs: keys outside the field list were reported already and are skipped.
    only: Option<&'static [&'static str]>,
}

impl<'de, 'a> de::MapAccess<'de> for MapAcc<'a> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        while let Some((k, v)) = self.pairs.get(self.pos) {
            self.pos += 1;
            if self.ctx.removed.contains(&k.id) || self.ctx.removed.contains(&v.id) {
                continue;
            }
            let name = k.kind.scalar_text().unwrap_or_default();
            if self.only.is_some_and(|f| !f.contains(&name.as_str())) {
                continue;
            }
            let path = child_path(&self.path, &name);
            let kd = NodeDe {
                node: k,
                path: path.clone(),
                ctx: self.ctx,
            };
            let key = seed.deserialize(kd)?;
            self.value = Some(NodeDe {
                node: v,
                path,
                ctx: self.ctx,
            });
            return Ok(Some(key));
        }
        Ok(None)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(de) => seed.deserialize(de),
            None => Err(DeError::custom("value requested before key")),
        }
    }
}

struct EnumAcc<'a> {
    tag: NodeDe<'a>,
    value: Option<NodeDe<'a>>,
}

impl<'de, 'a> de::EnumAccess<'de> for EnumAcc<'a> {
    type Error = DeError;
    type Variant = VariantAcc<'a>;
    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantAcc<'a>), DeError> {
        let name = self.tag.node.kind.scalar_text().unwrap_or_default();
        let v = seed
            .deserialize(name.as_str().into_deserializer())
            .map_err(|e: DeError| self.tag.locate(e))?;
        Ok((v, VariantAcc { value: self.value }))
    }
}

struct VariantAcc<'a> {
    value: Option<NodeDe<'a>>,
}

impl<'de, 'a> de::VariantAccess<'de> for VariantAcc<'a> {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            None => Ok(()),
            Some(de) => match de.node.kind {
                NodeKind::Null => Ok(()),
                _ => Err(de.locate(DeError::custom("this value takes no settings"))),
            },
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        match self.value {
            Some(de) => seed.deserialize(de),
            None => Err(DeError::custom("this value needs settings (a mapping)")),
        }
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        match self.value {
            Some(de) => de::Deserializer::deserialize_seq(de, v),
            None => Err(DeError::custom("this value needs a list")),
        }
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match self.value {
            Some(de) => de::Deserializer::deserialize_struct(de, "", fields, v),
            None => Err(DeError::custom("this value needs settings (a mapping)")),
        }
    }
}

/// Feeds `Sp<T>`'s visitor: line, column, then the value itself.
struct SpSeq<'a> {
    de: Option<NodeDe<'a>>,
    pos: u8,
}

impl<'de, 'a> de::SeqAccess<'de> for SpSeq<'a> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(de) = self.de.as_ref() else {
            return Ok(None);
        };
        let (line, column) = (de.node.line, de.node.column);
        self.pos += 1;
        match self.pos {
            1 => seed.deserialize(line.into_deserializer()).map(Some),
            2 => seed.deserialize(column.into_deserializer()).map(Some),
            _ => {
                let de = self.de.take().expect("checked above");
                seed.deserialize(de).map(Some)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Sp;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        rate: Sp<u32>,
        name: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
        mode: Mode,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Open,
        Closed,
    }

    fn de<T: for<'a> Deserialize<'a>>(text: &str) -> (Result<T, DeError>, Vec<DeError>) {
        let node = Node::parse(text).expect("yaml");
        let ctx = Ctx::default();
        let r = T::deserialize(NodeDe {
            node: &node,
            path: String::new(),
            ctx: &ctx,
        });
        (r, ctx.found.into_inner())
    }

    #[test]
    fn positions_and_paths() {
        let (r, found) = de::<Outer>("items:\n  - rate: 5\n    nam: x\nmode: open\n");
        let o = r.expect("ok");
        assert_eq!(
            (
                o.items[0].rate.value,
                o.items[0].rate.line,
                o.items[0].rate.column
            ),
            (5, 2, 11)
        );
        assert_eq!(found.len(), 1);
        let at = found[0].at.clone().expect("located");
        assert_eq!(
            (at.line, at.column, at.path.as_str()),
            (3, 5, "items[0].nam")
        );
        assert_eq!(
            found[0].message,
            "unknown field `nam`, did you mean `name`?"
        );
    }

    #[test]
    fn type_error_located() {
        let (r, _) = de::<Outer>("items:\n  - rate: fast\nmode: open\n");
        let e = r.expect_err("bad type");
        let at = e.at.expect("located");
        assert_eq!(
            (at.line, at.column, at.path.as_str()),
            (2, 11, "items[0].rate")
        );
        assert_eq!(
            e.message,
            "expected a whole number (0..=4294967295), found the string `fast`"
        );
    }

    #[test]
    fn unknown_variant_suggests() {
        let (r, _) = de::<Outer>("items: []\nmode: opne\n");
        let e = r.expect_err("bad variant");
        assert_eq!(e.message, "unknown value `opne`, did you mean `open`?");
        assert_eq!(e.at.expect("at").path, "mode");
    }
}
