//! The live progress output on stderr: an indicatif bar on a TTY, one plain line per interval
//! otherwise (readable in `kubectl logs`), nothing with `--quiet`. Reads snapshots and events
//! only.
//!
//! The percentiles on the line are those of the last interval (the difference of two cumulative
//! snapshots), so a slowdown shows when it happens instead of being averaged into the whole
//! run; the line also names the fault windows active now, and a server-side window that could
//! not be applied is printed when it fails and marked on every line after.

use std::io::IsTerminal;
use std::time::Duration;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};

use super::{Control, Event, Sink};
use crate::plan::{self, FaultKind, FaultVia, FaultWindow};
use crate::recorder::{Snapshot, new_histogram};

pub struct Progress {
    mode: Mode,
    total: Duration,
    /// A short label per plan fault window (`#0 latency/server`), and its time span.
    faults: Vec<String>,
    spans: Vec<(Duration, Duration)>,
    /// Windows that could not be applied (server-side).
    failed: Vec<usize>,
    /// The cumulative response times at the previous tick (all operations merged).
    prev: Histogram<u64>,
    prev_elapsed: Duration,
}

enum Mode {
    Bar(ProgressBar),
    Plain,
    Quiet,
}

/// What the line shows of the last interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub seconds: f64,
    /// None: no response in the interval.
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
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
        Progress {
            mode,
            total,
            faults: Vec::new(),
            spans: Vec::new(),
            failed: Vec::new(),
            prev: new_histogram(),
            prev_elapsed: Duration::ZERO,
        }
    }

    /// Names the plan's fault windows on the line while they are active.
    pub fn with_faults(mut self, faults: &[FaultWindow]) -> Progress {
        self.faults = faults.iter().enumerate().map(fault_label).collect();
        self.spans = faults
            .iter()
            .map(|w| (w.start, w.start.saturating_add(w.duration)))
            .collect();
        self
    }

    /// The last interval's figures; remembers this snapshot for the next one.
    pub fn interval(&mut self, s: &Snapshot) -> Interval {
        let mut now = new_histogram();
        for op in &s.ops {
            // Same bounds everywhere (`new_histogram`): adding cannot fail but for a saturated
            // count, and then the line shows less, never wrong figures.
            let _ = now.add(&op.response_time);
        }
        let mut last = now.clone();
        let fresh = last.subtract(&self.prev).is_ok();
        let seconds = s
            .elapsed
            .saturating_sub(self.prev_elapsed)
            .as_secs_f64()
            .max(0.001);
        self.prev = now;
        self.prev_elapsed = s.elapsed;
        if !fresh || last.is_empty() {
            return Interval {
                seconds,
                p50_us: None,
                p99_us: None,
            };
        }
        Interval {
            seconds,
            p50_us: Some(last.value_at_quantile(0.5)),
            p99_us: Some(last.value_at_quantile(0.99)),
        }
    }

    /// One interval's line (or bar update).
    pub fn tick(&mut self, s: &Snapshot) {
        if matches!(self.mode, Mode::Quiet) {
            return;
        }
        let iv = self.interval(s);
        // Failed windows are not in the snapshot's active list: shown in their time, marked.
        let failed: Vec<usize> = self
            .failed
            .iter()
            .copied()
            .filter(|&i| {
                self.spans
                    .get(i)
                    .is_some_and(|&(a, b)| s.elapsed >= a && s.elapsed < b)
            })
            .collect();
        let text = line(s, &iv, &self.faults, &failed);
        match &self.mode {
            Mode::Quiet => {}
            Mode::Bar(bar) => {
                bar.set_position(s.elapsed.as_secs());
                bar.set_message(text);
            }
            Mode::Plain => eprintln!(
                "[{:>5.0}s/{:.0}s] {text}",
                s.elapsed.as_secs_f64(),
                self.total.as_secs_f64(),
            ),
        }
    }

    /// A line of its own (an event), above the bar on a TTY.
    fn say(&self, text: &str) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Bar(bar) => bar.println(text),
            Mode::Plain => eprintln!("{text}"),
        }
    }

    pub fn finish(&mut self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }
}

fn fault_label((i, w): (usize, &FaultWindow)) -> String {
    let kind = match w.kind {
        FaultKind::Latency { .. } => "latency",
        FaultKind::Error { .. } => "error",
    };
    let via = match w.via {
        FaultVia::Header => "header",
        FaultVia::Server => "server",
    };
    format!("#{i} {kind}/{via}")
}

fn ms(us: Option<u64>) -> String {
    us.map_or("-".to_string(), |v| format!("{:.1} ms", v as f64 / 1000.0))
}

