//! The live progress output on stderr: an indicatif bar on a TTY, one plain line per interval
//! otherwise (readable in `kubectl logs`), nothing with `--quiet`. Reads snapshots only.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::{Control, Sink};
use crate::plan;
use crate::recorder::Snapshot;

pub struct Progress {
    mode: Mode,
    total: Duration,
}

enum Mode {
    Bar(ProgressBar),
    Plain,
    Quiet,
}

impl Progress {
    pub fn new(setting: plan::Progress, total: Duration) -> Progress {
        let mode = match setting {
            plan::Progress::Quiet => Mode::Quiet,
            plan::Progress::Plain => Mode::Plain,
            plan::Progress::Auto if std::io::stderr().is_terminal() => {
                let bar = ProgressBar::new(total.as_secs().max(1));
                if let Ok(style) =
                    ProgressStyle::with_template("{bar:30.cyan/blue} {pos:>4}/{len}s {msg}")
                {
                    bar.set_style(style.progress_chars("=> "));
                }
                Mode::Bar(bar)
            }
            plan::Progress::Auto => Mode::Plain,
        };
        Progress { mode, total }
    }

    /// One interval's line (or bar update).
    pub fn tick(&mut self, s: &Snapshot) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Bar(bar) => {
                bar.set_position(s.elapsed.as_secs());
                bar.set_message(line(s));
            }
            Mode::Plain => eprintln!(
                "[{:>5.0}s/{:.0}s] {}",
                s.elapsed.as_secs_f64(),
                self.total.as_secs_f64(),
                line(s)
            ),
        }
    }

    pub fn finish(&mut self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }
}

/// The figures of one progress line.
pub fn line(s: &Snapshot) -> String {
    let t = s.totals();
    let errors: u64 = t.errors.iter().sum();
    let err_pct = if t.requests > 0 {
        100.0 * errors as f64 / t.requests as f64
    } else {
        0.0
    };
    let mut p99 = 0u64;
    for op in &s.ops {
        p99 = p99.max(op.response_time.value_at_quantile(0.99));
    }
    let mut l = format!("{} req, {:.1}/s", t.requests, s.achieved_rate);
    if s.target_rate > 0.0 {
        l += &format!(" (target {:.1}/s)", s.target_rate);
    }
    l += &format!(
        ", errors {err_pct:.2}%, p99 {:.1} ms, in flight {}",
        p99 as f64 / 1000.0,
        s.in_flight
    );
    if s.vus > 0 {
        l += &format!(", vus {}", s.vus);
    }
    if t.dropped > 0 || t.late > 0 {
        l += &format!(", dropped {}, late {}", t.dropped, t.late);
    }
    l
}

impl Sink for Progress {
    fn on_interval(&mut self, snapshot: &Snapshot, _: &mut Control) {
        if snapshot.finished {
            self.finish();
        } else {
            self.tick(snapshot);
        }
    }
}
