//! HdrHistogram helpers of the report: V2 + base64 encoding (the report's exchange format, so
//! segment reports merge exactly), decoding, summing and percentile extraction (µs → ms).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};

use super::Percentiles;

/// 3 significant figures, auto-resizing: any recorded or added range is accepted.
pub fn empty() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant figures is a valid configuration")
}

/// V2 (uncompressed) + standard base64.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut buf)
        .expect("V2 serialization into a Vec cannot fail");
    STANDARD.encode(buf)
}

/// The inverse of `encode`; an empty string is an empty histogram (a report with no samples).
pub fn decode(s: &str) -> Result<Histogram<u64>, String> {
    if s.is_empty() {
        return Ok(empty());
    }
    let bytes = STANDARD
        .decode(s)
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    let mut h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram is not HdrHistogram V2: {e:?}"))?;
    // Deserialized histograms have fixed bounds; adding a wider one must not fail.
    h.auto(true);
    Ok(h)
}

/// `into += other`, widening as needed.
pub fn add(into: &mut Histogram<u64>, other: &Histogram<u64>) {
    into.auto(true);
    if into.add(other).is_err() {
        // Only possible with a fixed-range target; record value by value instead.
        for v in other.iter_recorded() {
            record_n(into, v.value_iterated_to(), v.count_at_value());
        }
    }
}

/// Records `n` × `value`, growing an auto-resizing histogram (`saturating_record_n` would clamp
/// to the current range instead of growing it).
pub fn record_n(into: &mut Histogram<u64>, value: u64, n: u64) {
    if into.record_n(value, n).is_err() {
        into.saturating_record_n(value, n);
    }
}

/// A histogram holding the given (value, count) buckets.
pub fn from_buckets(buckets: &[(u64, u64)]) -> Histogram<u64> {
    let mut h = empty();
    for &(v, n) in buckets {
        record_n(&mut h, v, n);
    }
    h
}

/// `now - before` for cumulative histograms (the part recorded in between). If `before` is not
/// contained in `now` (never with cumulative snapshots), subtracts bucket by bucket, clamping at 0.
pub fn delta(now: &Histogram<u64>, before: &Histogram<u64>) -> Histogram<u64> {
    let mut d = now.clone();
    d.auto(true);
    if d.subtract(before).is_ok() {
        return d;
    }
    let mut d = empty();
    for v in now.iter_recorded() {
        let value = v.value_iterated_to();
        let n = v.count_at_value().saturating_sub(before.count_at(value));
        if n > 0 {
            record_n(&mut d, value, n);
        }
    }
    d
}

/// Milliseconds with microsecond resolution.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The report's percentile set of a µs histogram, in ms; all zero when empty.
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        min: ms(h.min()),
        mean: h.mean() / 1000.0,
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p95: ms(h.value_at_quantile(0.95)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
    }
}

/// Bucket-by-bucket listing (value, count) of the recorded values, for exact comparisons.
pub fn buckets(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}
