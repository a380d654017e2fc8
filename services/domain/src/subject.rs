//! Subjects: residents (keyed by resident ID number) and enterprises (keyed by unified
//! social credit code), with typed attributes and contact points.

use crate::ids::{CreditCode, IdError, MobileNumber, OpenId, ResidentId};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    Person,
    Enterprise,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Person => "person",
            SubjectKind::Enterprise => "enterprise",
        }
    }
    pub fn parse(s: &str) -> Result<Self, SubjectError> {
        match s {
            "person" => Ok(Self::Person),
            "enterprise" => Ok(Self::Enterprise),
            other => Err(SubjectError::Kind(other.to_string())),
        }
    }
}

/// The key of a subject: a resident ID for a person, a credit code for an enterprise.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubjectId {
    Person(ResidentId),
    Enterprise(CreditCode),
}

impl SubjectId {
    pub fn parse(kind: SubjectKind, id: &str) -> Result<Self, IdError> {
        Ok(match kind {
            SubjectKind::Person => Self::Person(ResidentId::parse(id)?),
            SubjectKind::Enterprise => Self::Enterprise(CreditCode::parse(id)?),
        })
    }
    pub fn as_str(&self) -> &str {
        match self {
            Self::Person(r) => r.as_str(),
            Self::Enterprise(c) => c.as_str(),
        }
    }
    pub fn kind(&self) -> SubjectKind {
        match self {
            Self::Person(_) => SubjectKind::Person,
            Self::Enterprise(_) => SubjectKind::Enterprise,
        }
    }
    /// Masked when personal (resident IDs); credit codes are public.
    pub fn masked(&self) -> String {
        match self {
            Self::Person(r) => r.masked(),
            Self::Enterprise(c) => c.as_str().to_string(),
        }
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An attribute value: string, number, boolean or list of strings. Dates are
/// `YYYY-MM-DD` strings and compare as strings (which orders them correctly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<String>),
}

impl AttrValue {
    /// From JSON as it arrives in an import or API call; `null` means "absent".
    pub fn from_json(v: &serde_json::Value) -> Result<Option<Self>, SubjectError> {
        use serde_json::Value as J;
        Ok(Some(match v {
            J::Null => return Ok(None),
            J::Bool(b) => Self::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Self::Int(i),
                None => Self::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Self::Str(s.clone()),
            J::Array(items) => Self::List(
                items
                    .iter()
                    .map(|i| match i {
                        J::String(s) => Ok(s.clone()),
                        other => Err(SubjectError::Attribute(format!(
                            "lists hold strings only, got {other}"
                        ))),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            J::Object(_) => {
                return Err(SubjectError::Attribute(
                    "objects are not attribute values".into(),
                ))
            }
        }))
    }

    /// From a CSV cell: empty is absent, integers and decimals become numbers,
    /// `true`/`false` booleans, `a|b|c` a list, anything else a string.
    pub fn from_csv_cell(cell: &str) -> Option<Self> {
        let cell = cell.trim();
        if cell.is_empty() {
            return None;
        }
        if let Ok(i) = cell.parse::<i64>() {
            return Some(Self::Int(i));
        }
        if cell.contains('.') {
            if let Ok(f) = cell.parse::<f64>() {
                if f.is_finite() {
                    return Some(Self::Float(f));
                }
            }
        }
        match cell {
            "true" => return Some(Self::Bool(true)),
            "false" => return Some(Self::Bool(false)),
            _ => {}
        }
        if cell.contains('|') {
            return Some(Self::List(
                cell.split('|').map(|s| s.trim().to_string()).collect(),
            ));
        }
        Some(Self::Str(cell.to_string()))
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("plain values serialise")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    #[error("{0}")]
    Id(#[from] IdError),
    #[error("invalid_kind: {0:?} is neither person nor enterprise")]
    Kind(String),
    #[error("invalid_attribute: {0}")]
    Attribute(String),
    #[error("invalid_subject: {0}")]
    Shape(String),
}

impl SubjectError {
    /// The stable error code an API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            SubjectError::Id(IdError::ResidentId(_)) => "invalid_resident_id",
            SubjectError::Id(IdError::CreditCode(_)) => "invalid_credit_code",
            SubjectError::Id(IdError::Mobile(_)) => "invalid_mobile",
            SubjectError::Id(IdError::OpenId(_)) => "invalid_openid",
            SubjectError::Kind(_) => "invalid_kind",
            SubjectError::Attribute(_) => "invalid_attribute",
            SubjectError::Shape(_) => "invalid_subject",
        }
    }
}

/// `[a-z_][a-z0-9_]*`, at most 64 characters: the names of attributes and tags.
pub fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Attribute names are identifiers a rule can use: `[a-z_][a-z0-9_]*`, not reserved.
pub fn check_attribute_name(name: &str) -> Result<(), SubjectError> {
    if !is_identifier(name) {
        return Err(SubjectError::Attribute(format!(
            "attribute name {name:?} must match [a-z_][a-z0-9_]*"
        )));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(SubjectError::Attribute(format!(
            "attribute name {name:?} is reserved"
        )));
    }
    Ok(())
}

/// Names a rule resolves itself; subjects cannot carry attributes by these names.
pub const RESERVED_NAMES: &[&str] = &[
    "id",
    "kind",
    "name",
    "mobile",
    "wechat_openid",
    "age",
    "sex",
    "tags",
    "attrs",
    "params",
    "true",
    "false",
    "null",
    "in",
    "has",
];

/// A subject as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    pub id: SubjectId,
    pub name: String,
    pub mobile: Option<MobileNumber>,
    pub wechat_openid: Option<OpenId>,
    pub attributes: BTreeMap<String, AttrValue>,
}

/// The JSON shape of a subject in the API and in NDJSON imports.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubjectDoc {
    pub id: String,
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_openid: Option<String>,
    #[serde(default)]
    #[schema(value_type = std::collections::BTreeMap<String, serde_json::Value>)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl Subject {
    pub fn kind(&self) -> SubjectKind {
        self.id.kind()
    }

    /// Parses the outside shape; the first problem found is the error.
    pub fn from_doc(doc: SubjectDoc) -> Result<Self, SubjectError> {
        let kind = SubjectKind::parse(&doc.kind)?;
        let id = SubjectId::parse(kind, &doc.id)?;
        let mobile = match doc.mobile.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(m) => Some(MobileNumber::parse(m)?),
        };
        let wechat_openid = match doc.wechat_openid.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(o) => Some(OpenId::parse(o)?),
        };
        let name = doc.name.trim().to_string();
        if name.chars().count() > 200 {
            return Err(SubjectError::Shape(
                "name is longer than 200 characters".into(),
            ));
        }
        let mut attributes = BTreeMap::new();
        for (k, v) in &doc.attributes {
            check_attribute_name(k)?;
            if let Some(v) =
                AttrValue::from_json(v).map_err(|e| SubjectError::Attribute(format!("{k}: {e}")))?
            {
                attributes.insert(k.clone(), v);
            }
        }
        Ok(Self {
            id,
            name,
            mobile,
            wechat_openid,
            attributes,
        })
    }

