//! Upstream SMS (a recipient's reply, e.g. `TD`, `R` or `退订`) as the providers push it to
//! the customer's reply callback: the simulators' side of the SMS-reply opt-out.
//!
//! - Alibaba Cloud SmsUp: a JSON array of `{phone_number, send_time, content, sign_name,
//!   dest_code, sequence_id}`; the receiver answers `{"code":0,"msg":"接收成功"}`.
//! - Tencent Cloud SMS reply: one JSON object `{extend, mobile, nationcode, sign, text,
//!   time}`; the receiver answers `{"result":0,"errmsg":"OK"}`.

use std::time::Duration;

/// The Alibaba SmsUp body for one reply.
pub fn aliyun_sms_up_body(phone_number: &str, content: &str, sign_name: &str) -> serde_json::Value {
    let now =
        chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"));
    serde_json::json!([{
        "phone_number": phone_number,
        "send_time": now.format("%Y-%m-%d %H:%M:%S").to_string(),
        "content": content,
        "sign_name": sign_name,
        "dest_code": "",
        "sequence_id": now.timestamp_micros(),
    }])
}

/// The Tencent reply body for one reply (`mobile` without the country code).
pub fn tencent_reply_body(mobile: &str, text: &str, sign: &str) -> serde_json::Value {
    serde_json::json!({
        "extend": "",
        "mobile": mobile,
        "nationcode": "86",
        "sign": sign,
        "text": text,
        "time": chrono::Utc::now().timestamp(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyProvider {
    Aliyun,
    Tencent,
}

/// Posts one reply to `callback_url` as the provider would, and checks the receiver's
/// answer is the provider's success shape.
pub async fn send_reply(
    provider: ReplyProvider,
    callback_url: &str,
    mobile: &str,
    text: &str,
) -> Result<(), String> {
    let body = match provider {
        ReplyProvider::Aliyun => aliyun_sms_up_body(mobile, text, "人社服务"),
        ReplyProvider::Tencent => tencent_reply_body(mobile, text, "人社服务"),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .post(callback_url)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let answer: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
    let ok = match provider {
        ReplyProvider::Aliyun => answer["code"] == 0,
        ReplyProvider::Tencent => answer["result"] == 0,
    };
    if status.is_success() && ok {
        Ok(())
    } else {
        Err(format!("reply callback answered {status}: {answer}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let a = aliyun_sms_up_body("13800000000", "TD", "人社服务");
        assert_eq!(a[0]["content"], "TD");
        assert_eq!(a[0]["phone_number"], "13800000000");
        let t = tencent_reply_body("13800000000", "退订", "人社服务");
        assert_eq!(t["text"], "退订");
        assert_eq!(t["nationcode"], "86");
    }
}
