//! Pino-style JSON lines: `level` upper-case, ISO `time`, `msg`, then the fields (`todoId`,
//! `text`, `traceId`, `spanId`, and for the access line `method`, `route`, `status`,
//! `duration` in milliseconds as a number). One line per event, written whole.
//!
//! Request handling never waits for the output: lines for stdout go into a bounded queue that
//! a thread of their own writes out. A slow or stuck reader of stdout (a log shipper that
//! stalled) fills the queue; further lines are dropped and counted
//! (`tp2devops_log_lines_dropped_total`) instead of blocking every route.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::LogOutput;

pub struct Logger {
    out: Sink,
    dropped: Arc<AtomicU64>,
}

enum Sink {
    Off,
    Memory(Arc<Mutex<Vec<String>>>),
    Queue {
        tx: SyncSender<String>,
        /// Lines queued and not yet written; `flush` waits on it.
        pending: Arc<(Mutex<usize>, Condvar)>,
    },
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

/// The writer thread: writes every queued line to stdout, flushing whenever the queue is empty.
/// It ends when the logger (the only sender) is dropped.
fn write_lines(rx: Receiver<String>, pending: Arc<(Mutex<usize>, Condvar)>) {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let done = |n: usize| {
        let (count, cv) = &*pending;
        let mut c = count.lock().unwrap_or_else(|p| p.into_inner());
        *c = c.saturating_sub(n);
        cv.notify_all();
    };
    while let Ok(first) = rx.recv() {
        let _ = writeln!(out, "{first}");
        let mut n = 1;
        while let Ok(line) = rx.try_recv() {
            let _ = writeln!(out, "{line}");
            n += 1;
        }
        let _ = out.flush();
        done(n);
    }
}

impl Logger {
    /// `queue_lines`: how many stdout lines may wait for the writer thread.
    pub fn new(out: LogOutput, queue_lines: usize) -> Logger {
        let out = match out {
            LogOutput::Off => Sink::Off,
            LogOutput::Memory(lines) => Sink::Memory(lines),
            LogOutput::Stdout => {
                let (tx, rx) = std::sync::mpsc::sync_channel(queue_lines.max(1));
                let pending = Arc::new((Mutex::new(0), Condvar::new()));
                let p = pending.clone();
                match std::thread::Builder::new()
                    .name("todo-api-log".into())
                    .spawn(move || write_lines(rx, p))
                {
                    Ok(_) => Sink::Queue { tx, pending },
                    Err(e) => {
                        eprintln!("todo-api: cannot start the log writer thread, logs off: {e}");
                        Sink::Off
                    }
                }
            }
        };
        Logger {
            out,
            dropped: Arc::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        !matches!(self.out, Sink::Off)
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
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
            Sink::Off => {}
            Sink::Memory(lines) => lines.lock().unwrap_or_else(|p| p.into_inner()).push(line),
            Sink::Queue { tx, pending } => {
                // Count before sending: the writer may finish the line before we get back.
                *pending.0.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                    tx.try_send(line)
                {
                    let (count, cv) = &**pending;
                    let mut c = count.lock().unwrap_or_else(|p| p.into_inner());
                    *c = c.saturating_sub(1);
                    cv.notify_all();
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Waits (blocking) until every queued line is written, at most `limit` (stdout may be
    /// stuck). For the shutdown path; call it from a blocking context.
    pub fn flush(&self, limit: Duration) {
        if let Sink::Queue { pending, .. } = &self.out {
            let (count, cv) = &**pending;
            let c = count.lock().unwrap_or_else(|p| p.into_inner());
            let _ = cv.wait_timeout_while(c, limit, |c| *c > 0);
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
