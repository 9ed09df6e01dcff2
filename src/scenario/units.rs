//! Value newtypes of the scenario format: `Sp<T>` (a value with its position), `Duration`
//! ("30s", "1m30s", "250ms"), `Rate` ("200/s", "12000/m" or a number per second) and `Share`
//! ("50%" or a fraction). Each parses with `FromStr` and deserializes from YAML scalars.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Visitor};

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
        Sp {
            value,
            line: 0,
            column: 0,
        }
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
                Ok(Sp {
                    value,
                    line,
                    column,
                })
            }
            fn visit_newtype_struct<D: de::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Sp<T>, D::Error> {
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

/// A length of time written with units: `30s`, `1m30s`, `250ms`, `1.5s`, `2h`, `500us`, or `0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Duration(pub std::time::Duration);

impl std::str::FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t == "0" {
            return Ok(Duration(std::time::Duration::ZERO));
        }
        let bad = || format!("`{s}` is not a duration (examples: `30s`, `1m30s`, `250ms`)");
        if t.is_empty() {
            return Err(bad());
        }
        let mut total = 0f64;
        let mut rest = t;
        let mut last_scale = f64::INFINITY;
        while !rest.is_empty() {
            let num_end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            if num_end == 0 {
                return Err(bad());
            }
            let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
            rest = &rest[num_end..];
            let unit_end = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let scale = match &rest[..unit_end] {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 1e-3,
                "us" | "µs" => 1e-6,
                "" => return Err(format!("`{s}` needs a unit (h, m, s, ms, us), e.g. `{s}s`")),
                u => return Err(format!("`{s}`: unknown unit `{u}` (use h, m, s, ms or us)")),
            };
            // Parts must go from larger to smaller units ("1m30s", not "30s1m").
            if scale >= last_scale {
                return Err(bad());
            }
            last_scale = scale;
            total += n * scale;
            rest = &rest[unit_end..];
        }
        std::time::Duration::try_from_secs_f64(total)
            .map(Duration)
            .map_err(|_| {
                format!(
                    "`{s}` is too long for a duration (the longest allowed is {}h)",
                    super::limits::MAX_RUN.as_secs() / 3600
                )
            })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let ms = self.0.as_millis();
        if !self.0.subsec_nanos().is_multiple_of(1_000_000) {
            write!(f, "{}us", self.0.as_micros())
        } else if !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as `30s`, `1m30s` or `250ms`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                v.to_string().parse().map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                v.to_string().parse().map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
                v.to_string().parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Requests per second, written `200/s`, `12000/m`, `36000/h` or as a plain number (per second).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Rate(pub f64);

impl std::str::FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a rate (examples: `200/s`, `12000/m`, `50`)");
        let t = s.trim();
        let (num, per) = match t.split_once('/') {
            Some((n, u)) => {
                let per = match u.trim() {
                    "s" => 1.0,
                    "m" => 60.0,
                    "h" => 3600.0,
                    u => {
                        return Err(format!(
                            "`{s}`: unknown rate unit `/{u}` (use /s, /m or /h)"
                        ));
                    }
                };
                (n.trim(), per)
            }
            None => (t, 1.0),
        };
        let n: f64 = num.parse().map_err(|_| bad())?;
        if !n.is_finite() {
            return Err(format!("`{s}` is not a finite rate"));
        }
        if n < 0.0 {
            return Err(format!("`{s}`: a rate cannot be negative"));
        }
        Ok(Rate(n / per))
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a rate such as `200/s`, `12000/m` or a number per second")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Rate, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Rate, E> {
                Ok(Rate(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Rate, E> {
                v.to_string().parse().map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Rate, E> {
                v.to_string().parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A fraction in [0, 1], written `25%` or `0.25`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Share(pub f64);

impl std::str::FromStr for Share {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let v = match t.strip_suffix('%') {
            Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
            None => t.parse::<f64>(),
        }
        .map_err(|_| format!("`{s}` is not a share (examples: `25%`, `0.25`)"))?;
        if !(0.0..=1.0).contains(&v) {
            return Err(format!("`{s}` is outside 0%..100%"));
        }
        Ok(Share(v))
    }
}

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Share;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a share such as `25%` or `0.25`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Share, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Share, E> {
                v.to_string().parse().map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Share, E> {
                v.to_string().parse().map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Share, E> {
                v.to_string().parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration with units, largest first: `30s`, `1m30s`, `250ms`, `2h`.",
            "anyOf": [
                { "type": "string", "pattern": r"^(0|([0-9]+(\.[0-9]+)?(h|m|s|ms|us))+)$" },
                { "const": 0 }
            ]
        })
    }
}

impl schemars::JsonSchema for Rate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rate".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Requests per second: `200/s`, `12000/m`, `36000/h` or a number.",
            "anyOf": [
                { "type": "number", "minimum": 0, "maximum": super::limits::MAX_RATE },
                { "type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(/(s|m|h))?$" }
            ]
        })
    }
}

impl schemars::JsonSchema for Share {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Share".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A share of requests: `25%` or a fraction `0.25`.",
            "anyOf": [
                { "type": "number", "minimum": 0, "maximum": 1 },
                { "type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?%$" }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as Std;

    #[test]
    fn durations() {
        let d = |s: &str| s.parse::<Duration>().map(|d| d.0);
        assert_eq!(d("30s"), Ok(Std::from_secs(30)));
        assert_eq!(d("1m30s"), Ok(Std::from_secs(90)));
        assert_eq!(d("250ms"), Ok(Std::from_millis(250)));
        assert_eq!(d("1.5s"), Ok(Std::from_millis(1500)));
        assert_eq!(d("1h2m3s"), Ok(Std::from_secs(3723)));
        assert_eq!(d("0"), Ok(Std::ZERO));
        assert_eq!(
            d("30"),
            Err("`30` needs a unit (h, m, s, ms, us), e.g. `30s`".into())
        );
        assert_eq!(
            d("3x"),
            Err("`3x`: unknown unit `x` (use h, m, s, ms or us)".into())
        );
        assert!(d("30s1m").is_err());
        assert!(d("").is_err());
        assert!(d("s").is_err());
        assert_eq!(Duration(Std::from_millis(1500)).to_string(), "1500ms");
        assert_eq!(Duration(Std::from_secs(60)).to_string(), "60s");
    }

    #[test]
    fn rates_and_shares() {
        assert_eq!("200/s".parse::<Rate>(), Ok(Rate(200.0)));
        assert_eq!("12000/m".parse::<Rate>(), Ok(Rate(200.0)));
        assert_eq!("50".parse::<Rate>(), Ok(Rate(50.0)));
        assert!("fast".parse::<Rate>().is_err());
        assert!("-1/s".parse::<Rate>().is_err());
        assert_eq!(
            "inf/s".parse::<Rate>(),
            Err("`inf/s` is not a finite rate".into())
        );
        assert!("NaN".parse::<Rate>().is_err());
        assert!("5/d".parse::<Rate>().is_err());
        assert_eq!("25%".parse::<Share>(), Ok(Share(0.25)));
        assert_eq!("0.5".parse::<Share>(), Ok(Share(0.5)));
        assert!("150%".parse::<Share>().is_err());
    }
}
