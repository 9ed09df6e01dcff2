//! Scheduler under a paused tokio clock: exact arrival counts per stage, the ramp's shape, and
//! that the dispatcher releases on absolute deadlines (never early, never drifting).

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use trafficgen::plan::{Arrivals, RateStage, Segment, VuStage};
use trafficgen::scheduler::{self, OpenSchedule, dispatch};

fn st(secs: u64, target: f64) -> RateStage {
    RateStage {
        duration: Duration::from_secs(secs),
        target,
    }
}

/// Runs the dispatcher on a paused clock and returns (arrival, intended offset, release offset).
async fn releases(
    start_rate: f64,
    stages: &[RateStage],
    arrivals: Arrivals,
) -> Vec<(u64, Duration, Duration)> {
    let start = Instant::now();
    let (_tx, mut rx) = watch::channel(false);
    let mut out = Vec::new();
    let mut schedule = OpenSchedule::new(start_rate, stages, arrivals, 7);
    dispatch::run(
        &mut schedule,
        start,
        start + Duration::from_secs(86_400),
        |k, intended, _| {
            out.push((k, intended - start, Instant::now() - start));
            false
        },
        &mut rx,
    )
    .await;
    out
}

fn count_in(r: &[(u64, Duration, Duration)], from: f64, to: f64) -> usize {
    r.iter()
        .filter(|(_, i, _)| (from..to).contains(&i.as_secs_f64()))
        .count()
}

#[tokio::test(start_paused = true)]
async fn exact_counts_per_stage_with_a_linear_ramp() {
    // 10 s at 10/s, ramp to 30/s over 10 s, hold 5 s, ramp down to 0 over 10 s.
    let stages = [st(10, 10.0), st(10, 30.0), st(5, 30.0), st(10, 0.0)];
    let r = releases(10.0, &stages, Arrivals::Constant).await;
    assert_eq!(count_in(&r, 0.0, 10.0), 100);
    assert_eq!(count_in(&r, 10.0, 20.0), 200, "integral of 10→30 over 10 s");
    assert_eq!(count_in(&r, 20.0, 25.0), 150);
    assert_eq!(count_in(&r, 25.0, 35.0), 150, "integral of 30→0 over 10 s");
    assert_eq!(r.len(), 600);
    // The ramp's shape: second i of the 10→30 ramp holds ∫ = 11 + 2i arrivals.
    for i in 0..10 {
        let n = count_in(&r, 10.0 + i as f64, 11.0 + i as f64);
        assert_eq!(n, 11 + 2 * i, "second {i} of the ramp");
    }
    // Ramp down: strictly fewer per second.
    let down: Vec<usize> = (0..10)
        .map(|i| count_in(&r, 25.0 + i as f64, 26.0 + i as f64))
        .collect();
    assert!(down.windows(2).all(|w| w[0] > w[1]), "{down:?}");
    // Numbered in order, released never before their deadline and within the 1 ms batch.
    for (n, (k, intended, released)) in r.iter().enumerate() {
        assert_eq!(*k, n as u64);
        assert!(released >= intended, "arrival {k} released early");
        assert!(
            *released - *intended <= Duration::from_millis(2),
            "arrival {k} lagged {:?}",
            *released - *intended
        );
    }
}

#[tokio::test(start_paused = true)]
async fn absolute_deadlines_do_not_drift_over_a_long_run() {
    // 1000/s for 60 s: 60 000 arrivals; the last is due at 59.999 s and released within 2 ms.
    let r = releases(1000.0, &[st(60, 1000.0)], Arrivals::Constant).await;
    assert_eq!(r.len(), 60_000);
    let (_, intended, released) = r[r.len() - 1];
    assert_eq!(intended, Duration::from_micros(59_999_000));
    assert!(released - intended <= Duration::from_millis(2));
}

#[tokio::test(start_paused = true)]
async fn high_rates_are_released_in_1ms_batches() {
    // 20 000/s for 2 s: 40 000 arrivals but at most one wake-up per millisecond.
    let r = releases(20_000.0, &[st(2, 20_000.0)], Arrivals::Constant).await;
    assert_eq!(r.len(), 40_000);
    let mut wakes: Vec<Duration> = r.iter().map(|x| x.2).collect();
    wakes.dedup();
    assert!(wakes.len() <= 2_001, "{} wake-ups", wakes.len());
}