/// The figures of one progress line: counts since the start, percentiles of the last interval
/// (`iv`), the active fault windows (`labels` by plan index) and, marked, the `failed` ones
/// whose time it is.
pub fn line(s: &Snapshot, iv: &Interval, labels: &[String], failed: &[usize]) -> String {
    let t = s.totals();
    let errors: u64 = t.errors.iter().sum();
    let err_pct = if t.requests > 0 {
        100.0 * errors as f64 / t.requests as f64
    } else {
        0.0
    };
    let mut l = format!("{} req, {:.1}/s", t.requests, s.achieved_rate);
    if s.target_rate > 0.0 {
        l += &format!(" (target {:.1}/s)", s.target_rate);
    }
    // One decimal for sub-10 s intervals (`output.interval: 500ms` is `last 0.5s`).
    let secs = if iv.seconds < 10.0 {
        format!("{:.1}", iv.seconds)
    } else {
        format!("{:.0}", iv.seconds)
    };
    l += &format!(
        ", errors {err_pct:.2}%, last {secs}s p50 {} p99 {}, in flight {}",
        ms(iv.p50_us),
        ms(iv.p99_us),
        s.in_flight
    );
    if s.vus > 0 {
        l += &format!(", vus {}", s.vus);
    }
    if t.dropped > 0 || t.late > 0 {
        l += &format!(", dropped {}, late {}", t.dropped, t.late);
    }
    let mut shown: Vec<usize> = s.active_faults.iter().chain(failed).copied().collect();
    shown.sort_unstable();
    shown.dedup();
    if !shown.is_empty() {
        let names: Vec<String> = shown
            .iter()
            .map(|&i| {
                let name = labels.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
                if failed.contains(&i) {
                    format!("{name} FAILED")
                } else {
                    name
                }
            })
            .collect();
        l += &format!(", faults {}", names.join(", "));
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

    fn on_event(&mut self, event: &Event) {
        if let Event::FaultFailed(i, why) = event {
            if !self.failed.contains(i) {
                self.failed.push(*i);
            }
            let name = self
                .faults
                .get(*i)
                .cloned()
                .unwrap_or_else(|| format!("#{i}"));
            self.say(&format!(
                "trafficgen: fault window {name} FAILED, not applied: {why}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::{Counts, OpSnapshot, Phases};

    fn snap(elapsed_s: u64, times_us: &[u64], active: Vec<usize>) -> Snapshot {
        let mut h = new_histogram();
        for &t in times_us {
            h.record(t).unwrap();
        }
        Snapshot {
            elapsed: Duration::from_secs(elapsed_s),
            ops: vec![OpSnapshot {
                name: "get".into(),
                counts: Counts {
                    requests: times_us.len() as u64,
                    ..Counts::default()
                },
                response_time: h.clone(),
                service_time: h.clone(),
                lag: new_histogram(),
                last_trace: None,
                phases: Phases::default(),
            }],
            target_rate: 0.0,
            achieved_rate: 0.0,
            in_flight: 0,
            vus: 0,
            active_faults: active,
            slowest: vec![],
            failed: vec![],
            faulted: vec![],
            fault_injected: vec![],
            finished: false,
            steps: vec![],
        }
    }

    #[test]
    fn percentiles_are_those_of_the_last_interval() {
        let mut p = Progress::new(plan::Progress::Quiet, Duration::from_secs(10));
        // First interval: 100 fast requests (1 ms).
        let fast: Vec<u64> = vec![1_000; 100];
        let iv = p.interval(&snap(1, &fast, vec![]));
        assert_eq!(iv.p99_us.map(|v| v / 100), Some(10));
        // Second interval: 10 slow ones (500 ms) added to the cumulative figures. Cumulative
        // p50 would still be 1 ms; the interval's is 500 ms.
        let mut both = fast.clone();
        both.extend([500_000; 10]);
        let iv = p.interval(&snap(2, &both, vec![]));
        assert_eq!(iv.p50_us.map(|v| v / 1000), Some(500), "{iv:?}");
        assert!((iv.seconds - 1.0).abs() < 1e-9);
        // Nothing new: no percentiles rather than stale ones.
        let iv = p.interval(&snap(3, &both, vec![]));
        assert_eq!(iv.p50_us, None);
        let l = line(&snap(3, &both, vec![]), &iv, &[], &[]);
        assert!(l.contains("p50 - p99 -"), "{l}");
    }

    #[test]
    fn the_line_names_active_and_failed_windows() {
        let labels = vec![
            "#0 latency/header".to_string(),
            "#1 error/server".to_string(),
        ];
        let iv = Interval {
            seconds: 1.0,
            p50_us: Some(1500),
            p99_us: Some(9000),
        };
        let l = line(&snap(1, &[1500], vec![0]), &iv, &labels, &[1]);
        assert!(
            l.ends_with(", faults #0 latency/header, #1 error/server FAILED"),
            "{l}"
        );
        assert!(l.contains("last 1.0s p50 1.5 ms p99 9.0 ms"), "{l}");
        let l = line(&snap(1, &[1500], vec![]), &iv, &labels, &[]);
        assert!(!l.contains("faults"), "{l}");
    }
}
