//! Streaming subject import: NDJSON (one subject per line) or CSV (`id,kind,name,mobile,
//! wechat_openid`, then one column per attribute). The body is read as a stream and
//! written in batches, so its size is bounded by disk, not memory. A bad line is
//! rejected with its line number and reason; it never stops the good ones. An NDJSON
//! line longer than [`MAX_LINE_BYTES`] is rejected without being held in memory.
//!
//! The parsers ([`parse_ndjson`], [`parse_csv`]) hand subjects to a [`SubjectSink`]: the
//! store's batch writer in the API, a plain vector in tests.
//!
//! Attributes the catalogue declares (`domain::attribute`) must have the declared type:
//! a line whose value does not is rejected (`invalid_attribute: attribute insured_months
//! (参保月数) must be a whole number; got "abc"`). CSV cells are read loosely first (a
//! single text for a list attribute is a list of one; digits for a text attribute are
//! text).

use crate::AppState;
use domain::attribute::Catalogue;
use domain::subject::{AttrValue, SubjectDoc};
use domain::Subject;
use futures::{Stream, StreamExt, TryStreamExt};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead};

const BATCH: usize = 1_000;
/// The longest NDJSON line (one subject) accepted, in bytes.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Rejections listed in the answer; the count covers all of them.
const MAX_LISTED_REJECTIONS: usize = 1_000;

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub accepted: u64,
    pub rejected: Vec<Rejection>,
    pub rejected_count: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rejection {
    pub line: u64,
    pub error: String,
}

impl ImportReport {
    fn reject(&mut self, line: u64, error: String) {
        self.rejected_count += 1;
        if self.rejected.len() < MAX_LISTED_REJECTIONS {
            self.rejected.push(Rejection { line, error });
        }
    }
}

/// Where parsed subjects go.
pub trait SubjectSink {
    fn push(&mut self, s: Subject) -> impl std::future::Future<Output = anyhow::Result<()>> + Send;
    fn flush(&mut self) -> impl std::future::Future<Output = anyhow::Result<()>> + Send;
}

/// Collects subjects in memory (tests, previews).
impl SubjectSink for Vec<Subject> {
    async fn push(&mut self, s: Subject) -> anyhow::Result<()> {
        Vec::push(self, s);
        Ok(())
    }
    async fn flush(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Writes parsed subjects in batches, tagging each and planning continuous campaigns.
///
/// A full batch is tagged and then written by a task of its own while the parser reads
/// the next one (one batch in flight, so batches are written in order and memory stays
/// bounded); a write error is reported at the next batch or at the end.
struct BatchWriter {
    state: AppState,
    batch: Vec<Subject>,
    today: chrono::NaiveDate,
    in_flight: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl BatchWriter {
    fn new(state: &AppState) -> Self {
        Self {
            state: state.clone(),
            batch: Vec::with_capacity(BATCH),
            today: state.pipeline.today(),
            in_flight: None,
        }
    }

    /// Waits for the batch being written.
    async fn settle(&mut self) -> anyhow::Result<()> {
        match self.in_flight.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }

    /// Tags the gathered batch and hands it to a writing task (after the previous one).
    async fn dispatch(&mut self) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        let (state, today) = (self.state.clone(), self.today);
        // Tagging is CPU work: off the async workers, while the previous batch is written.
        let tagging = tokio::task::spawn_blocking({
            let rules = state.current_tag_rules().await?;
            move || {
                batch
                    .into_iter()
                    .map(|s| {
                        let tags = rules.tags_for(&s, today);
                        (s, tags)
                    })
                    .collect::<Vec<(Subject, Vec<String>)>>()
            }
        });
        let tagged = tagging.await?;
        self.settle().await?;
        self.in_flight = Some(tokio::spawn(async move {
            state.store.upsert_subjects(&tagged).await?;
            pipeline::matching::index_subjects(&state.pipeline.index, &tagged);
            pipeline::events::subjects_changed(&state.pipeline, &tagged);
            pipeline::planner::plan_subjects(&state.pipeline, &tagged).await?;
            Ok(())
        }));
        Ok(())
    }
}

impl SubjectSink for BatchWriter {
    async fn push(&mut self, s: Subject) -> anyhow::Result<()> {
        self.batch.push(s);
        if self.batch.len() >= BATCH {
            self.dispatch().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        self.dispatch().await?;
        self.settle().await
    }
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

pub async fn ndjson<S, E>(state: &AppState, body: S) -> anyhow::Result<ImportReport>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    let reader = tokio_util::io::StreamReader::new(body.map_err(io_err));
    let catalogue = Catalogue::new(state.store.list_attributes().await?);
    parse_ndjson(reader, &catalogue, &mut BatchWriter::new(state)).await
}

pub async fn csv<S, E>(state: &AppState, body: S) -> anyhow::Result<ImportReport>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    let reader = tokio_util::io::StreamReader::new(body.map_err(io_err));
    let catalogue = Catalogue::new(state.store.list_attributes().await?);
    parse_csv(reader, &catalogue, &mut BatchWriter::new(state)).await
}

/// One NDJSON line as read: its bytes, or how long it was when it passed the limit.
enum Line {
    Text(Vec<u8>),
    TooLong(usize),
}

/// The next `\n`-terminated line, holding at most `max` bytes of it in memory.
async fn next_line<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
) -> std::io::Result<Option<Line>> {
    let mut buf = Vec::new();
    let mut len = 0usize;
    let mut any = false;
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        len += part.len();
        if len <= max {
            buf.extend_from_slice(part);
        } else {
            buf = Vec::new();
        }
        let consumed = done.unwrap_or(part.len());
        r.consume(consumed);
        if done.is_some() {
            break;
        }
    }
    Ok(match (any, len > max) {
        (false, _) => None,
        (true, false) => Some(Line::Text(buf)),
        (true, true) => Some(Line::TooLong(len)),
    })
}

