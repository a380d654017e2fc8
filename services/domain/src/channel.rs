//! Delivery channels and which subjects each can reach.

use crate::subject::Subject;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Wechat,
    Sms,
    Hotline,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Wechat, Channel::Sms, Channel::Hotline];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Wechat => "wechat",
            Channel::Sms => "sms",
            Channel::Hotline => "hotline",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// WeChat needs an openid; SMS and the hotline need a mobile number.
    pub fn reaches(self, subject: &Subject) -> bool {
        match self {
            Channel::Wechat => subject.wechat_openid.is_some(),
            Channel::Sms | Channel::Hotline => subject.mobile.is_some(),
        }
    }

    /// The first channel of `plan` that reaches `subject`, if any.
    pub fn first_reaching(plan: &[Channel], subject: &Subject) -> Option<Channel> {
        plan.iter().copied().find(|c| c.reaches(subject))
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