    pub fn to_doc(&self) -> SubjectDoc {
        SubjectDoc {
            id: self.id.as_str().to_string(),
            kind: self.kind().as_str().to_string(),
            name: self.name.clone(),
            mobile: self.mobile.as_ref().map(|m| m.as_str().to_string()),
            wechat_openid: self.wechat_openid.as_ref().map(|o| o.as_str().to_string()),
            attributes: self
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        }
    }

    /// The masked shape for screens whose viewer may not see personal data.
    pub fn to_masked_doc(&self) -> SubjectDoc {
        let mut doc = self.to_doc();
        doc.id = self.id.masked();
        doc.mobile = self.mobile.as_ref().map(MobileNumber::masked);
        doc.wechat_openid = self.wechat_openid.as_ref().map(OpenId::masked);
        if self.kind() == SubjectKind::Person {
            doc.name = crate::ids::mask_any(&self.name);
        }
        doc
    }
}

/// What a rule sees of one subject on one evaluation date: its attributes, the derived
/// `age` and `sex` of a person, `kind`, and its tags.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub subject: &'a Subject,
    pub tags: &'a [String],
    pub today: NaiveDate,
}

/// A value as a rule sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum FactValue<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    OwnedStr(String),
    List(Vec<&'a str>),
}

impl<'a> Facts<'a> {
    pub fn new(subject: &'a Subject, tags: &'a [String], today: NaiveDate) -> Self {
        Self {
            subject,
            tags,
            today,
        }
    }

