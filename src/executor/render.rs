//! What a generic request sends, from its templates: path, headers and body (the target's
//! per-request headers too); the flow variables a step captures from its response; and the
//! record of a request that could not be built at all.

use tokio::time::Instant;

use super::RequestInfo;
use super::client::Client;
use super::http::{self, Head};
use super::local::Local;
use crate::plan::{CaptureSource, Escape, RequestTemplate};
use crate::recorder::{ErrorKind, RequestRecord};

impl Client {
    /// Records a request that could not be built (a captured value refused in a header, a
    /// captured URL of another origin): of the flow step `step` when it is one.
    pub(super) fn refuse(
        &mut self,
        st: &Local,
        op: usize,
        step: Option<usize>,
        intended: Instant,
        kind: ErrorKind,
    ) {
        let at = intended.saturating_duration_since(st.shared.start);
        let record = RequestRecord::unsent(op, kind, at.as_micros() as u64);
        let mut rec = st.rec.borrow_mut();
        match step {
            Some(step) => {
                self.flow.note(&record, intended);
                rec.record_step(step, &record, false, || false);
            }
            None => rec.record(&record),
        }
    }

    /// Appends the target headers whose values change per request to `hdrs`.
    pub(super) fn render_dynamic(&mut self, st: &Local, info: &RequestInfo) {
        if info.headers.dynamic.is_empty() {
            return;
        }
        let mut rng = st.rng.borrow_mut();
        for (k, v) in &info.headers.dynamic {
            self.hdrs.extend_from_slice(k.as_bytes());
            self.hdrs.extend_from_slice(b": ");
            v.render(&self.vars, &mut *rng, &mut self.hdrs);
            self.hdrs.extend_from_slice(b"\r\n");
        }
    }

    /// Renders a generic request's path, headers and body; returns whether to add the JSON
    /// content type, or why it cannot be sent: a captured value that cannot go into a header
    /// (`invalid_request`), a captured URL of another origin (`cross_origin`) or one that is
    /// neither an absolute path nor a URL (`invalid_request`).
    pub(super) fn render(
        &mut self,
        st: &Local,
        rt: &RequestTemplate,
        info: &RequestInfo,
    ) -> Result<bool, ErrorKind> {
        self.vars.seq = st.seq.get();
        st.seq.set(self.vars.seq + 1);
        self.hdrs.clear();
        self.render_dynamic(st, info);
        let mut rng = st.rng.borrow_mut();
        self.path.clear();
        rt.path
            .render_escaped(&self.vars, &mut *rng, &mut self.path, Escape::Path);
        self.path_absolute = false;
        if rt.from_capture {
            match super::follow::same_origin_path(&self.path, &st.shared) {
                Ok(p) => {
                    self.path = p;
                    self.path_absolute = true;
                }
                Err(true) => return Err(ErrorKind::CrossOrigin),
                Err(false) => return Err(ErrorKind::InvalidRequest),
            }
        }
        for (k, v) in &rt.headers {
            self.hdrs.extend_from_slice(k.as_bytes());
            self.hdrs.extend_from_slice(b": ");
            if !v.render_escaped(&self.vars, &mut *rng, &mut self.hdrs, Escape::HeaderValue) {
                return Err(ErrorKind::InvalidRequest);
            }
            self.hdrs.extend_from_slice(b"\r\n");
        }
        self.body.clear();
        self.has_body = rt.body.is_some();
        if let Some(b) = &rt.body {
            b.render(&self.vars, &mut *rng, &mut self.body);
        }
        Ok(!info.headers.has_content_type)
    }

    /// Sets the flow variables `captures` take from this response; false when one found
    /// nothing (no such pointer or header, or a JSON null).
    pub(super) fn capture(&mut self, h: &Head, captures: &[crate::plan::Capture]) -> bool {
        let body = &self.bufs.body;
        let json: Option<serde_json::Value> = captures
            .iter()
            .any(|c| matches!(c.from, CaptureSource::JsonPointer(_)))
            .then(|| serde_json::from_slice(body).ok())
            .flatten();
        let mut all = true;
        for c in captures {
            let v = match &c.from {
                CaptureSource::JsonPointer(p) => json
                    .as_ref()
                    .and_then(|j| j.pointer(p))
                    .filter(|x| !x.is_null())
                    .map(|x| match x {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    }),
                CaptureSource::Header(name) => http::header(&self.bufs.rbuf[..h.head_len], name)
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
            };
            match v {
                Some(v) => self.vars.set(&c.var, &v),
                None => all = false,
            }
        }
        all
    }
}
