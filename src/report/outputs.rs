//! The files made from the final report besides the JSON one: the HTML page (`output.html`,
//! `--html`) and JUnit XML (`output.junit`, `--junit`). Each is written on every exit path
//! that writes the report; a failure to write one is reported, never fatal.

use super::{Report, html, junit};
use crate::plan::Output;

/// Writes the HTML and JUnit files the plan asks for; returns one message per failure.
pub fn write_extras(report: &Report, output: &Output) -> Vec<String> {
    let mut messages = Vec::new();
    if let Some(p) = &output.html
        && let Err(e) = html::write(report, p)
    {
        messages.push(format!("html report: {e}"));
    }
    if let Some(p) = &output.junit
        && let Err(e) = junit::write(report, p)
    {
        messages.push(format!("junit: {e}"));
    }
    messages
}
