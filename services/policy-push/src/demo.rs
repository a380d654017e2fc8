//! `policy-push demo`: a fresh data dir, a deterministic synthetic Shanghai-like
//! population imported through the API, the bureau's tags, policies and campaigns
//! (created, approved by a second operator, launched), progress bars while they deliver
//! through the connectors to the built-in provider simulators, and a summary of who was
//! reached on which channel. Then it keeps serving so the API can be explored.

use crate::config::ServeConfig;
use anyhow::{bail, Context};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use population::{Generator, PopulationConfig};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Data dir of the demo; emptied first.
    #[arg(long, default_value = "./demo-data")]
    pub data_dir: PathBuf,
    #[arg(long, env = "POLICY_PUSH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Residents in the synthetic population.
    #[arg(long, default_value_t = 100_000)]
    pub residents: u64,
    /// Enterprises in the synthetic population.
    #[arg(long, default_value_t = 10_000)]
    pub enterprises: u64,
    /// Seed of the population generator (same seed, same population).
    #[arg(long, default_value_t = population::DEFAULT_SEED)]
    pub seed: u64,
    /// Exit after the summary instead of serving.
    #[arg(long)]
    pub exit: bool,
    /// Print the server's logs on the terminal instead of `<data-dir>/policy-push.log`.
    #[arg(long)]
    pub log_stderr: bool,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}/api/v1{path}", self.base))
            .bearer_auth(token.unwrap_or(&self.token));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{method} {path}: {status}: {v}");
        }
        Ok(v)
    }
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None, None).await
    }
    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body), None)
            .await
    }
}

fn bar(mp: &MultiProgress, len: u64, label: &str) -> ProgressBar {
    let pb = mp.add(ProgressBar::new(len));
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>16} [{bar:40.cyan/blue}] {pos:>8}/{len:8} {per_sec:>10} {msg}",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    pb.set_prefix(label.to_string());
    pb
}

