//! `/aliyun/voice/`: Alibaba Cloud voice (dyvmsapi 2017-05-25) `SingleCallByTts`, V2
//! signature verified.
//!
//! Checks: `CalledNumber` (`isv.MOBILE_NUMBER_ILLEGAL`), `TtsCode` (`isv.TTS_TEMPLATE_ILLEGAL`
//! when a list is configured), `TtsParam` (a JSON object of strings, `isv.INVALID_JSON_PARAM`;
//! under 250 characters, `isv.PARAM_LENGTH_LIMIT`; every placeholder filled,
//! `isv.TEMPLATE_MISSING_PARAMETERS`), `PlayTimes` 1–3 and `OutId` ≤ 15 bytes
//! (`isv.INVALID_PARAMETERS`), per-callee limits 1/min, 5/h, 20/24 h
//! (`isv.BUSINESS_LIMIT_CONTROL` `触发分钟级流控Permits:1` …) and the number of calls in
//! progress (`isv.BUSINESS_LIMIT_CONTROL` with `200121` in the message; the real API's
//! answer for this is not documented, 200121 is its call-status code for it). A call
//! lasts `receipt_delay`; then its `VoiceReport` is sent (`200000` answered and listened
//! fully; `200005` for failing recipients).

use crate::aliyun_rpc::{
    authenticate, biz_error, error, ok, parse, string_object, substitute, system_error, Refusal,
    RpcParams,
};
use crate::aliyun_sms::cst;
use crate::limits::Limit;
use crate::sandbox::NewMessage;
use crate::state::SimulatorState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::ids::MobileNumber;
use std::time::{Duration, Instant};

const HOST: &str = "dyvmsapi.aliyuncs.com";
const VERSION: &str = "2017-05-25";

const CALLEE_LIMITS: [Limit; 3] = [
    Limit {
        window: Duration::from_secs(60),
        max: 1,
        message: "触发分钟级流控",
    },
    Limit {
        window: Duration::from_secs(3600),
        max: 5,
        message: "触发小时级流控",
    },
    Limit {
        window: Duration::from_secs(24 * 3600),
        max: 20,
        message: "触发天级流控",
    },
];

pub(crate) async fn handle(
    State(st): State<SimulatorState>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = match parse(query.as_deref(), &body) {
        Ok(p) => p,
        Err(e) => {
            return error(HOST, StatusCode::BAD_REQUEST, "InvalidParameter", &e).into_response()
        }
    };
    if let Err(r) = authenticate(&st, HOST, &method, &params, VERSION) {
        return r.into_response();
    }
    let result = match params.get("Action") {
        Some("SingleCallByTts") => call(&st, &params).await,
        _ => Err(error(
            HOST,
            StatusCode::NOT_FOUND,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        )),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn call(st: &SimulatorState, p: &RpcParams) -> Result<Response, Refusal> {
    if st.faults.before_send().await.is_some() {
        return Err(system_error(HOST));
    }
    let to = MobileNumber::parse(p.require("CalledNumber", HOST)?)
        .map_err(|_| biz_error("isv.MOBILE_NUMBER_ILLEGAL", "非法号码"))?
        .as_str()
        .to_string();
    let code = p.require("TtsCode", HOST)?;
    let Some(text) = st.config.tts_template(code) else {
        return Err(biz_error(
            "isv.TTS_TEMPLATE_ILLEGAL",
            "该账号下找不到对应模板",
        ));
    };
    let raw = p.get("TtsParam");
    if raw.is_some_and(|r| r.chars().count() >= 250) {
        return Err(biz_error(
            "isv.PARAM_LENGTH_LIMIT",
            "TtsParam 总长度需小于250个字符",
        ));
    }
    let params =
        string_object(raw).map_err(|_| biz_error("isv.INVALID_JSON_PARAM", "JSON参数不合法"))?;
    let tts = substitute(&text, &params).map_err(|name| {
        biz_error(
            "isv.TEMPLATE_MISSING_PARAMETERS",
            &format!("模板缺少变量: {name}"),
        )
    })?;
    let play_times: u32 = p.get("PlayTimes").unwrap_or("3").parse().unwrap_or(0);
    if !(1..=3).contains(&play_times) {
        return Err(biz_error("isv.INVALID_PARAMETERS", "PlayTimes 1-3"));
    }
    let out_id = p.get("OutId").unwrap_or("");
    if out_id.len() > 15 {
        return Err(biz_error("isv.INVALID_PARAMETERS", "OutId 长度不能超过15"));
    }
    if st.config.enforce_limits {
        let now = Instant::now();
        {
            let mut calls = st.voice_calls.lock().expect("calls lock");
            while calls.front().is_some_and(|end| *end <= now) {
                calls.pop_front();
            }
            if calls.len() >= st.config.voice_max_concurrent {
                return Err(biz_error(
                    "isv.BUSINESS_LIMIT_CONTROL",
                    "200121: 超过并发限制",
                ));
            }
        }
        if let Err(l) = st.voice_limits.lock().expect("limits lock").try_add(
            std::slice::from_ref(&to),
            &CALLEE_LIMITS,
            now,
        ) {
            return Err(biz_error(
                "isv.BUSINESS_LIMIT_CONTROL",
                &format!("{}Permits:{}", l.message, l.max),
            ));
        }
        st.voice_calls
            .lock()
            .expect("calls lock")
            .push_back(now + st.config.receipt_delay);
    }
    let call_id = st.ids.call_id();
    let recorded = st
        .record(vec![NewMessage {
            channel: "hotline",
            to,
            content: tts,
            provider_id: call_id.clone(),
            push_ref: out_id.to_string(),
            out_id: String::new(),
            template: code.to_string(),
        }])
        .await
        .map_err(|_| system_error(HOST))?;
    if st.receipts.wants_aliyun_voice() {
        let m = &recorded[0];
        let busy = st.config.voice_busy.contains(&m.to);
        let answered = !busy && !st.config.fails(&m.to);
        let start = m.received_at + chrono::Duration::seconds(3);
        let end =
            m.received_at + chrono::Duration::from_std(st.config.receipt_delay).unwrap_or_default();
        st.receipts.aliyun_voice(serde_json::json!({
            "call_id": m.provider_id,
            "originate_time": cst(m.received_at),
            "ring_time": cst(m.received_at),
            "start_time": if answered { cst(start) } else { String::new() },
            "end_time": cst(end),
            "caller": "12333",
            "callee": m.to,
            "duration": if answered { (end - start).num_seconds().max(0).to_string() } else { "0".to_string() },
            "status_code": if answered { "200000" } else if busy { "200002" } else { "200005" },
            "status_msg": if answered { "用户听完自动挂断" } else if busy { "用户忙" } else { "用户无法接通" },
            "hangup_direction": if answered { "机器" } else { "用户" },
            "early_media_code": "",
            "out_id": m.push_ref,
            "dtmf": if answered { st.config.voice_dtmf.clone().unwrap_or_default() } else { String::new() },
            "voice_type": "tts",
            "toll_type": "LOCAL",
        }));
    }
    Ok(ok(serde_json::json!({ "CallId": call_id })))
}
