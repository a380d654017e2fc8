//! Streaming subject import: NDJSON (one subject per line) or CSV (`id,kind,name,mobile,
//! wechat_openid`, then one column per attribute). The body is read as a stream and
//! written in batches, so its size is bounded by disk, not memory. A bad line is
//! rejected with its line number and reason; it never stops the good ones.

use crate::AppState;
use domain::subject::{AttrValue, SubjectDoc};
use domain::Subject;
use futures::{Stream, StreamExt, TryStreamExt};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead};

const BATCH: usize = 1_000;
/// Rejections listed in the answer; the count covers all of them.
const MAX_LISTED_REJECTIONS: usize = 1_000;

#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    pub accepted: u64,
    pub rejected: Vec<Rejection>,
    pub rejected_count: u64,
}

#[derive(Debug, Serialize)]
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

/// Writes parsed subjects in batches, tagging each and planning continuous campaigns.
struct BatchWriter<'a> {
    state: &'a AppState,
    batch: Vec<Subject>,
    today: chrono::NaiveDate,
}

impl BatchWriter<'_> {
    async fn push(&mut self, s: Subject) -> anyhow::Result<()> {
        self.batch.push(s);
        if self.batch.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let rules = self.state.current_tag_rules().await?;
        let tagged: Vec<(Subject, Vec<String>)> = std::mem::take(&mut self.batch)
            .into_iter()
            .map(|s| {
                let tags = rules.tags_for(&s, self.today);
                (s, tags)
            })
            .collect();
        self.state.store.upsert_subjects(&tagged).await?;
        pipeline::matching::index_subjects(&self.state.pipeline.index, &tagged);
        pipeline::events::subjects_changed(&self.state.pipeline, &tagged);
        pipeline::planner::plan_subjects(&self.state.pipeline, &tagged).await?;
        Ok(())
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
    ndjson_reader(state, reader).await
}

async fn ndjson_reader<R: AsyncRead + Unpin + Send>(
    state: &AppState,
    reader: R,
) -> anyhow::Result<ImportReport> {
    let mut report = ImportReport::default();
    let mut writer = BatchWriter {
        state,
        batch: Vec::with_capacity(BATCH),
        today: state.pipeline.today(),
    };
    let mut lines = tokio::io::BufReader::with_capacity(256 * 1024, reader).split(b'\n');
    let mut n = 0u64;
    while let Some(raw) = lines.next_segment().await? {
        n += 1;
        let Ok(text) = std::str::from_utf8(&raw) else {
            report.reject(n, "invalid_encoding: line is not UTF-8".into());
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<SubjectDoc>(text)
            .map_err(|e| format!("invalid_json: {e}"))
            .and_then(|doc| Subject::from_doc(doc).map_err(|e| e.to_string()));
        match parsed {
            Ok(s) => {
                writer.push(s).await?;
                report.accepted += 1;
            }
            Err(e) => report.reject(n, e),
        }
    }
    writer.flush().await?;
    Ok(report)
}

pub async fn csv<S, E>(state: &AppState, body: S) -> anyhow::Result<ImportReport>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    let reader = tokio_util::io::StreamReader::new(body.map_err(io_err));
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
    const FIXED: [&str; 5] = ["id", "kind", "name", "mobile", "wechat_openid"];
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
    let attr_names: Vec<String> = cols
        .iter()
        .skip(FIXED.len())
        .map(|s| s.to_string())
        .collect();
    let mut writer = BatchWriter {
        state,
        batch: Vec::with_capacity(BATCH),
        today: state.pipeline.today(),
    };
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
        if rec.iter().all(str::is_empty) {
            continue;
        }
        if rec.len() != cols.len() {
            report.reject(
                line,
                format!(
                    "invalid_csv: {} fields, the header has {}",
                    rec.len(),
                    cols.len()
                ),
            );
            continue;
        }
        let get = |i: usize| rec.get(i).filter(|v| !v.is_empty()).map(str::to_string);
        let mut attributes = serde_json::Map::new();
        for (i, name) in attr_names.iter().enumerate() {
            if let Some(v) = rec.get(FIXED.len() + i).and_then(AttrValue::from_csv_cell) {
                attributes.insert(name.clone(), v.to_json());
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
        match Subject::from_doc(doc) {
            Ok(s) => {
                writer.push(s).await?;
                report.accepted += 1;
            }
            Err(e) => report.reject(line, e.to_string()),
        }
    }
    writer.flush().await?;
    Ok(report)
}
