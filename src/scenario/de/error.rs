//! The error of the located deserializer, with messages in the words of a YAML file
//! ("expected a whole number", "unknown field `x`, did you mean `y`?").

use std::fmt;

use serde::de;

use crate::scenario::suggest::unknown_message;

/// A deserialization problem at a node.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    pub message: String,
    /// Set by the innermost node deserializer the error passes through.
    pub at: Option<At>,
    /// `missing field` errors name the field, so removal of that field's value can be told
    /// apart from a real omission.
    pub missing: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct At {
    pub line: u32,
    pub column: u32,
    pub path: String,
    pub id: u32,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            at: None,
            missing: None,
        }
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError::custom(unknown_message("field", field, expected))
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError::custom(unknown_message("value", variant, expected))
    }
    fn missing_field(field: &'static str) -> Self {
        DeError {
            message: format!("missing field `{field}`"),
            at: None,
            missing: Some(field),
        }
    }
    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        DeError::custom(format!(
            "expected {}, found {}",
            plain_expected(exp),
            describe_unexpected(&unexp)
        ))
    }
    fn invalid_value(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        DeError::custom(format!(
            "expected {}, found {}",
            plain_expected(exp),
            describe_unexpected(&unexp)
        ))
    }
}

/// serde's Rust-flavoured expectations in the words of a YAML file.
fn plain_expected(exp: &dyn de::Expected) -> String {
    let e = exp.to_string();
    match e.as_str() {
        "u8" | "u16" | "u32" | "u64" | "usize" => format!(
            "a whole number (0..={})",
            match e.as_str() {
                "u8" => u64::from(u8::MAX),
                "u16" => u64::from(u16::MAX),
                "u32" => u64::from(u32::MAX),
                _ => u64::MAX,
            }
        ),
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".into(),
        "f32" | "f64" => "a number".into(),
        "a sequence" => "a list".into(),
        "a map" => "a mapping".into(),
        "a boolean" | "bool" => "`true` or `false`".into(),
        "a string" => "text".into(),
        _ if e.starts_with("struct ") => "a mapping".into(),
        _ => e,
    }
}

fn describe_unexpected(u: &de::Unexpected) -> String {
    match u {
        de::Unexpected::Str(s) => format!("the string `{s}`"),
        de::Unexpected::Unsigned(n) => format!("the integer `{n}`"),
        de::Unexpected::Signed(n) => format!("the integer `{n}`"),
        de::Unexpected::Float(n) => format!("the number `{n}`"),
        de::Unexpected::Bool(b) => format!("the boolean `{b}`"),
        de::Unexpected::Seq => "a list".to_string(),
        de::Unexpected::Map => "a mapping".to_string(),
        de::Unexpected::Unit => "null".to_string(),
        other => other.to_string(),
    }
}