    /// Looks up an identifier: `kind`, `age`, `sex`, `tags`, or an attribute.
    /// `None` when the subject lacks it (enterprises have no age or sex).
    pub fn get(&self, name: &str) -> Option<FactValue<'a>> {
        match name {
            "kind" => Some(FactValue::Str(self.subject.kind().as_str())),
            "age" => match &self.subject.id {
                SubjectId::Person(r) => Some(FactValue::Int(r.age_on(self.today))),
                SubjectId::Enterprise(_) => None,
            },
            "sex" => match &self.subject.id {
                SubjectId::Person(r) => Some(FactValue::Str(r.sex().as_str())),
                SubjectId::Enterprise(_) => None,
            },
            "tags" => Some(FactValue::List(
                self.tags.iter().map(String::as_str).collect(),
            )),
            _ => self.attr(name),
        }
    }

    /// Looks up an attribute only (`attrs.<name>`).
    pub fn attr(&self, name: &str) -> Option<FactValue<'a>> {
        self.subject.attributes.get(name).map(|v| match v {
            AttrValue::Bool(b) => FactValue::Bool(*b),
            AttrValue::Int(i) => FactValue::Int(*i),
            AttrValue::Float(f) => FactValue::Float(*f),
            AttrValue::Str(s) => FactValue::Str(s.as_str()),
            AttrValue::List(l) => FactValue::List(l.iter().map(String::as_str).collect()),
        })
    }

    /// True when the identifier names something personal whose value must be masked
    /// in explanations shown to others.
    pub fn is_personal(name: &str) -> bool {
        matches!(name, "id" | "name" | "mobile" | "wechat_openid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(json: &str) -> SubjectDoc {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn parses_contract_example() {
        let s = Subject::from_doc(doc(r#"{"id": "11010519491231002X", "kind": "person", "name": "张伟",
            "mobile": "+8613812345678", "wechat_openid": "oX1a2b3c4d5e6f7g8h9i0jklmnop",
            "attributes": {"district": "浦东新区", "graduation_year": 2025, "skills": ["a","b"], "x": null, "score": 1.5}}"#))
        .unwrap();
        assert_eq!(s.mobile.as_ref().unwrap().as_str(), "13812345678");
        assert_eq!(s.attributes.len(), 4);
        assert_eq!(s.attributes["graduation_year"], AttrValue::Int(2025));
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let tags = vec!["t1".to_string()];
        let f = Facts::new(&s, &tags, today);
        assert_eq!(f.get("age"), Some(FactValue::Int(76)));
        assert_eq!(f.get("sex"), Some(FactValue::Str("female")));
        assert_eq!(f.get("kind"), Some(FactValue::Str("person")));
        assert_eq!(f.get("missing"), None);
        let masked = s.to_masked_doc();
        assert_eq!(masked.mobile.as_deref(), Some("138****5678"));
        assert_eq!(masked.id, "110105********002X");
    }

    #[test]
    fn rejects_with_codes() {
        let e = Subject::from_doc(doc(r#"{"id": "9144030071526726XG", "kind": "company"}"#))
            .unwrap_err();
        assert!(e.to_string().starts_with("invalid_kind"));
        let e = Subject::from_doc(doc(
            r#"{"id": "9144030071526726XG", "kind": "enterprise", "mobile": "123"}"#,
        ))
        .unwrap_err();
        assert!(e.to_string().starts_with("invalid_mobile"));
        let e = Subject::from_doc(doc(
            r#"{"id": "9144030071526726XG", "kind": "enterprise", "attributes": {"Bad Name": 1}}"#,
        ))
        .unwrap_err();
        assert!(e.to_string().starts_with("invalid_attribute"));
        let e = Subject::from_doc(doc(
            r#"{"id": "9144030071526726XG", "kind": "enterprise", "attributes": {"age": 1}}"#,
        ))
        .unwrap_err();
        assert!(e.to_string().contains("reserved"));
        let ent = Subject::from_doc(doc(r#"{"id": "9144030071526726XG", "kind": "enterprise"}"#))
            .unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        assert_eq!(Facts::new(&ent, &[], today).get("age"), None);
    }

    #[test]
    fn csv_cells() {
        assert_eq!(AttrValue::from_csv_cell(""), None);
        assert_eq!(AttrValue::from_csv_cell("42"), Some(AttrValue::Int(42)));
        assert_eq!(AttrValue::from_csv_cell("4.5"), Some(AttrValue::Float(4.5)));
        assert_eq!(
            AttrValue::from_csv_cell("true"),
            Some(AttrValue::Bool(true))
        );
        assert_eq!(
            AttrValue::from_csv_cell("a|b"),
            Some(AttrValue::List(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            AttrValue::from_csv_cell("2025-06-30"),
            Some(AttrValue::Str("2025-06-30".into()))
        );
    }
}
