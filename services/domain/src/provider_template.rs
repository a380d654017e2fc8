//! Provider templates as the providers register them, and the rules each provider applies
//! to their variables.
//!
//! In China every SMS, voice notice and WeChat template message names a template the
//! provider reviewed in advance; the send carries only the template's code and its
//! variables. A [`ProviderTemplate`] is one such registration: provider, code, the
//! registered text with its placeholders, signature, and each variable's kind and limit.
//!
//! | provider | code | placeholders | variables sent as |
//! |---|---|---|---|
//! | `aliyun_sms` | `TemplateCode` | `${name}` | `TemplateParam` JSON by name |
//! | `tencent_sms` | `TemplateId` | `{1}`, `{2}`, … | `TemplateParamSet`, in order |
//! | `wechat` | `template_id` | `{{thing1.DATA}}` | `data` keywords |
//! | `aliyun_voice` | `TtsCode` | `${name}` | `TtsParam` JSON by name |
//!
//! **Registration checks** ([`ProviderTemplate::check`]): the placeholders of the text are
//! exactly the declared variables, each once (Tencent numbers them `1..n`; WeChat names
//! are keywords `<type><n>`; Alibaba names start with a letter, 1–25 letters, digits or
//! `_`, not `email`/`mobile`/`id`/`nick`/`site`); a text that is nothing but variables is
//! refused as the providers' review refuses it, unless it is registered as the
//! `catch_all` (the simulators' `${content}` / `{1}`, never on a real account); an SMS
//! text carries no `【】` (the provider adds the signature) and names its signature; a
//! voice text holds no link.
//!
//! **Value checks** ([`ProviderTemplate::check_value`]), the rules a provider applies when
//! the message is sent, each error naming the variable and the rule:
//! - every provider: not empty, no control characters; SMS and voice: no link in a
//!   variable (`http://`, `https://`, `www.`: Tencent
//!   `InvalidParameterValue.ProhibitedUseUrlInTemplateParameter`; Alibaba's template rules
//!   put links in the fixed text only), no `【】`;
//! - the variable's kind ([`VarKind`]): `number`, `amount`, `date`, `phone`, `code` have a
//!   format; `text` and `name` take any text;
//! - length: the variable's registered `max_chars`; else Tencent's 12 characters per
//!   variable for accounts that are not `enterprise` (Tencent
//!   `InvalidParameterValue.TemplateParameterLengthLimit`);
//! - WeChat: the keyword's type rules of [`crate::wechat_keywords`] (`thing` ≤ 20, …).
//!
//! Whole-message limits are checked on the filled text ([`ProviderTemplate::fill`]): SMS at
//! most [`crate::sms::MAX_CHARS`] with the signature; Alibaba voice `TtsParam` under 250
//! characters.
//!
//! A push bound to a template carries [`BoundContent`] in its `content` column: the code,
//! the variables in the template's order, and the text as the provider will deliver it.

use crate::channel::Channel;
use crate::wechat_keywords::{self, KeywordType};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// The provider a template is registered with.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    AliyunSms,
    TencentSms,
    Wechat,
    AliyunVoice,
}

