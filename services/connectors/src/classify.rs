//! Every provider error code → [`SendOutcome`], in one place.
//!
//! | provider | code | outcome |
//! |---|---|---|
//! | Alibaba SMS/voice | `isv.MOBILE_NUMBER_ILLEGAL`, `isv.MOBILE_COUNT_OVER_LIMIT` | Permanent |
//! | Alibaba SMS/voice | `isv.BUSINESS_LIMIT_CONTROL` (per-number minute/hour/day limit, voice concurrency 200121) | Transient, `retry_after` from the message (1 min / 1 h / 24 h / 1 s) |
//! | Alibaba SMS | `isv.BLACK_KEY_CONTROL_LIMIT` | Unreachable |
//! | Alibaba SMS/voice | `isv.SMS_SIGNATURE_ILLEGAL`, `isv.SMS_TEMPLATE_ILLEGAL`, `isv.TEMPLATE_MISSING_PARAMETERS`, `isv.INVALID_JSON_PARAM`, `isv.PARAM_LENGTH_LIMIT`, `isv.AMOUNT_NOT_ENOUGH`, `isv.OUT_OF_SERVICE`, other `isv.*` | Permanent |
//! | Alibaba | `isp.*` (`isp.SYSTEM_ERROR`), `Throttling*`, `ServiceUnavailable`, `InternalError`, `SignatureNonceUsed` | Transient |
//! | Alibaba | `SignatureDoesNotMatch`, `InvalidAccessKeyId.*`, `InvalidTimeStamp.*`, other | Permanent |
//! | WeChat | 43004, 43101 | Unreachable |
//! | WeChat | 40003, 40037, 40036, 40039, 40249, 43116, 47003, 41030 | Permanent |
//! | WeChat | -1, 45009, 45011 | Transient |
//! | WeChat | 40001, 40014, 42001 (after one token refresh and retry) | Transient |
//! | Tencent | `LimitExceeded.*` | Transient (`…DailyLimit` 24 h, `…OneHourLimit` 1 h, `…ThirtySecondLimit` 30 s) |
//! | Tencent | `FailedOperation.PhoneNumberInBlacklist` | Unreachable |
//! | Tencent | `InternalError.*`, `RequestLimitExceeded`, `FailedOperation.MarketingSendTimeConstraint` | Transient |
//! | Tencent | everything else (`InvalidParameterValue.*`, signature/template, `AuthFailure.*`) | Permanent |
//! | any | HTTP 5xx / 429 without a provider code, timeout, connection error | Transient |
//! | any | other HTTP status without a provider code | Permanent |

use crate::SendOutcome;
use std::time::Duration;

/// An Alibaba Cloud (SMS or voice) reply whose `Code` is not `OK`.
pub fn aliyun(code: &str, message: &str, http_status: u16) -> SendOutcome {
    let bare = code
        .strip_prefix("isv.")
        .or_else(|| code.strip_prefix("isp."))
        .unwrap_or(code);
    let (code_s, message_s) = (code.to_string(), message.to_string());
    match bare {
        "BUSINESS_LIMIT_CONTROL" => SendOutcome::Transient {
            code: code_s,
            retry_after: Some(aliyun_limit_retry_after(message)),
            message: message_s,
        },
        "BLACK_KEY_CONTROL_LIMIT" => SendOutcome::Unreachable {
            code: code_s,
            message: message_s,
        },
        _ if code.starts_with("isp.")
            || code.starts_with("Throttling")
            || code == "ServiceUnavailable"
            || code.starts_with("InternalError")
            || code == "SignatureNonceUsed"
            || code == "SYSTEM_ERROR" =>
        {
            SendOutcome::Transient {
                code: code_s,
                message: message_s,
                retry_after: None,
            }
        }
        _ if code.starts_with("isv.") => SendOutcome::permanent(code_s, message_s),
        _ if http_status >= 500 => SendOutcome::transient(code_s, message_s),
        _ => SendOutcome::permanent(code_s, message_s),
    }
}

/// How long an Alibaba `isv.BUSINESS_LIMIT_CONTROL` asks us to wait, read from its message
/// (`触发分钟级流控Permits:1`, `触发小时级流控…`, `触发天级流控…`; the voice concurrency
/// limit mentions `200121`).
pub fn aliyun_limit_retry_after(message: &str) -> Duration {
    if message.contains("200121") || message.contains("并发") {
        Duration::from_secs(1)
    } else if message.contains("分钟") {
        Duration::from_secs(60)
    } else if message.contains("小时") {
        Duration::from_secs(3600)
    } else if message.contains('天') || message.contains("日") {
        Duration::from_secs(24 * 3600)
    } else {
        Duration::from_secs(60)
    }
}

