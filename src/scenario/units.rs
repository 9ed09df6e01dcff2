//! Value newtypes of the scenario format: `Sp<T>` (a value with its position), `Duration`
//! ("30s", "1m30s", "250ms"), `Rate` ("200/s", "12000/m" or a number per second) and `Share`
//! ("50%" or a fraction). Each parses with `FromStr` and deserializes from YAML scalars.

use std::fmt;

use serde::de::{self, Visitor};
use serde::Deserialize;

use super::de::SP_MARKER;

/// A value with the position of the YAML node it came from (0:0 when deserialized from
/// something other than a scenario file), so semantic errors point at the offending node.
#[derive(Debug, Clone, PartialEq)]
pub struct Sp<T> {
    pub value: T,
    pub line: u32,
    pub column: u32,
}

impl<T> Sp<T> {
    pub fn new(value: T) -> Self {
        Sp { value, line: 0, column: 0 }
    }
}

impl<T> std::ops::Deref for Sp<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SpVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for SpVisitor<T> {
            type Value = Sp<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a located value")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Sp<T>, A::Error> {
                let line = seq.next_element()?.unwrap_or(0);
                let column = seq.next_element()?.unwrap_or(0);
                let value = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("located value without a value"))?;
                Ok(Sp { value, line, column })
            }
            fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Sp<T>, D::Error> {
                T::deserialize(d).map(Sp::new)
            }
        }
        d.deserialize_newtype_struct(SP_MARKER, SpVisitor(std::marker::PhantomData))
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(g)
    }
}