impl Provider {
    pub const ALL: [Provider; 4] = [
        Provider::AliyunSms,
        Provider::TencentSms,
        Provider::Wechat,
        Provider::AliyunVoice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::AliyunSms => "aliyun_sms",
            Provider::TencentSms => "tencent_sms",
            Provider::Wechat => "wechat",
            Provider::AliyunVoice => "aliyun_voice",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The channel the provider serves.
    pub fn channel(self) -> Channel {
        match self {
            Provider::AliyunSms | Provider::TencentSms => Channel::Sms,
            Provider::Wechat => Channel::Wechat,
            Provider::AliyunVoice => Channel::Hotline,
        }
    }

    /// `${name}`, `{1}` or `{{key.DATA}}`: how the provider writes a placeholder.
    pub fn placeholder(self, name: &str) -> String {
        match self {
            Provider::AliyunSms | Provider::AliyunVoice => format!("${{{name}}}"),
            Provider::TencentSms => format!("{{{name}}}"),
            Provider::Wechat => format!("{{{{{name}.DATA}}}}"),
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of an SMS or voice variable (Alibaba's 变量属性; Tencent's variables are
/// `text` unless registered otherwise). WeChat variables take their kind from the keyword
/// name (`thing1`, `time2`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VarKind {
    /// Any text (其他 / 自定义).
    #[default]
    Text,
    /// A person's name.
    Name,
    /// Digits, one `.` allowed (仅数字).
    Number,
    /// An amount: digits with `,` and one `.`, an optional `¥`/`￥` before or `元` after (金额).
    Amount,
    /// A date or time: `2025-06-30`, `2025年6月30日`, optionally with `HH:MM` (时间).
    Date,
    /// A phone number: 5–11 digits, `-` allowed (电话号码).
    Phone,
    /// Letters, digits, `-` and `_` (其他号码, 字母+数字).
    Code,
}

impl VarKind {
    fn as_str(self) -> &'static str {
        match self {
            VarKind::Text => "text",
            VarKind::Name => "name",
            VarKind::Number => "number",
            VarKind::Amount => "amount",
            VarKind::Date => "date",
            VarKind::Phone => "phone",
            VarKind::Code => "code",
        }
    }
}

/// One variable of a registered template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateVariable {
    /// As in the text: `name` (Alibaba), `1` (Tencent), `thing1` (WeChat).
    pub name: String,
    #[serde(default)]
    pub kind: VarKind,
    /// The longest value the provider accepts, in characters (every character counts 1),
    /// as registered; `None`: the provider's default (see the module docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_chars: Option<usize>,
}

/// A template as registered with a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProviderTemplate {
    pub provider: Provider,
    /// `TemplateCode` / `TemplateId` / `template_id` / `TtsCode`.
    pub code: String,
    /// What the operators call it.
    #[serde(default)]
    pub name: String,
    /// The registered text with its placeholders.
    pub text: String,
    /// SMS: the signature without brackets (the provider adds `【…】`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_name: Option<String>,
    /// In the order of the text (Tencent: `1`, `2`, …).
    #[serde(default)]
    pub variables: Vec<TemplateVariable>,
    /// A template that is only one variable, taking a whole rendered message. Reviews
    /// refuse it; only the simulators register one, and only when configured to.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub catch_all: bool,
    /// Tencent: the account is enterprise-verified, so variables are not limited to 12
    /// characters.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enterprise: bool,
}

/// Why a registration is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("template {code} ({provider}): {message}")]
pub struct RegistrationError {
    pub provider: Provider,
    pub code: String,
    pub message: String,
}

/// A value the provider would refuse: which variable, which rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("variable `{variable}`: {rule}")]
pub struct VariableError {
    pub variable: String,
    pub rule: String,
}

/// Tencent's limit per variable for accounts that are not enterprise-verified.
pub const TENCENT_PERSONAL_MAX_CHARS: usize = 12;
/// Alibaba voice: the whole `TtsParam` JSON must be shorter than this.
pub const TTS_PARAM_MAX_CHARS: usize = 250;
/// The longest registered text.
pub const MAX_TEXT_CHARS: usize = 500;
/// Names Alibaba refuses for a variable.
const ALIYUN_RESERVED: &[&str] = &["email", "mobile", "id", "nick", "site"];

impl ProviderTemplate {
    pub fn channel(&self) -> Channel {
        self.provider.channel()
    }

    fn refuse(&self, message: impl Into<String>) -> RegistrationError {
        RegistrationError {
            provider: self.provider,
            code: self.code.clone(),
            message: message.into(),
        }
    }

