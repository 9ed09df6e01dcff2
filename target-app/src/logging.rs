//! Pino-style JSON log lines: `level` upper-case, ISO `time`, `msg`, then the fields (`todoId`,
//! `text`, `traceId`, `spanId`, and for the access line `method`, `route`, `status`,
//! `duration` in milliseconds as a number). One line per event, written whole.

use std::io::Write as _;

use serde_json::{Map, Value};

use crate::config::LogOutput;

pub struct Logger {
    out: LogOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

impl Logger {
    pub fn new(out: LogOutput) -> Logger {
        Logger { out }
    }

    pub fn enabled(&self) -> bool {
        !matches!(self.out, LogOutput::Off)
    }

    /// Writes one line; `fields` follow `level`, `time` and `msg` in the given order.
    pub fn log(&self, level: Level, msg: &str, fields: Vec<(&'static str, Value)>) {
        if !self.enabled() {
            return;
        }
        let mut m = Map::new();
        m.insert("level".into(), Value::from(level.as_str()));
        m.insert("time".into(), Value::from(now_iso()));
        m.insert("msg".into(), Value::from(msg));
        for (k, v) in fields {
            m.insert(k.into(), v);
        }
        let line = Value::Object(m).to_string();
        match &self.out {
            LogOutput::Off => {}
            LogOutput::Stdout => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
            }
            LogOutput::Memory(lines) => lines.lock().unwrap_or_else(|p| p.into_inner()).push(line),
        }
    }
}

/// `2025-10-19T16:30:00.000Z`, as Pino's `isoTime`.
pub fn now_iso() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&fmt).unwrap_or_default()
}