fn token() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    if args.data_dir.exists() {
        std::fs::remove_dir_all(&args.data_dir).with_context(|| {
            format!("cannot empty the demo data dir {}", args.data_dir.display())
        })?;
    }
    std::fs::create_dir_all(&args.data_dir)?;
    let log_file = args.data_dir.join("policy-push.log");
    if args.log_stderr {
        crate::config::init_logging(false);
    } else {
        crate::config::init_logging_to_file(&log_file)?;
    }
    let admin_token = token();
    // Recipient links are `{server}/l/…`: the fixed part the registered SMS text carries.
    let link_base = format!("http://{}", args.listen);
    let cfg = ServeConfig {
        roles: crate::config::Role::ALL.to_vec(),
        split: false,
        kafka: None,
        redis_url: None,
        redis_prefix: "policy-push:".into(),
        builtin_simulators: true,
        sending_lease: None,
        receipt_deadline: pipeline::PipelineConfig::default().receipt_deadline,
        receipt_give_up: pipeline::PipelineConfig::default().receipt_give_up,
        data_dir: args.data_dir.clone(),
        chain_heads_dir: crate::record::heads_dir(None, &args.data_dir),
        listen: args.listen,
        database_url: format!(
            "sqlite://{}",
            args.data_dir.join("policy-push.db").display()
        ),
        public_url: None,
        admin_token: Some(admin_token.clone()),
        require_approval: true,
        rate_per_second: 0.0,
        // The demo runs at any hour; `serve` keeps quiet hours and staffed hours by default.
        hotline_hours: domain::window::SendWindow::always(),
        sms_hours: domain::window::SendWindow::always(),
        wechat_hours: domain::window::SendWindow::always(),
        frequency_cap: 2,
        frequency_window: Duration::from_secs(7 * 24 * 3600),
        second_approval_above: None,
        require_review: false,
        retry_scale: 1.0,
        providers: None,
        wechat_callback_token: simulators::SimulatorConfig::default().wechat_callback_token,
        console_secret: None,
        callbacks: api::routes::callbacks::CallbackAuth::random(),
        // The simulators know the catch-alls and the demo's registered templates.
        simulator: simulators::SimulatorConfig {
            receipt_delay: Duration::from_millis(200),
            templates: connectors::config::catch_all_templates(
                &connectors::ProvidersConfig::default(),
            )
            .into_iter()
            .chain(population::catalogue::provider_templates(&link_base))
            .collect(),
            ..Default::default()
        },
        // Generated into the data dir.
        pseudonym_key: None,
    };
    let running = crate::server::start(cfg).await?;
    let base = format!("http://{}", running.addr);
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()?,
        base: base.clone(),
        token: admin_token.clone(),
    };
    println!(
        "policy-push demo on {base}  (data dir {}; logs in {})",
        args.data_dir.display(),
        if args.log_stderr {
            "the terminal".to_string()
        } else {
            log_file.display().to_string()
        }
    );
    // Today in Shanghai (UTC+8 all year).
    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();

    // Operators: an editor builds, a reviewer approves (four eyes).
    let editor = client
        .post("/operators", json!({"name": "编辑-王敏", "role": "editor"}))
        .await?;
    let reviewer = client
        .post(
            "/operators",
            json!({"name": "审核-李强", "role": "reviewer"}),
        )
        .await?;
    let editor_token = editor["token"]
        .as_str()
        .context("editor token")?
        .to_string();
    let reviewer_token = reviewer["token"]
        .as_str()
        .context("reviewer token")?
        .to_string();

    // The attribute catalogue (labels, types, value labels), which explanations in plain
    // words and the import read; admins declare it.
    for a in population::catalogue::attributes() {
        client
            .call(
                reqwest::Method::PUT,
                &format!("/attributes/{}", a.name),
                Some(serde_json::to_value(&a)?),
                Some(&admin_token),
            )
            .await?;
    }

    // Policy parameters (thresholds with dated values), which rules read by name.
    for p in population::catalogue::params() {
        client
            .call(
                reqwest::Method::PUT,
                &format!("/params/{}", p.name),
                Some(json!({"description": p.description, "unit": p.unit, "values": p.values})),
                Some(&editor_token),
            )
            .await?;
    }

    // Tags first, so the import tags every subject as it arrives.
    for t in population::catalogue::tags(today) {
        client
            .call(
                reqwest::Method::PUT,
                &format!("/tags/{}", t.name),
                Some(json!({"description": t.description, "rule": t.rule})),
                Some(&editor_token),
            )
            .await?;
    }

    // Population, streamed through the import API in chunks.
    let gen = Generator::new(PopulationConfig {
        residents: args.residents,
        enterprises: args.enterprises,
        seed: args.seed,
        today,
    });
    let mp = MultiProgress::new();
    let total = args.residents + args.enterprises;
    let pb = bar(&mp, total, "import");
    let t_import = Instant::now();
    let mut rejected = 0u64;
    const CHUNK: u64 = 20_000;
    // The chunks in order; the next one is generated (on the blocking pool) while the
    // server imports the current one.
    let chunks: Vec<(bool, u64, u64)> = [(true, args.residents), (false, args.enterprises)]
        .into_iter()
        .flat_map(|(person, count)| {
            (0..count)
                .step_by(CHUNK as usize)
                .map(move |start| (person, start, (start + CHUNK).min(count)))
        })
        .collect();
    let generate = |(person, start, end): (bool, u64, u64)| {
        let gen = gen.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<(Vec<u8>, u64)> {
            let mut body = Vec::with_capacity(((end - start) * 400) as usize);
            for i in start..end {
                let s = if person {
                    gen.resident(i)
                } else {
                    gen.enterprise(i)
                };
                serde_json::to_writer(&mut body, &s.to_doc())?;
                body.push(b'\n');
            }
            Ok((body, end - start))
        })
    };
    let mut pending = chunks.first().map(|c| generate(*c));
    for i in 0..chunks.len() {
        let (body, n) = pending.take().context("chunk generation")?.await??;
        pending = chunks.get(i + 1).map(|c| generate(*c));
        let resp = client
            .http
            .post(format!("{base}/api/v1/subjects/import"))
            .bearer_auth(&editor_token)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await?;
        let v: Value = resp.json().await?;
        rejected += v["rejected_count"].as_u64().unwrap_or(0);
        pb.inc(n);
    }
    pb.finish_with_message(format!("{rejected} rejected"));
    let import_secs = t_import.elapsed().as_secs_f64();

    // Policies: created by the editor, published by the reviewer, audiences previewed.
    let mut policy_ids = Vec::new();
    println!("\n{} {:>10} {:>10}", pad("policy", 34), "eligible", "ms");
    for p in population::catalogue::policies(today) {
        let created = client
            .call(
                reqwest::Method::POST,
                "/policies",
                Some(serde_json::to_value(&p)?),
                Some(&editor_token),
            )
            .await?;
        let id = created["id"].as_str().context("policy id")?.to_string();
        client
            .call(
                reqwest::Method::POST,
                &format!("/policies/{id}/publish"),
                None,
                Some(&reviewer_token),
            )
            .await?;
        let a = client.get(&format!("/policies/{id}/audience")).await?;
        println!(
            "{} {:>10} {:>10.0}",
            pad(&p.title, 34),
            num(&a["count"]),
            a["elapsed_ms"].as_f64().unwrap_or(0.0)
        );
        policy_ids.push(id);
    }

    // Campaigns: created and submitted by the editor, approved by the reviewer, launched.
    let mut campaigns = Vec::new();
    // The templates the bureau registered with its providers; some campaign channels
    // bind them instead of going through the simulators' catch-all.
    for t in population::catalogue::provider_templates(&link_base) {
        client
            .call(
                reqwest::Method::PUT,
                &format!("/provider-templates/{}/{}", t.provider, t.code),
                Some(serde_json::to_value(&t)?),
                Some(&editor_token),
            )
            .await?;
    }
    let bindings = population::catalogue::template_bindings();
    for spec in population::catalogue::campaigns() {
        let mut draft = spec.to_draft(&policy_ids[spec.policy_index]);
        for (_, channel, binding) in bindings.iter().filter(|(i, ..)| *i == spec.policy_index) {
            draft.templates.remove(*channel);
            draft.bindings.insert(channel.to_string(), binding.clone());
        }
        let c = client
            .call(
                reqwest::Method::POST,
                "/campaigns",
                Some(serde_json::to_value(&draft)?),
                Some(&editor_token),
            )
            .await?;
        let id = c["id"].as_str().context("campaign id")?.to_string();
        client
            .call(
                reqwest::Method::POST,
                &format!("/campaigns/{id}/submit"),
                None,
                Some(&editor_token),
            )
            .await?;
        client
            .call(
                reqwest::Method::POST,
                &format!("/campaigns/{id}/approve"),
                None,
                Some(&reviewer_token),
            )
            .await?;
        client
            .call(
                reqwest::Method::POST,
                &format!("/campaigns/{id}/launch"),
                None,
                Some(&editor_token),
            )
            .await?;
        campaigns.push((id, spec.name.clone(), spec.mode));
    }
    println!();
    let t_send = Instant::now();
    let bars: Vec<ProgressBar> = campaigns
        .iter()
        .map(|(_, name, _)| bar(&mp, 0, &short(name)))
        .collect();
    loop {
        let mut all_done = true;
        for ((id, _, mode), pb) in campaigns.iter().zip(&bars) {
            let c = client.get(&format!("/campaigns/{id}")).await?;
            let n = &c["counts"];
            let planned = c["planned_at"].is_string();
            let to_send =
                n["eligible"].as_u64().unwrap_or(0) - n["unreachable"].as_u64().unwrap_or(0);
            let settled = n["sent"].as_u64().unwrap_or(0)
                + n["delivered"].as_u64().unwrap_or(0)
                + n["failed"].as_u64().unwrap_or(0);
            pb.set_length(to_send);
            pb.set_position(settled);
            let done = planned
                && n["queued"].as_u64() == Some(0)
                && (c["status"] == "completed" || *mode == "continuous");
            pb.set_message(c["status"].as_str().unwrap_or("").to_string());
            if done {
                pb.finish();
            } else {
                all_done = false;
            }
        }
        if all_done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the last receipts arrive (the simulators send them ~50 ms after a send): until
    // no push waits for one, or at most 3 s (a receipt that never comes is settled later
    // by asking the provider, not waited for here).
    let waiting_since = Instant::now();
    while waiting_since.elapsed() < Duration::from_secs(3) {
        let mut waiting = 0;
        for (id, _, _) in &campaigns {
            let c = client.get(&format!("/campaigns/{id}")).await?;
            waiting += num(&c["counts"]["sending"]) + num(&c["counts"]["sent"]);
        }
        if waiting == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let send_secs = t_send.elapsed().as_secs_f64();

    println!(
        "\n{} {:>9} {:>11} {:>8} {:>8} {:>8} {:>10} {:>7}",
        pad("campaign", 22),
        "eligible",
        "unreachable",
        "wechat",
        "sms",
        "hotline",
        "delivered",
        "failed"
    );
    let mut total_pushes = 0;
    for (id, name, _) in &campaigns {
        let c = client.get(&format!("/campaigns/{id}")).await?;
        let n = &c["counts"];
        let ch = &c["by_channel"];
        total_pushes +=
            n["eligible"].as_u64().unwrap_or(0) - n["unreachable"].as_u64().unwrap_or(0);
        println!(
            "{} {:>9} {:>11} {:>8} {:>8} {:>8} {:>10} {:>7}",
            pad(&short(name), 22),
            num(&n["eligible"]),
            num(&n["unreachable"]),
            num(&ch["wechat"]),
            num(&ch["sms"]),
            num(&ch["hotline"]),
            num(&n["delivered"]),
            n["failed"]
        );
    }
    let sample = client
        .get(&format!("/campaigns/{}/pushes?limit=1", campaigns[0].0))
        .await?;
    println!(
        "\n{total} subjects imported in {import_secs:.1} s; {total_pushes} pushes delivered through the connectors to the simulators in {send_secs:.1} s; demo total {:.1} s.",
        started.elapsed().as_secs_f64()
    );
    if let Some(item) = sample["items"].get(0) {
        println!(
            "example push ({}): {}",
            item["channel"],
            domain::provider_template::display_text(item["content"].as_str().unwrap_or(""))
        );
        println!("why: {}", item["why"].as_str().unwrap_or(""));
        println!("clauses: {}", item["explanation"].as_str().unwrap_or(""));
    }
    println!("\nAPI:      {base}/api/v1/campaigns   (Authorization: Bearer {admin_token})");
    println!(
        "sandbox:  {base}/api/v1/sandbox/messages?campaign_id={}",
        campaigns[0].0
    );
    println!(
        "console:  {base}/console/   (sign in with a token: admin {admin_token}, editor {editor_token}, reviewer {reviewer_token})"
    );
    println!(
        "report:   {base}/console/campaigns/{}/report",
        campaigns[0].0
    );
    if args.exit {
        return running.stop().await;
    }
    println!("serving; Ctrl-C to stop.");
    crate::server::wait_for_signal().await;
    running.stop().await
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn short(name: &str) -> String {
    name.chars().take(10).collect()
}

/// `text` cut and padded to `width` terminal columns (a Chinese character takes two), so
/// columns line up whatever the script.
fn pad(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.extend(std::iter::repeat_n(' ', width - used));
    out
}