    /// The registration rules (see the module docs).
    pub fn check(&self) -> Result<(), RegistrationError> {
        let code_ok = !self.code.is_empty()
            && self.code.len() <= 64
            && self
                .code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !code_ok {
            return Err(self.refuse(
                "the code must be 1–64 ASCII letters, digits, `_` or `-`, as the provider issued it",
            ));
        }
        if self.text.trim().is_empty() {
            return Err(self.refuse("the text is empty"));
        }
        let n = self.text.chars().count();
        if n > MAX_TEXT_CHARS {
            return Err(self.refuse(format!(
                "the text has {n} characters; providers take at most {MAX_TEXT_CHARS}"
            )));
        }
        let found = placeholders(self.provider, &self.text);
        for (i, v) in self.variables.iter().enumerate() {
            self.check_name(i, v)?;
            if self.variables[..i].iter().any(|w| w.name == v.name) {
                return Err(self.refuse(format!("variable `{}` is declared twice", v.name)));
            }
            match found.iter().filter(|f| **f == v.name).count() {
                0 => {
                    return Err(self.refuse(format!(
                        "variable `{}` is declared but the text has no {}",
                        v.name,
                        self.provider.placeholder(&v.name)
                    )))
                }
                1 => {}
                _ => {
                    return Err(self.refuse(format!(
                        "{} appears more than once; a variable may appear once",
                        self.provider.placeholder(&v.name)
                    )))
                }
            }
        }
        if let Some(undeclared) = found
            .iter()
            .find(|f| !self.variables.iter().any(|v| &v.name == *f))
        {
            return Err(self.refuse(format!(
                "{} is in the text but not declared in variables",
                self.provider.placeholder(undeclared)
            )));
        }
        let fixed = self.fixed_text();
        let only_variables = !fixed.chars().any(char::is_alphanumeric);
        match (self.catch_all, only_variables) {
            (true, _) if self.variables.len() != 1 || !only_variables => {
                return Err(
                    self.refuse("a catch_all template is exactly one variable and nothing else")
                )
            }
            (false, true) => {
                return Err(self.refuse(
                    "the text is nothing but variables; the providers' review refuses such a \
                     template (register it as catch_all only for the simulators)",
                ))
            }
            _ => {}
        }
        match self.channel() {
            Channel::Sms => {
                if self.text.contains('【') || self.text.contains('】') {
                    return Err(self.refuse(
                        "an SMS text must not contain 【 or 】: the provider adds the signature",
                    ));
                }
                let sign = self.sign_name.as_deref().unwrap_or("").trim();
                let len = sign.chars().count();
                if !(2..=12).contains(&len) {
                    return Err(self.refuse(
                        "an SMS template names its signature (sign_name, 2–12 characters)",
                    ));
                }
            }
            Channel::Hotline if has_link(&self.text) => {
                return Err(self.refuse("a voice text cannot hold a link: it is read aloud"));
            }
            _ => {}
        }
        Ok(())
    }

    fn check_name(&self, i: usize, v: &TemplateVariable) -> Result<(), RegistrationError> {
        let name = v.name.as_str();
        match self.provider {
            Provider::TencentSms if name != (i + 1).to_string() => Err(self.refuse(format!(
                "Tencent variables are numbered in order: variable {} must be `{}`, not `{name}`",
                i + 1,
                i + 1
            ))),
            Provider::Wechat if KeywordType::of_key(name).is_none() => Err(self.refuse(format!(
                "`{name}` is not a WeChat keyword (`thing1`, `time2`, `amount3`, …)"
            ))),
            Provider::AliyunSms | Provider::AliyunVoice => {
                let ok = (1..=25).contains(&name.len())
                    && name.starts_with(|c: char| c.is_ascii_alphabetic())
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !ALIYUN_RESERVED.contains(&name);
                if ok {
                    Ok(())
                } else {
                    Err(self.refuse(format!(
                        "`{name}`: Alibaba variable names are 1–25 letters, digits or `_`, \
                         start with a letter, and are not email, mobile, id, nick or site"
                    )))
                }
            }
            _ => Ok(()),
        }
    }

    /// The text without its placeholders.
    fn fixed_text(&self) -> String {
        self.variables.iter().fold(self.text.clone(), |t, v| {
            t.replace(&self.provider.placeholder(&v.name), "")
        })
    }

    /// The variable called `name`.
    pub fn variable(&self, name: &str) -> Option<&TemplateVariable> {
        self.variables.iter().find(|v| v.name == name)
    }