/// A WeChat reply with `errcode != 0` (token errors already retried once).
pub fn wechat(errcode: i64, errmsg: &str) -> SendOutcome {
    let code = errcode.to_string();
    let message = errmsg.to_string();
    match errcode {
        43004 | 43101 => SendOutcome::Unreachable { code, message },
        -1 | 40001 | 40014 | 42001 => SendOutcome::transient(code, message),
        45009 => SendOutcome::Transient {
            code,
            message,
            retry_after: Some(Duration::from_secs(3600)),
        },
        45011 => SendOutcome::Transient {
            code,
            message,
            retry_after: Some(Duration::from_secs(60)),
        },
        _ => SendOutcome::permanent(code, message),
    }
}

/// Whether a WeChat errcode means "get a new access token and try again".
pub fn wechat_token_invalid(errcode: i64) -> bool {
    matches!(errcode, 40001 | 40014 | 42001)
}

/// A Tencent Cloud error code (request-level `Error.Code` or per-number `SendStatus.Code`).
pub fn tencent(code: &str, message: &str) -> SendOutcome {
    let (code_s, message_s) = (code.to_string(), message.to_string());
    if code == "FailedOperation.PhoneNumberInBlacklist" {
        return SendOutcome::Unreachable {
            code: code_s,
            message: message_s,
        };
    }
    if let Some(kind) = code.strip_prefix("LimitExceeded.") {
        let retry_after = if kind.contains("Daily") {
            Some(Duration::from_secs(24 * 3600))
        } else if kind.contains("OneHour") {
            Some(Duration::from_secs(3600))
        } else if kind.contains("ThirtySecond") {
            Some(Duration::from_secs(30))
        } else if kind == "PhoneNumberCountLimit" {
            // More than 200 numbers in one request: our bug, not the recipient's.
            return SendOutcome::permanent(code_s, message_s);
        } else {
            Some(Duration::from_secs(60))
        };
        return SendOutcome::Transient {
            code: code_s,
            message: message_s,
            retry_after,
        };
    }
    if code.starts_with("InternalError")
        || code == "RequestLimitExceeded"
        || code == "FailedOperation.MarketingSendTimeConstraint"
    {
        return SendOutcome::transient(code_s, message_s);
    }
    SendOutcome::permanent(code_s, message_s)
}

