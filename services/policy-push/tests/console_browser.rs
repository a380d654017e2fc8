//! The operator console and the recipient page in a real browser: headless Chromium
//! (Debian's `chromium`) driven over WebDriver (`chromium-driver`) by fantoccini, against
//! the real binary on the embedded default.
//!
//! An editor signs in, creates a policy and a campaign and submits it; a reviewer signs
//! in, publishes the policy and approves the campaign; the editor launches it and reads
//! the report, whose figures must be the API's. Then a recipient opens their link on a
//! phone-sized window and sees the policy page with its unsubscribe controls.
//!
//! Chromium missing is a failure, not a skip: `apt-get install -y chromium chromium-driver`.
//! Screenshots are written to `CARGO_TARGET_TMPDIR` (console-report.png, recipient.png).

mod support;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const POLICY_TITLE: &str = "浏览器测试·求职创业补贴";
const APPLY_URL: &str = "https://zwdt.sh.gov.cn/govPortals/bsfw/item/test-0001";

fn executable(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver() -> Driver {
    let chromium = executable("chromium");
    let driver = executable("chromedriver");
    let (Some(_), Some(driver)) = (chromium, driver) else {
        panic!(
            "the browser test needs Debian's chromium and chromium-driver on PATH \
             (apt-get install -y chromium chromium-driver); .ci/run installs them"
        );
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::blocking::get(format!("{url}/status")) {
            if r.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver { child, url }
}

/// A headless browser with a blocking interface (the test's HTTP helpers are blocking).
struct Browser {
    rt: tokio::runtime::Runtime,
    client: Client,
    base: String,
}

impl Browser {
    fn open(driver: &Driver, base: &str) -> Browser {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let caps: serde_json::Map<String, Value> = serde_json::from_value(json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": executable("chromium").unwrap(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000", "--lang=zh-CN"],
            }
        }))
        .unwrap();
        let client = rt
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps)
                    .connect(&driver.url),
            )
            .expect("open a chromium session");
        Browser {
            rt,
            client,
            base: base.to_string(),
        }
    }

    fn goto(&self, path: &str) {
        self.rt
            .block_on(self.client.goto(&format!("{}{path}", self.base)))
            .unwrap_or_else(|e| panic!("goto {path}: {e}"));
    }

    fn path(&self) -> String {
        let u = self.rt.block_on(self.client.current_url()).unwrap();
        u.path().to_string()
    }

    fn text(&self, css: &str) -> String {
        self.rt
            .block_on(async {
                let el = self.client.wait().for_element(Locator::Css(css)).await?;
                el.text().await
            })
            .unwrap_or_else(|e| panic!("text of {css} on {}: {e}", self.path()))
    }

    fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.rt
            .block_on(async {
                let el = self.client.wait().for_element(Locator::Css(css)).await?;
                el.attr(name).await
            })
            .unwrap_or_else(|e| panic!("{name} of {css}: {e}"))
    }

    fn count(&self, css: &str) -> usize {
        self.rt
            .block_on(self.client.find_all(Locator::Css(css)))
            .unwrap()
            .len()
    }

    fn fill(&self, css: &str, value: &str) {
        self.rt
            .block_on(async {
                let el = self.client.find(Locator::Css(css)).await?;
                el.clear().await?;
                el.send_keys(value).await
            })
            .unwrap_or_else(|e| panic!("fill {css}: {e}"));
    }

    fn select(&self, css: &str, value: &str) {
        self.rt
            .block_on(async {
                let el = self.client.find(Locator::Css(css)).await?;
                el.select_by_value(value).await
            })
            .unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    /// Clicks a button that submits a form and waits until the next page has replaced
    /// this one (the clicked button has gone stale) and has loaded.
    fn click(&self, css: &str) {
        let before = self.path();
        self.rt
            .block_on(async {
                let el = self.client.find(Locator::Css(css)).await?;
                el.click().await?;
                let deadline = Instant::now() + Duration::from_secs(30);
                while el.tag_name().await.is_ok() {
                    if Instant::now() > deadline {
                        panic!("clicking {css} on {before} did not load another page");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                self.client
                    .wait()
                    .for_element(Locator::Css("body"))
                    .await
                    .map(|_| ())
            })
            .unwrap_or_else(|e| panic!("click {css} on {before}: {e}"));
    }

    /// Ticks a checkbox (no page change).
    fn click_box(&self, css: &str) {
        self.rt
            .block_on(async { self.client.find(Locator::Css(css)).await?.click().await })
            .unwrap_or_else(|e| panic!("tick {css}: {e}"));
    }

    fn flash_ok(&self) -> String {
        let err = self.count("#flash-err");
        assert_eq!(
            err,
            0,
            "the page reports an error: {}",
            if err > 0 {
                self.text("#flash-err")
            } else {
                String::new()
            }
        );
        self.text("#flash-ok")
    }

    fn sign_in(&self, token: &str) {
        self.goto("/console/");
        self.fill("#token", token);
        self.click("#signin");
        assert_eq!(self.path(), "/console/");
        assert_eq!(self.count("#logout"), 1, "signed in");
    }

    fn sign_out(&self) {
        self.click("#logout");
        assert_eq!(self.path(), "/console/login");
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.rt.block_on(self.client.screenshot()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        std::fs::write(&path, png).unwrap();
        path
    }

    fn source(&self) -> String {
        self.rt.block_on(self.client.source()).unwrap()
    }

    fn resize(&self, w: u32, h: u32) {
        self.rt.block_on(self.client.set_window_size(w, h)).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = self.rt.block_on(client.close());
    }
}

/// 12 persons: even ones registered unemployed (eligible), in two districts; every third
/// has WeChat, the others SMS only, and number 10 has no contact at all.
fn population(api: &Api) -> (usize, usize) {
    let mut lines = Vec::new();
    let (mut eligible, mut unreachable) = (0, 0);
    for i in 0..12u32 {
        let district = if i % 4 < 2 {
            "浦东新区"
        } else {
            "徐汇区"
        };
        let status = if i % 2 == 0 {
            "registered_unemployed"
        } else {
            "employed"
        };
        let (m, o) = match i {
            10 => (None, None),
            _ if i % 3 == 0 => (Some(mobile(500 + i)), Some(openid(500 + i))),
            _ => (Some(mobile(500 + i)), None),
        };
        if status == "registered_unemployed" {
            eligible += 1;
            if m.is_none() && o.is_none() {
                unreachable += 1;
            }
        }
        lines.push(
            person(
                &resident_id("19980512", 300 + i),
                &format!("求职者{i}"),
                m,
                o,
                json!({"district": district, "employment_status": status}),
            )
            .to_string(),
        );
    }
    let (st, v) = api.import("application/x-ndjson", lines.join("\n"));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["accepted"], 12, "{v}");
    (eligible, unreachable)
}

fn operator(api: &Api, name: &str, role: &str) -> String {
    let (st, v) = api.post("/api/v1/operators", json!({"name": name, "role": role}));
    assert_eq!(st, 201, "{v}");
    v["token"].as_str().unwrap().to_string()
}

#[test]
fn console_sign_in_policy_campaign_four_eyes_launch_report_and_recipient_page() {
    let driver = start_driver();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.api();
    let (eligible, unreachable) = population(&api);
    let editor = operator(&api, "编辑王芳", "editor");
    let reviewer = operator(&api, "审核员李强", "reviewer");

    let b = Browser::open(&driver, &server.base);

    // Not signed in: the sign-in page; a wrong token is refused.
    b.goto("/console/");
    assert_eq!(b.count("#token"), 1, "the sign-in page");
    b.fill("#token", "not-a-token");
    b.click("#signin");
    assert!(b.text("#flash-err").contains("令牌无效"));

    // The editor creates a policy.
    b.sign_in(&editor);
    b.goto("/console/policies");
    b.fill("#p-title", POLICY_TITLE);
    b.fill("#p-doc", "沪人社就〔2026〕99号");
    b.fill("#p-issuer", "上海市人力资源和社会保障局");
    b.fill("#p-category", "就业补贴");
    b.fill("#p-summary", "登记失业人员可申领一次性求职创业补贴。");
    b.fill(
        "#p-faq",
        "谁可以申请？\n本市登记失业人员。\n\n补贴多少？\n每人一次性1500元。",
    );
    b.fill("#p-url", APPLY_URL);
    b.fill("#p-elig", "employment_status == 'registered_unemployed'");
    b.fill("#p-benefit", "1500");
    b.click("#create-policy");
    assert!(b.flash_ok().contains("政策已创建"));
    let policy_path = b.path();
    let policy_id = policy_path.rsplit('/').next().unwrap().to_string();
    assert!(policy_id.starts_with("pol_"), "{policy_path}");
    assert_eq!(b.text("#policy-status"), "草稿");
    assert_eq!(b.text("#audience-count"), eligible.to_string());
    assert_eq!(b.count("#publish"), 0, "an editor cannot publish");

    // ... and a campaign for it (default templates, WeChat then SMS then hotline).
    b.goto(&format!("/console/campaigns?policy_id={policy_id}"));
    b.fill("#c-name", "浏览器测试活动");
    b.select("#c-ch3", "");
    b.click("#create-campaign");
    assert!(b.flash_ok().contains("推送活动已创建"));
    let campaign_path = b.path();
    let campaign_id = campaign_path.rsplit('/').next().unwrap().to_string();
    assert_eq!(
        b.attr("#campaign-status", "data-status").as_deref(),
        Some("draft")
    );
    assert_eq!(b.text("#audience-count"), eligible.to_string());
    // Sample messages: one per channel of the plan, SMS with its billed parts.
    assert_eq!(b.count("#samples .msg"), 2);
    let segments: u32 = b.text("#samples .segments").parse().unwrap();
    assert!(segments >= 1);
    let shot = b.screenshot("console-campaign.png");
    eprintln!("console screenshot: {}", shot.display());
    b.click("#do-submit");
    assert!(b.flash_ok().contains("已提交审批"));
    assert_eq!(
        b.attr("#campaign-status", "data-status").as_deref(),
        Some("submitted")
    );
    assert_eq!(b.count("#do-approve"), 0, "an editor cannot approve");
    b.sign_out();

    // The reviewer publishes the policy and approves the campaign.
    b.sign_in(&reviewer);
    b.goto(&policy_path);
    b.select("#r-disclosure", "public");
    b.click_box("#r-checked");
    b.click("#do-review");
    assert!(b.flash_ok().contains("审查通过"));
    assert!(b.text("#review").contains("主动公开"));
    b.click("#publish");
    assert!(b.flash_ok().contains("已发布"));
    assert_eq!(b.text("#policy-status"), "已发布");
    b.goto(&campaign_path);
    assert_eq!(b.count("#do-launch"), 0, "a reviewer cannot launch");
    b.click("#do-approve");
    assert!(b.flash_ok().contains("已批准"));
    assert_eq!(
        b.attr("#campaign-status", "data-status").as_deref(),
        Some("approved")
    );
    assert_eq!(b.text("#approved-by"), "审核员李强");
    b.sign_out();

    // The editor launches it.
    b.sign_in(&editor);
    b.goto(&campaign_path);
    b.click("#do-launch");
    assert!(b.flash_ok().contains("已启动推送"));
    let done = api.wait_completed(&campaign_id, Duration::from_secs(120));
    assert_eq!(done["counts"]["eligible"], eligible as u64);
    assert_eq!(done["counts"]["unreachable"], unreachable as u64);

    // The report page shows the API's figures.
    let (st, report) = api.get(&format!("/api/v1/campaigns/{campaign_id}/report"));
    assert_eq!(st, 200, "{report}");
    b.goto(&format!("{campaign_path}/report"));
    let t = &report["total"];
    assert_eq!(b.text("#t-eligible"), t["eligible"].to_string());
    assert_eq!(b.text("#t-delivered"), t["delivered"].to_string());
    assert_eq!(t["eligible"], eligible as u64);
    assert_eq!(t["unreachable"], unreachable as u64);
    assert!(b.count("#by-channel tbody tr") >= 1);
    assert_eq!(b.count("#reach tbody tr"), 2, "two districts of persons");
    assert!(b.count("svg.chart rect") > 0, "bar charts");
    let shot = b.screenshot("console-report.png");
    eprintln!("console screenshot: {}", shot.display());

    // The audit log shows who did what.
    b.goto("/console/audit");
    let audit = b.text("#audit");
    for action in [
        "policy.create",
        "campaign.submit",
        "campaign.approve",
        "campaign.launch",
    ] {
        assert!(audit.contains(action), "{action} in the audit log");
    }
    assert!(audit.contains("审核员李强") && audit.contains("编辑王芳"));

    // A recipient opens their link on a phone.
    let sms = api
        .sandbox(&campaign_id)
        .into_iter()
        .find(|m| m["channel"] == "sms")
        .expect("an SMS was sent");
    let content = sms["content"].as_str().unwrap();
    let code = content
        .split("/l/")
        .nth(1)
        .expect("the SMS carries its link")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect::<String>();
    assert_eq!(code.len(), 22);
    b.sign_out();
    b.resize(390, 844);
    b.goto(&format!("/l/{code}"));
    assert_eq!(b.text("h1"), POLICY_TITLE);
    assert!(b.text("#amount").contains("1,500"), "{}", b.text("#amount"));
    // In sentences, not rule syntax (no attribute catalogue here: the raw name shows).
    let why = b.text("#why");
    assert!(
        why.contains("employment_status为registered_unemployed") && !why.contains("=="),
        "{why}"
    );
    assert!(b.text("#faq").contains("谁可以申请"));
    assert_eq!(b.attr("#apply a.apply", "href").as_deref(), Some(APPLY_URL));
    assert_eq!(b.count("#unsubscribe form"), 2);
    assert_eq!(
        b.attr("#unsubscribe form", "action").as_deref(),
        Some(format!("/l/{code}/unsubscribe").as_str())
    );
    assert_eq!(b.count("#unsub-channel"), 1);
    assert_eq!(b.count("#unsub-category"), 1);
    let shot = b.screenshot("recipient.png");
    eprintln!("recipient screenshot: {}", shot.display());
    let png =
        b.rt.block_on(async {
            let el = b.client.find(Locator::Css("#unsubscribe")).await?;
            el.screenshot().await
        })
        .unwrap();
    std::fs::write(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("recipient-unsubscribe.png"),
        png,
    )
    .unwrap();
    let (_, c) = api.get(&format!("/api/v1/campaigns/{campaign_id}"));
    assert!(c["counts"]["clicked"].as_u64().unwrap() >= 1, "{c}");

    // The recipient unsubscribes from SMS; the hotline agents' history shows it.
    b.click("#unsub-channel");
    assert_eq!(b.path(), format!("/l/{code}/unsubscribe"));
    assert_eq!(
        b.count("#unsubscribed"),
        1,
        "the unsubscribe page: {}",
        b.source()
    );
    let subject = sms["subject_id"].as_str().unwrap();
    let (st, h) = api.get(&format!("/api/v1/subjects/{subject}/history"));
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["opt_outs"][0]["channel"], "sms", "{h}");
    assert!(h["pushes"][0]["clicked_at"].is_string(), "{h}");

    // The next SMS campaign (another policy, another category) skips that subject.
    let (st, p2) = api.post(
        "/api/v1/policies",
        json!({"title": "浏览器测试·培训补贴", "category": "培训补贴",
               "eligibility": "employment_status == 'registered_unemployed'"}),
    );
    assert_eq!(st, 201, "{p2}");
    let p2 = p2["id"].as_str().unwrap();
    let (st, v) = api.post(&format!("/api/v1/policies/{p2}/publish"), json!({}));
    assert_eq!(st, 200, "{v}");
    let (st, c2) = api.post(
        "/api/v1/campaigns",
        json!({"policy_id": p2, "name": "下一次短信", "channels": ["sms"],
               "templates": {"sms": "{{ policy.title }} {{ link }}"}}),
    );
    assert_eq!(st, 201, "{c2}");
    let c2 = c2["id"].as_str().unwrap();
    let (st, v) = api.post(&format!("/api/v1/campaigns/{c2}/launch"), json!({}));
    assert_eq!(st, 200, "{v}");
    api.wait_completed(c2, Duration::from_secs(120));
    assert!(
        api.sandbox(c2).iter().all(|m| m["subject_id"] != subject),
        "no SMS to the subject who unsubscribed"
    );
    let (_, h) = api.get(&format!("/api/v1/subjects/{subject}/history"));
    assert!(
        h["skips"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["campaign_id"] == c2 && k["reason"] == "opted_out"),
        "{h}"
    );
    let (_, r2) = api.get(&format!("/api/v1/campaigns/{c2}/report"));
    assert_eq!(r2["total"]["opted_out"], 1, "{r2}");
}
