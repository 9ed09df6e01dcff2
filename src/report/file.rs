//! Reading and writing the report file: atomic writes (temp file in the same directory, then
//! rename, so a reader or a killed run never leaves half a report) and reads that check the
//! version before trusting the content.

use std::io::Write as _;
use std::path::Path;

use super::{Report, ReportError, VERSION};

/// Reports larger than this are refused (a 30-day run's per-second timeline is well below).
pub const MAX_REPORT_BYTES: u64 = 4 << 30;

/// Writes `bytes` to `path` atomically: a temp file in the same directory, then a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let io = |source| ReportError::Io {
        path: path.display().to_string(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

impl Report {
    pub fn write(&self, path: &Path) -> Result<(), ReportError> {
        let mut json = serde_json::to_vec_pretty(self).expect("a report always serializes");
        json.push(b'\n');
        write_atomic(path, &json)
    }

    pub fn read(path: &Path) -> Result<Report, ReportError> {
        use std::io::Read as _;
        let shown = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| ReportError::Io {
            path: shown.clone(),
            source,
        })?;
        // Parsed as it is read, and at most `MAX_REPORT_BYTES`: `report merge /dev/zero` is an
        // error at its first byte, not a read that never ends.
        let reader = std::io::BufReader::new(file.take(MAX_REPORT_BYTES));
        serde_json::from_reader(reader)
            .map_err(|e| format!("invalid JSON: {e}"))
            .and_then(Self::from_value)
            .map_err(|message| ReportError::Format {
                path: shown,
                message,
            })
    }

    /// Parses a report, checking `version` first so an old or future file gets a clear message
    /// instead of a missing-field error.
    pub fn from_json(bytes: &[u8]) -> Result<Report, String> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
        Self::from_value(value)
    }

    fn from_value(value: serde_json::Value) -> Result<Report, String> {
        let version = value
            .get("version")
            .ok_or_else(|| "no `version` field".to_string())?
            .as_u64()
            .ok_or_else(|| "`version` is not a number".to_string())?;
        if version != u64::from(VERSION) {
            return Err(format!(
                "report version {version} is not supported by this trafficgen (it reads version {VERSION})"
            ));
        }
        serde_json::from_value(value).map_err(|e| format!("invalid report: {e}"))
    }
}