/// An HTTP answer without a provider code in it.
pub fn http_status(status: u16) -> SendOutcome {
    let code = format!("http_{status}");
    let message = format!("HTTP {status} without a provider error code");
    if status >= 500 || status == 429 || status == 408 {
        SendOutcome::transient(code, message)
    } else {
        SendOutcome::permanent(code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(o: &SendOutcome) -> &'static str {
        match o {
            SendOutcome::Accepted { .. } => "accepted",
            SendOutcome::Unreachable { .. } => "unreachable",
            SendOutcome::Permanent { .. } => "permanent",
            SendOutcome::Transient { .. } => "transient",
        }
    }

    #[test]
    fn aliyun_table() {
        for (code, status, want) in [
            ("isv.MOBILE_NUMBER_ILLEGAL", 200, "permanent"),
            ("isv.BUSINESS_LIMIT_CONTROL", 200, "transient"),
            ("isv.BLACK_KEY_CONTROL_LIMIT", 200, "unreachable"),
            ("isv.SMS_SIGNATURE_ILLEGAL", 200, "permanent"),
            ("isv.SMS_TEMPLATE_ILLEGAL", 200, "permanent"),
            ("isv.TEMPLATE_MISSING_PARAMETERS", 200, "permanent"),
            ("isv.INVALID_JSON_PARAM", 200, "permanent"),
            ("isp.SYSTEM_ERROR", 200, "transient"),
            ("isp.SYSTEM_ERROR", 500, "transient"),
            ("SignatureDoesNotMatch", 400, "permanent"),
            ("InvalidAccessKeyId.NotFound", 404, "permanent"),
            ("SignatureNonceUsed", 400, "transient"),
            ("Throttling.User", 400, "transient"),
            ("ServiceUnavailable", 503, "transient"),
            ("SomethingNew", 502, "transient"),
        ] {
            assert_eq!(kind(&aliyun(code, "m", status)), want, "{code}");
        }
        assert_eq!(
            aliyun("isv.SMS_TEMPLATE_ILLEGAL", "m", 200).code(),
            Some("isv.SMS_TEMPLATE_ILLEGAL")
        );
    }

    #[test]
    fn aliyun_limit_windows() {
        let ra = |m: &str| match aliyun("isv.BUSINESS_LIMIT_CONTROL", m, 200) {
            SendOutcome::Transient { retry_after, .. } => retry_after.unwrap().as_secs(),
            _ => unreachable!(),
        };
        assert_eq!(ra("触发分钟级流控Permits:1"), 60);
        assert_eq!(ra("触发小时级流控Permits:5"), 3600);
        assert_eq!(ra("触发天级流控Permits:50"), 86400);
        assert_eq!(ra("200121 超过并发限制"), 1);
    }

    #[test]
    fn wechat_table() {
        for (code, want) in [
            (43004, "unreachable"),
            (43101, "unreachable"),
            (40003, "permanent"),
            (45009, "transient"),
            (45011, "transient"),
            (-1, "transient"),
            (47003, "permanent"),
            (40037, "permanent"),
            (42001, "transient"),
        ] {
            assert_eq!(kind(&wechat(code, "m")), want, "{code}");
        }
        assert!(
            wechat_token_invalid(40001)
                && wechat_token_invalid(42001)
                && wechat_token_invalid(40014)
        );
        assert!(!wechat_token_invalid(40003));
    }

    #[test]
    fn tencent_table() {
        for (code, want) in [
            ("LimitExceeded.PhoneNumberDailyLimit", "transient"),
            ("LimitExceeded.PhoneNumberCountLimit", "permanent"),
            ("FailedOperation.PhoneNumberInBlacklist", "unreachable"),
            ("InvalidParameterValue.IncorrectPhoneNumber", "permanent"),
            (
                "FailedOperation.SignatureIncorrectOrUnapproved",
                "permanent",
            ),
            ("InternalError.RequestTimeException", "transient"),
            ("AuthFailure.SignatureFailure", "permanent"),
        ] {
            assert_eq!(kind(&tencent(code, "m")), want, "{code}");
        }
    }

    #[test]
    fn http_statuses() {
        assert_eq!(kind(&http_status(503)), "transient");
        assert_eq!(kind(&http_status(429)), "transient");
        assert_eq!(kind(&http_status(404)), "permanent");
    }
}

/// Codes meaning the recipient refused our messages (Alibaba blacklist, Tencent
/// `PhoneNumberInBlacklist`): an opt-out to record, not just a failed message.
pub fn is_refusal(code: &str) -> bool {
    matches!(
        code,
        "isv.BLACK_KEY_CONTROL_LIMIT" | "FailedOperation.PhoneNumberInBlacklist"
    )
}

/// Codes meaning our own setup is wrong (signature, template, credentials, balance): every
/// later message on the channel would fail the same way, so the campaign stops and alerts
/// instead of burning through its audience.
pub fn is_configuration_error(code: &str) -> bool {
    matches!(
        code,
        "isv.SMS_SIGNATURE_ILLEGAL"
            | "isv.SMS_TEMPLATE_ILLEGAL"
            | "isv.TEMPLATE_MISSING_PARAMETERS"
            | "isv.AMOUNT_NOT_ENOUGH"
            | "isv.OUT_OF_SERVICE"
            | "SignatureDoesNotMatch"
            | "FailedOperation.SignatureIncorrectOrUnapproved"
            | "FailedOperation.TemplateParamSetNotMatchApprovedTemplate"
            | "FailedOperation.InsufficientBalanceInSmsPackage"
            | "40037"
            | "40125"
            | "40013"
    ) || code.starts_with("InvalidAccessKeyId")
        || code.starts_with("AuthFailure")
}

#[cfg(test)]
mod stop_tests {
    use super::*;

    #[test]
    fn refusals_and_configuration_errors() {
        assert!(is_refusal("isv.BLACK_KEY_CONTROL_LIMIT"));
        assert!(!is_refusal("isv.MOBILE_NUMBER_ILLEGAL"));
        assert!(is_configuration_error("isv.SMS_SIGNATURE_ILLEGAL"));
        assert!(is_configuration_error("InvalidAccessKeyId.NotFound"));
        assert!(!is_configuration_error("isv.MOBILE_NUMBER_ILLEGAL"));
        assert!(!is_configuration_error("isp.SYSTEM_ERROR"));
    }
}