    /// The longest value of `var`: registered, else the provider's default.
    pub fn max_chars(&self, var: &TemplateVariable) -> Option<usize> {
        var.max_chars.or(match self.provider {
            Provider::TencentSms if !self.enterprise && !self.catch_all => {
                Some(TENCENT_PERSONAL_MAX_CHARS)
            }
            _ => None,
        })
    }

    /// Whether the provider accepts `value` for `var` (see the module docs).
    pub fn check_value(&self, var: &TemplateVariable, value: &str) -> Result<(), VariableError> {
        let refuse = |rule: String| VariableError {
            variable: var.name.clone(),
            rule,
        };
        if self.provider == Provider::Wechat {
            return wechat_keywords::check(&var.name, value).map_err(|e| {
                refuse(format!(
                    "WeChat {} ({}; the platform answers 47003)",
                    e.detail, e.code
                ))
            });
        }
        if value.is_empty() {
            return Err(refuse(
                "is empty; providers refuse an empty variable".into(),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(refuse(
                "holds a control character (a line break?); providers refuse it".into(),
            ));
        }
        if has_link(value) {
            return Err(refuse(format!(
                "holds a link; {} (write the fixed part of the link in the template text and \
                 bind `{{{{ link_code }}}}`)",
                match self.provider {
                    Provider::TencentSms =>
                        "Tencent refuses links in variables (InvalidParameterValue.ProhibitedUseUrlInTemplateParameter)",
                    Provider::AliyunVoice => "a voice variable is read aloud",
                    _ => "Alibaba's template rules allow links only in the fixed text",
                }
            )));
        }
        if self.channel() == Channel::Sms && (value.contains('【') || value.contains('】')) {
            return Err(refuse(
                "holds 【 or 】, which only the signature may use".into(),
            ));
        }
        let n = value.chars().count();
        if let Some(max) = self.max_chars(var) {
            if n > max {
                let why = if var.max_chars.is_none() {
                    format!(
                        "Tencent allows at most {max} per variable for accounts that are not \
                         enterprise-verified (InvalidParameterValue.TemplateParameterLengthLimit)"
                    )
                } else {
                    format!("the template registers at most {max}")
                };
                return Err(refuse(format!("has {n} characters; {why}")));
            }
        }
        let format_ok = match var.kind {
            VarKind::Text | VarKind::Name => true,
            VarKind::Number => {
                value.matches('.').count() <= 1
                    && value.chars().all(|c| c.is_ascii_digit() || c == '.')
                    && value.chars().any(|c| c.is_ascii_digit())
            }
            VarKind::Amount => is_amount(value),
            VarKind::Date => is_date(value),
            VarKind::Phone => {
                let digits = value.chars().filter(char::is_ascii_digit).count();
                (5..=11).contains(&digits) && value.chars().all(|c| c.is_ascii_digit() || c == '-')
            }
            VarKind::Code => value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        };
        if !format_ok {
            return Err(refuse(format!(
                "{value:?} is not a valid {} value ({})",
                var.kind.as_str(),
                kind_rule(var.kind)
            )));
        }
        Ok(())
    }

    /// Checks every value (`values` in the order of [`Self::variables`]) and the
    /// whole-message limits; returns the text as the provider delivers it (SMS: with
    /// `【signature】`).
    pub fn fill(&self, values: &[(String, String)]) -> Result<String, VariableError> {
        let mut text = self.text.clone();
        for var in &self.variables {
            let Some((_, value)) = values.iter().find(|(k, _)| *k == var.name) else {
                return Err(VariableError {
                    variable: var.name.clone(),
                    rule: "has no value".into(),
                });
            };
            self.check_value(var, value)?;
            text = text.replace(&self.provider.placeholder(&var.name), value);
        }
        if let Some((extra, _)) = values.iter().find(|(k, _)| self.variable(k).is_none()) {
            return Err(VariableError {
                variable: extra.clone(),
                rule: format!("is not a variable of template {}", self.code),
            });
        }
        match self.provider {
            Provider::AliyunSms | Provider::TencentSms => {
                let sign = self.sign_name.as_deref().unwrap_or("");
                let n = crate::sms::total_chars(sign, &text);
                if n > crate::sms::MAX_CHARS {
                    return Err(VariableError {
                        variable: self
                            .variables
                            .last()
                            .map_or_else(String::new, |v| v.name.clone()),
                        rule: format!(
                            "the message would have {n} characters with its signature; at most {}",
                            crate::sms::MAX_CHARS
                        ),
                    });
                }
                Ok(format!("【{sign}】{text}"))
            }
            Provider::AliyunVoice => {
                let param = params_json(values).to_string();
                let n = param.chars().count();
                if n >= TTS_PARAM_MAX_CHARS {
                    return Err(VariableError {
                        variable: self.variables.last().map_or_else(String::new, |v| v.name.clone()),
                        rule: format!(
                            "TtsParam would have {n} characters; Alibaba takes fewer than {TTS_PARAM_MAX_CHARS}"
                        ),
                    });
                }
                Ok(text)
            }
            Provider::Wechat => Ok(text),
        }
    }
}

fn kind_rule(kind: VarKind) -> &'static str {
    match kind {
        VarKind::Text | VarKind::Name => "any text",
        VarKind::Number => "digits, one `.` allowed",
        VarKind::Amount => "digits with `,` and one `.`, optionally `¥` before or `元` after",
        VarKind::Date => "`2025-06-30` or `2025年6月30日`, optionally with a time",
        VarKind::Phone => "5–11 digits, `-` allowed",
        VarKind::Code => "letters, digits, `-` and `_`",
    }
}

/// The variables as a JSON object by name (Alibaba `TemplateParam` / `TtsParam`).
pub fn params_json(values: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Object(
        values
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
            .collect(),
    )
}

/// The placeholder names of `text` in order of appearance.
pub fn placeholders(provider: Provider, text: &str) -> Vec<String> {
    let (open, close) = match provider {
        Provider::AliyunSms | Provider::AliyunVoice => ("${", "}"),
        Provider::TencentSms => ("{", "}"),
        Provider::Wechat => ("{{", ".DATA}}"),
    };
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(close) else { break };
        let name = &after[..end];
        let plausible =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if plausible {
            out.push(name.to_string());
            rest = &after[end + close.len()..];
        } else {
            rest = after;
        }
    }
    out
}

fn has_link(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("http://") || lower.contains("https://") || lower.contains("www.")
}

fn is_amount(value: &str) -> bool {
    let v = value.strip_prefix(['¥', '￥']).unwrap_or(value);
    let v = v.strip_suffix('元').unwrap_or(v);
    v.chars().any(|c| c.is_ascii_digit())
        && v.matches('.').count() <= 1
        && v.chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == '.')
}