#[tokio::test(start_paused = true)]
async fn poisson_is_seeded_and_near_the_integral() {
    let a = releases(0.0, &[st(20, 100.0), st(20, 100.0)], Arrivals::Poisson).await;
    let b = releases(0.0, &[st(20, 100.0), st(20, 100.0)], Arrivals::Poisson).await;
    assert_eq!(
        a.iter().map(|x| x.1).collect::<Vec<_>>(),
        b.iter().map(|x| x.1).collect::<Vec<_>>(),
        "same seed, same arrivals"
    );
    // Expected 1000 + 2000 = 3000; Poisson sd ≈ 55.
    assert!((2700..3300).contains(&a.len()), "{}", a.len());
    let first = count_in(&a, 0.0, 20.0);
    assert!(
        (850..1150).contains(&first),
        "ramp 0→100: expected ~1000, got {first}"
    );
}

#[tokio::test(start_paused = true)]
async fn stop_ends_the_dispatcher_at_once() {
    let start = Instant::now();
    let (tx, mut rx) = watch::channel(false);
    let stopper = async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        tx.send(true).unwrap();
    };
    let mut n = 0u64;
    let mut schedule = OpenSchedule::new(10.0, &[st(60, 10.0)], Arrivals::Constant, 1);
    let end = start + Duration::from_secs(60);
    let run = dispatch::run(
        &mut schedule,
        start,
        end,
        |_, _, _| {
            n += 1;
            false
        },
        &mut rx,
    );
    let (released, _) = tokio::join!(run, stopper);
    assert_eq!(released, 25, "arrivals at 0.0 .. 2.4 s");
    assert!(Instant::now() - start < Duration::from_millis(2600));
}

#[test]
fn segments_and_workers_split_the_arrivals_exactly() {
    let all: Vec<u64> = OpenSchedule::new(100.0, &[st(10, 100.0)], Arrivals::Constant, 1)
        .map(|x| x.0)
        .collect();
    assert_eq!(all.len(), 1000);
    let mut per = vec![0usize; 3 * 2];
    for &k in &all {
        for s in 0..3 {
            for w in 0..2 {
                if scheduler::owns(k, Segment { index: s, count: 3 }, w, 2) {
                    per[(s * 2 + w as u32) as usize] += 1;
                }
            }
        }
    }
    assert_eq!(per.iter().sum::<usize>(), 1000);
    assert!(per.iter().all(|&n| n == 166 || n == 167), "{per:?}");
    // Segment i of N gets arrival k iff k % N == i.
    assert!(scheduler::owns(4, Segment { index: 1, count: 3 }, 0, 1));
    assert!(!scheduler::owns(4, Segment { index: 0, count: 3 }, 0, 1));
}

#[test]
fn vus_ramp_linearly_and_reach_each_target_at_the_stage_end() {
    let stages = [
        VuStage {
            duration: Duration::from_secs(10),
            target: 10,
        },
        VuStage {
            duration: Duration::from_secs(5),
            target: 10,
        },
        VuStage {
            duration: Duration::from_secs(5),
            target: 0,
        },
    ];
    assert_eq!(scheduler::vus_at(0, &stages, 0.0), 0);
    assert_eq!(scheduler::vus_at(0, &stages, 4.99), 4);
    assert_eq!(scheduler::vus_at(0, &stages, 5.0), 5);
    assert_eq!(scheduler::vus_at(0, &stages, 12.0), 10);
    assert_eq!(scheduler::vus_at(0, &stages, 17.5), 5);
    assert_eq!(scheduler::vus_at(0, &stages, 20.0), 0);
    assert_eq!(scheduler::max_vus(0, &stages), 10);
    // VU 4 starts when the ramp crosses 5 (t = 5 s) and stops when it falls below 5 again.
    let start = scheduler::next_vu_change(0, &stages, 4, 0.0).unwrap();
    assert!((start - 5.0).abs() < 1e-3, "{start}");
    assert!(scheduler::vus_at(0, &stages, start) > 4);
    let t = scheduler::next_vu_change(0, &stages, 4, 15.0).unwrap();
    assert!((t - 17.5).abs() < 1e-3, "{t}");
    assert!(scheduler::vus_at(0, &stages, t) <= 4);
    assert_eq!(scheduler::next_vu_change(0, &stages, 4, 20.0), None);
}