/// The subject with its attributes in the types the catalogue declares, or the reason.
fn conform(catalogue: &Catalogue, s: Subject, csv: bool) -> Result<Subject, String> {
    catalogue
        .conform(s, csv)
        .map_err(|e| format!("invalid_attribute: {e}"))
}

/// One NDJSON line: `Ok(None)` for a blank line, the reason for a bad one.
pub fn parse_ndjson_line(raw: &[u8], catalogue: &Catalogue) -> Result<Option<Subject>, String> {
    let Ok(text) = std::str::from_utf8(raw) else {
        return Err("invalid_encoding: line is not UTF-8".into());
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    serde_json::from_str::<SubjectDoc>(text)
        .map_err(|e| format!("invalid_json: {e}"))
        .and_then(|doc| Subject::from_doc(doc).map_err(|e| e.to_string()))
        .and_then(|s| conform(catalogue, s, false))
        .map(Some)
}

/// Parses NDJSON from `reader` into `sink`.
pub async fn parse_ndjson<R: AsyncRead + Unpin + Send>(
    reader: R,
    catalogue: &Catalogue,
    sink: &mut impl SubjectSink,
) -> anyhow::Result<ImportReport> {
    let mut report = ImportReport::default();
    let mut reader = tokio::io::BufReader::with_capacity(256 * 1024, reader);
    let mut n = 0u64;
    while let Some(line) = next_line(&mut reader, MAX_LINE_BYTES).await? {
        n += 1;
        let raw = match line {
            Line::Text(raw) => raw,
            Line::TooLong(len) => {
                report.reject(
                    n,
                    format!("line_too_long: {len} bytes; a line holds at most {MAX_LINE_BYTES}"),
                );
                continue;
            }
        };
        match parse_ndjson_line(&raw, catalogue) {
            Ok(Some(s)) => {
                sink.push(s).await?;
                report.accepted += 1;
            }
            Ok(None) => {}
            Err(e) => report.reject(n, e),
        }
    }
    sink.flush().await?;
    Ok(report)
}

const FIXED: [&str; 5] = ["id", "kind", "name", "mobile", "wechat_openid"];

/// One CSV record under `cols` (the header): `Ok(None)` for an empty record.
pub fn parse_csv_record(
    cols: &[&str],
    rec: &csv_async::StringRecord,
    catalogue: &Catalogue,
) -> Result<Option<Subject>, String> {
    if rec.iter().all(str::is_empty) {
        return Ok(None);
    }
    if rec.len() != cols.len() {
        return Err(format!(
            "invalid_csv: {} fields, the header has {}",
            rec.len(),
            cols.len()
        ));
    }
    let get = |i: usize| rec.get(i).filter(|v| !v.is_empty()).map(str::to_string);
    let mut attributes = serde_json::Map::new();
    for (i, name) in cols.iter().enumerate().skip(FIXED.len()) {
        if let Some(v) = rec.get(i).and_then(AttrValue::from_csv_cell) {
            attributes.insert(name.to_string(), v.to_json());
        }
    }
    let doc = SubjectDoc {
        id: rec.get(0).unwrap_or("").to_string(),
        kind: rec.get(1).unwrap_or("").to_string(),
        name: rec.get(2).unwrap_or("").to_string(),
        mobile: get(3),
        wechat_openid: get(4),
        attributes,
    };
    let s = Subject::from_doc(doc).map_err(|e| e.to_string())?;
    conform(catalogue, s, true).map(Some)
}

/// Parses CSV from `reader` into `sink`.
pub async fn parse_csv<R: AsyncRead + Unpin + Send>(
    reader: R,
    catalogue: &Catalogue,
    sink: &mut impl SubjectSink,
) -> anyhow::Result<ImportReport> {
    let mut rdr = csv_async::AsyncReaderBuilder::new()
        .flexible(true)
        .trim(csv_async::Trim::All)
        .create_reader(reader);
    let mut report = ImportReport::default();
    let headers = match rdr.headers().await {
        Ok(h) => h.clone(),
        Err(e) => {
            report.reject(1, format!("invalid_csv: {e}"));
            return Ok(report);
        }
    };
    let cols: Vec<&str> = headers.iter().collect();
    if cols.len() < 2
        || cols[0] != "id"
        || cols[1] != "kind"
        || cols.iter().zip(FIXED).any(|(c, f)| *c != f)
    {
        report.reject(
            1,
            format!(
                "invalid_header: columns must start with {}",
                FIXED.join(",")
            ),
        );
        return Ok(report);
    }
    let mut records = rdr.records();
    while let Some(rec) = records.next().await {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                report.reject(line, format!("invalid_csv: {e}"));
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        match parse_csv_record(&cols, &rec, catalogue) {
            Ok(Some(s)) => {
                sink.push(s).await?;
                report.accepted += 1;
            }
            Ok(None) => {}
            Err(e) => report.reject(line, e),
        }
    }
    sink.flush().await?;
    Ok(report)
}