fn is_date(value: &str) -> bool {
    use chrono::{NaiveDate, NaiveDateTime};
    const DATES: [&str; 2] = ["%Y-%m-%d", "%Y年%m月%d日"];
    const DATETIMES: [&str; 2] = ["%Y-%m-%d %H:%M", "%Y年%m月%d日 %H:%M"];
    DATES
        .iter()
        .any(|f| NaiveDate::parse_from_str(value, f).is_ok())
        || DATETIMES
            .iter()
            .any(|f| NaiveDateTime::parse_from_str(value, f).is_ok())
}

/// What the `content` of a push bound to a registered template holds: the provider and
/// code, the variables in the template's order, and the text as the provider delivers it
/// (SMS with its signature). Stored as JSON `{"bound": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundContent {
    pub provider: Provider,
    pub template: String,
    /// SMS: the template's signature, sent as `SignName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_name: Option<String>,
    pub params: Vec<(String, String)>,
    pub text: String,
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    bound: T,
}

/// How every bound `content` begins.
const BOUND_PREFIX: &str = "{\"bound\":";

impl BoundContent {
    /// The `content` column's value.
    pub fn to_content(&self) -> String {
        serde_json::to_string(&Envelope { bound: self }).expect("bound content serialises")
    }

    /// `Some` when `content` is a bound push's.
    pub fn from_content(content: &str) -> Option<BoundContent> {
        if !content.starts_with(BOUND_PREFIX) {
            return None;
        }
        serde_json::from_str::<Envelope<BoundContent>>(content)
            .ok()
            .map(|e| e.bound)
    }

