//! The files made from the judged report besides the JSON one: the HTML page (`output.html`,
//! `--html`) and JUnit XML (`output.junit`, `--junit`). Written in `finish`, so they carry the
//! verdict; a failure to write one is reported on stderr, never changes the verdict.

use super::{Finish, Sink};
use crate::plan::Plan;
use crate::report::{Report, html, junit};

pub struct ReportFiles {
    html: Option<std::path::PathBuf>,
    junit: Option<std::path::PathBuf>,
}

impl ReportFiles {
    pub fn new(plan: &Plan) -> Self {
        ReportFiles {
            html: plan.output.html.clone(),
            junit: plan.output.junit.clone(),
        }
    }
}

impl Sink for ReportFiles {
    fn finish<'a>(&'a mut self, report: &'a Report) -> Finish<'a> {
        let mut messages = Vec::new();
        if let Some(p) = &self.html
            && let Err(e) = html::write(report, p)
        {
            messages.push(format!("html report: {e}"));
        }
        if let Some(p) = &self.junit
            && let Err(e) = junit::write(report, p)
        {
            messages.push(format!("junit: {e}"));
        }
        Box::pin(async move { messages })
    }
}