    /// The variables' values in order (Tencent `TemplateParamSet`).
    pub fn values(&self) -> Vec<&str> {
        self.params.iter().map(|(_, v)| v.as_str()).collect()
    }
}

/// The text a person reads or hears for a push's `content`: a bound push's delivered
/// text, or the free text itself.
pub fn display_text(content: &str) -> Cow<'_, str> {
    match BoundContent::from_content(content) {
        Some(b) => Cow::Owned(b.text),
        None => Cow::Borrowed(content),
    }
}

/// The billed parts of an SMS push's `content`: a bound push's delivered text (its
/// `【signature】` included), or free text under `sign_name`.
pub fn sms_segments(sign_name: &str, content: &str) -> u32 {
    match BoundContent::from_content(content) {
        Some(b) => match b.text.strip_prefix('【').and_then(|t| t.split_once('】')) {
            Some((sign, body)) => crate::sms::segments(sign, body),
            None => crate::sms::segments("", &b.text),
        },
        None => crate::sms::segments(sign_name, content),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str, kind: VarKind, max: Option<usize>) -> TemplateVariable {
        TemplateVariable {
            name: name.into(),
            kind,
            max_chars: max,
        }
    }

    pub(crate) fn aliyun() -> ProviderTemplate {
        ProviderTemplate {
            provider: Provider::AliyunSms,
            code: "SMS_468201".into(),
            name: "政策申领提醒".into(),
            text: "${name}您好，您可能符合${policy}申领条件，请于${deadline}前申请，详见https://push.example.gov.cn/l/${code}".into(),
            sign_name: Some("人社服务".into()),
            variables: vec![
                var("name", VarKind::Name, Some(10)),
                var("policy", VarKind::Text, Some(20)),
                var("deadline", VarKind::Date, None),
                var("code", VarKind::Code, Some(32)),
            ],
            catch_all: false,
            enterprise: false,
        }
    }

    fn tencent() -> ProviderTemplate {
        ProviderTemplate {
            provider: Provider::TencentSms,
            code: "1843021".into(),
            name: String::new(),
            text: "您可能符合{1}申领条件，请于{2}前申请。".into(),
            sign_name: Some("人社服务".into()),
            variables: vec![var("1", VarKind::Text, None), var("2", VarKind::Date, None)],
            catch_all: false,
            enterprise: false,
        }
    }

    fn message(r: Result<(), RegistrationError>) -> String {
        r.expect_err("refused").message
    }

    #[test]
    fn registrations_are_checked() {
        aliyun().check().unwrap();
        tencent().check().unwrap();
        let mut t = aliyun();
        t.variables.pop();
        assert!(message(t.check()).contains("${code} is in the text but not declared"));
        let mut t = aliyun();
        t.variables.push(var("extra", VarKind::Text, None));
        assert!(message(t.check()).contains("`extra` is declared but the text has no ${extra}"));
        let mut t = aliyun();
        t.text = format!("{}${{name}}", t.text);
        assert!(message(t.check()).contains("appears more than once"));
        let mut t = aliyun();
        t.variables[0].name = "mobile".into();
        t.text = t.text.replace("${name}", "${mobile}");
        assert!(message(t.check()).contains("not email, mobile"));
        let mut t = tencent();
        t.variables.swap(0, 1);
        assert!(message(t.check()).contains("numbered in order"));
        let mut t = aliyun();
        t.text = format!("【人社】{}", t.text);
        assert!(message(t.check()).contains("adds the signature"));
        let mut t = aliyun();
        t.sign_name = None;
        assert!(message(t.check()).contains("signature"));
        let mut t = tencent();
        t.code = "12 34".into();
        assert!(message(t.check()).contains("code"));
    }

    #[test]
    fn only_variables_is_refused_unless_catch_all() {
        let mut t = tencent();
        t.text = "{1}".into();
        t.variables.truncate(1);
        assert!(message(t.check()).contains("nothing but variables"));
        t.catch_all = true;
        t.check().unwrap();
        t.text = "通知：{1}".into();
        assert!(message(t.check()).contains("exactly one variable"));
        let wechat = ProviderTemplate {
            provider: Provider::Wechat,
            code: "tmpl_policy_notice".into(),
            name: String::new(),
            text: "{{thing1.DATA}}\n{{time2.DATA}}".into(),
            sign_name: None,
            variables: vec![
                var("thing1", VarKind::Text, None),
                var("time2", VarKind::Text, None),
            ],
            catch_all: false,
            enterprise: false,
        };
        assert!(message(wechat.check()).contains("nothing but variables"));
        let mut w = wechat.clone();
        w.text = "政策名称：{{thing1.DATA}}\n截止时间：{{time2.DATA}}".into();
        w.check().unwrap();
        w.variables[0].name = "title1".into();
        w.text = w.text.replace("thing1", "title1");
        assert!(message(w.check()).contains("not a WeChat keyword"));
    }

    #[test]
    fn voice_text_has_no_link() {
        let t = ProviderTemplate {
            provider: Provider::AliyunVoice,
            code: "TTS_2001".into(),
            name: String::new(),
            text: "您好，请访问 www.example.gov.cn 查看${policy}".into(),
            sign_name: None,
            variables: vec![var("policy", VarKind::Text, None)],
            catch_all: false,
            enterprise: false,
        };
        assert!(message(t.check()).contains("read aloud"));
    }

    #[test]
    fn tencent_twelve_characters_unless_enterprise() {
        let t = tencent();
        let v = &t.variables[0];
        t.check_value(v, "一次性扩岗补助申领十二").unwrap();
        let e = t.check_value(v, "小微企业一次性扩岗补助申领").unwrap_err();
        assert_eq!(e.variable, "1");
        assert_eq!(
            e.to_string(),
            "variable `1`: has 13 characters; Tencent allows at most 12 per variable for \
             accounts that are not enterprise-verified \
             (InvalidParameterValue.TemplateParameterLengthLimit)"
        );
        let mut ent = tencent();
        ent.enterprise = true;
        ent.check_value(&ent.variables[0], "小微企业一次性扩岗补助申领")
            .unwrap();
    }

    #[test]
    fn links_kinds_and_registered_lengths() {
        let t = aliyun();
        let link = t
            .check_value(&t.variables[1], "见https://x.cn/a")
            .unwrap_err();
        assert!(link.rule.contains("holds a link"), "{link}");
        assert!(tencent()
            .check_value(&tencent().variables[0], "www.x.cn")
            .unwrap_err()
            .rule
            .contains("ProhibitedUseUrlInTemplateParameter"));
        let long = t
            .check_value(&t.variables[1], &"政".repeat(21))
            .unwrap_err();
        assert_eq!(
            long.to_string(),
            "variable `policy`: has 21 characters; the template registers at most 20"
        );
        t.check_value(&t.variables[2], "2025-12-31").unwrap();
        t.check_value(&t.variables[2], "2025年12月31日").unwrap();
        let date = t.check_value(&t.variables[2], "年底前").unwrap_err();
        assert!(date.rule.contains("not a valid date value"), "{date}");
        assert!(t.check_value(&t.variables[3], "Ab3x_9").is_ok());
        assert!(t.check_value(&t.variables[3], "Ab 3").is_err());
        assert!(t
            .check_value(&t.variables[0], "")
            .unwrap_err()
            .rule
            .contains("empty"));
        assert!(t.check_value(&t.variables[1], "a\nb").is_err());
        assert!(t.check_value(&t.variables[1], "【人社】").is_err());
        let amount = var("amount", VarKind::Amount, None);
        for ok in ["12,345", "¥9000.50", "9000元"] {
            t.check_value(&amount, ok).unwrap();
        }
        assert!(t.check_value(&amount, "约九千").is_err());
        let phone = var("phone", VarKind::Phone, None);
        t.check_value(&phone, "12333").unwrap();
        t.check_value(&phone, "021-12333").unwrap();
        assert!(t.check_value(&phone, "123").is_err());
        let number = var("n", VarKind::Number, None);
        assert!(t.check_value(&number, "12.5").is_ok() && t.check_value(&number, "1a").is_err());
    }

    #[test]
    fn wechat_values_follow_keyword_types() {
        let w = ProviderTemplate {
            provider: Provider::Wechat,
            code: "tmpl".into(),
            name: String::new(),
            text: "事项：{{thing1.DATA}}".into(),
            sign_name: None,
            variables: vec![var("thing1", VarKind::Text, None)],
            catch_all: false,
            enterprise: false,
        };
        let e = w
            .check_value(&w.variables[0], &"字".repeat(21))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "variable `thing1`: WeChat has 21 chars (max 20) (field_too_long; the platform answers 47003)"
        );
    }

    #[test]
    fn fill_renders_exactly_and_bounds_the_message() {
        let t = aliyun();
        let values: Vec<(String, String)> = [
            ("name", "张伟"),
            ("policy", "一次性扩岗补助"),
            ("deadline", "2025-12-31"),
            ("code", "Ab3x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            t.fill(&values).unwrap(),
            "【人社服务】张伟您好，您可能符合一次性扩岗补助申领条件，请于2025-12-31前申请，详见https://push.example.gov.cn/l/Ab3x"
        );
        let missing = t.fill(&values[..3]).unwrap_err();
        assert_eq!(missing.to_string(), "variable `code`: has no value");
        let mut extra = values.clone();
        extra.push(("x".into(), "1".into()));
        assert!(t.fill(&extra).unwrap_err().rule.contains("not a variable"));
        // Voice: each value within its limit, the whole TtsParam JSON not.
        let mut tts = aliyun();
        tts.provider = Provider::AliyunVoice;
        tts.text = "${name}您好，${policy}${deadline}${code}".into();
        tts.variables[3].max_chars = Some(500);
        let mut long = values.clone();
        long[3].1 = "A".repeat(200);
        assert_eq!(
            tts.fill(&long).unwrap_err().rule,
            "TtsParam would have 266 characters; Alibaba takes fewer than 250"
        );
        long[3].1 = "A".repeat(150);
        assert!(tts.fill(&long).is_ok());
    }

    #[test]
    fn bound_content_round_trips() {
        let b = BoundContent {
            provider: Provider::TencentSms,
            template: "1843021".into(),
            sign_name: Some("人社服务".into()),
            params: vec![
                ("1".into(), "稳岗返还".into()),
                ("2".into(), "2025-12-31".into()),
            ],
            text: "【人社服务】您可能符合稳岗返还申领条件，请于2025-12-31前申请。".into(),
        };
        let c = b.to_content();
        assert!(c.starts_with(BOUND_PREFIX));
        assert_eq!(BoundContent::from_content(&c), Some(b.clone()));
        assert_eq!(b.values(), vec!["稳岗返还", "2025-12-31"]);
        assert_eq!(display_text(&c), b.text);
        assert_eq!(sms_segments("另一个签名", &c), 1);
        let long = BoundContent {
            text: format!("【人社服务】{}", "政".repeat(65)),
            ..b.clone()
        };
        assert_eq!(sms_segments("", &long.to_content()), 2);
        assert_eq!(sms_segments("人社服务", &"政".repeat(64)), 1);
        assert_eq!(display_text("free text"), "free text");
        assert_eq!(BoundContent::from_content("{\"bound\": 1}"), None);
        assert_eq!(
            params_json(&b.params).to_string(),
            r#"{"1":"稳岗返还","2":"2025-12-31"}"#
        );
    }

    #[test]
    fn placeholders_per_provider() {
        assert_eq!(
            placeholders(Provider::AliyunSms, "a${x}b${y_1}c${}d${ z}"),
            vec!["x", "y_1"]
        );
        assert_eq!(
            placeholders(Provider::TencentSms, "{1}与{2}{x y}"),
            vec!["1", "2"]
        );
        assert_eq!(
            placeholders(
                Provider::Wechat,
                "事项：{{thing1.DATA}}\n时间：{{time2.DATA}}"
            ),
            vec!["thing1", "time2"]
        );
    }
}
