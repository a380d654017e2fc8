//! The attribute catalogue: for each attribute name, its Chinese label, its type, its
//! unit, the labels of its values (`employment_status = registered_unemployed` →
//! 登记失业) and whether it is personal. Explanations in plain words
//! ([`crate::rule::Rule::explain_in_words`]) read it, and imports check subjects'
//! attributes against the types it declares ([`Catalogue::conform`]).
//!
//! An attribute the catalogue does not declare is still accepted everywhere (attributes
//! are added by imports); it is shown by its name and its raw values.

use crate::subject::{AttrValue, Subject};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The longest label, unit or value label, in characters.
const MAX_LABEL: usize = 100;
/// The most value labels one attribute may have.
const MAX_VALUES: usize = 1_000;

/// The type an attribute's values must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AttrType {
    /// Text (`浦东新区`, `registered_unemployed`).
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A `YYYY-MM-DD` date, stored as text.
    Date,
    /// A list of texts.
    List,
}

impl AttrType {
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Integer => "integer",
            AttrType::Number => "number",
            AttrType::Boolean => "boolean",
            AttrType::Date => "date",
            AttrType::List => "list",
        }
    }

    /// In words, for error messages.
    fn described(self) -> &'static str {
        match self {
            AttrType::String => "text",
            AttrType::Integer => "a whole number",
            AttrType::Number => "a number",
            AttrType::Boolean => "true or false",
            AttrType::Date => "a date YYYY-MM-DD",
            AttrType::List => "a list of texts",
        }
    }
}

/// One attribute as the catalogue declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttributeDef {
    pub name: String,
    /// The Chinese label residents read (`参保月数`).
    pub label: String,
    #[serde(rename = "type")]
    pub ty: AttrType,
    /// What a number counts (`个月`, `人`, `%`, `元`); empty for none.
    #[serde(default)]
    pub unit: String,
    /// Labels of values (`registered_unemployed` → `登记失业`; for a boolean, the keys
    /// `true` and `false` give whole phrases such as `无社会保险费欠费`).
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// Personal data: its values are never shown in explanations.
    #[serde(default)]
    pub personal: bool,
}

/// Why an attribute definition or a subject's value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AttributeError(pub String);

impl AttributeDef {
    /// A definition that is not personal, with value labels as `(value, label)` pairs.
    pub fn new(name: &str, label: &str, ty: AttrType, unit: &str, values: &[(&str, &str)]) -> Self {
        AttributeDef {
            name: name.into(),
            label: label.into(),
            ty,
            unit: unit.into(),
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            personal: false,
        }
    }

    /// Checks the name (an attribute name, not reserved), the label (not empty) and the
    /// lengths.
    pub fn check(self) -> Result<AttributeDef, AttributeError> {
        crate::subject::check_attribute_name(&self.name)
            .map_err(|e| AttributeError(e.to_string()))?;
        if self.label.trim().is_empty() {
            return Err(AttributeError("label must not be empty".into()));
        }
        let texts = [("label", &self.label), ("unit", &self.unit)];
        let labels = self.values.iter().map(|(k, v)| (k.as_str(), v));
        for (what, text) in texts.into_iter().chain(labels) {
            if text.chars().count() > MAX_LABEL {
                return Err(AttributeError(format!(
                    "{what}: at most {MAX_LABEL} characters"
                )));
            }
        }
        if self.values.len() > MAX_VALUES {
            return Err(AttributeError(format!("at most {MAX_VALUES} value labels")));
        }
        if self.values.values().any(|l| l.trim().is_empty()) {
            return Err(AttributeError("a value label must not be empty".into()));
        }
        Ok(self)
    }

    /// The label of a value (the value itself when it has none).
    pub fn value_label<'a>(&'a self, raw: &'a str) -> &'a str {
        self.values.get(raw).map_or(raw, String::as_str)
    }

    /// `value` as this attribute's type, or why it is not. A CSV cell is read loosely
    /// first (`lenient`): a single text for a list is a list of one, and a number or
    /// `true`/`false` for a text or date attribute is that text.
    pub fn conform(&self, value: AttrValue, lenient: bool) -> Result<AttrValue, AttributeError> {
        use AttrValue as V;
        let value = match (self.ty, value, lenient) {
            (AttrType::List, V::Str(s), true) => V::List(vec![s]),
            (AttrType::String | AttrType::Date, V::Int(i), true) => V::Str(i.to_string()),
            (AttrType::String | AttrType::Date, V::Float(x), true) => V::Str(x.to_string()),
            (AttrType::String, V::Bool(b), true) => V::Str(b.to_string()),
            (AttrType::Number, V::Int(i), _) => V::Int(i),
            (_, v, _) => v,
        };
        let ok = match (self.ty, &value) {
            (AttrType::String, V::Str(_))
            | (AttrType::Integer, V::Int(_))
            | (AttrType::Number, V::Int(_) | V::Float(_))
            | (AttrType::Boolean, V::Bool(_))
            | (AttrType::List, V::List(_)) => true,
            (AttrType::Date, V::Str(s)) => is_date(s),
            _ => false,
        };
        if ok {
            return Ok(value);
        }
        Err(AttributeError(format!(
            "attribute {} ({}) must be {}; got {}",
            self.name,
            self.label,
            self.ty.described(),
            value.to_json()
        )))
    }
}

/// `YYYY-MM-DD`, a real date.
fn is_date(s: &str) -> bool {
    s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

/// Every declared attribute, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalogue {
    defs: BTreeMap<String, AttributeDef>,
}

impl Catalogue {
    pub fn new(defs: impl IntoIterator<Item = AttributeDef>) -> Self {
        Self {
            defs: defs.into_iter().map(|d| (d.name.clone(), d)).collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&AttributeDef> {
        self.defs.get(name)
    }

    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &AttributeDef> {
        self.defs.values()
    }

    /// The subject with each declared attribute in its declared type (see
    /// [`AttributeDef::conform`]); the first attribute that does not fit is refused.
    /// Undeclared attributes pass as they are.
    pub fn conform(&self, mut subject: Subject, lenient: bool) -> Result<Subject, AttributeError> {
        if self.defs.is_empty() {
            return Ok(subject);
        }
        let attributes = std::mem::take(&mut subject.attributes);
        for (name, value) in attributes {
            let value = match self.defs.get(&name) {
                Some(def) => def.conform(value, lenient)?,
                None => value,
            };
            subject.attributes.insert(name, value);
        }
        Ok(subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str, ty: AttrType) -> AttributeDef {
        AttributeDef::new(name, "标签", ty, "", &[])
    }

    #[test]
    fn values_must_have_the_declared_type() {
        let months = def("insured_months", AttrType::Integer);
        assert_eq!(
            months.conform(AttrValue::Int(3), false),
            Ok(AttrValue::Int(3))
        );
        let e = months
            .conform(AttrValue::Str("abc".into()), false)
            .unwrap_err();
        assert_eq!(
            e.0,
            "attribute insured_months (标签) must be a whole number; got \"abc\""
        );
        assert!(months.conform(AttrValue::Float(1.5), false).is_err());
        let rate = def("layoff_rate", AttrType::Number);
        assert!(rate.conform(AttrValue::Int(3), false).is_ok());
        assert!(rate.conform(AttrValue::Bool(true), false).is_err());
        let date = def("established", AttrType::Date);
        assert!(date
            .conform(AttrValue::Str("2024-02-29".into()), false)
            .is_ok());
        assert!(date
            .conform(AttrValue::Str("2023-02-29".into()), false)
            .is_err());
        let flag = def("disability", AttrType::Boolean);
        assert!(flag.conform(AttrValue::Str("yes".into()), true).is_err());
    }

    #[test]
    fn csv_cells_are_read_loosely() {
        let skills = def("skills", AttrType::List);
        assert_eq!(
            skills.conform(AttrValue::Str("焊工".into()), true),
            Ok(AttrValue::List(vec!["焊工".into()]))
        );
        assert!(skills
            .conform(AttrValue::Str("焊工".into()), false)
            .is_err());
        let code = def("street_code", AttrType::String);
        assert_eq!(
            code.conform(AttrValue::Int(310115), true),
            Ok(AttrValue::Str("310115".into()))
        );
        assert!(code.conform(AttrValue::Int(310115), false).is_err());
    }

    #[test]
    fn definitions_are_checked() {
        assert!(def("age", AttrType::Integer).check().is_err(), "reserved");
        assert!(def("Bad", AttrType::Integer).check().is_err());
        let mut d = def("district", AttrType::String);
        d.label = " ".into();
        assert!(d.check().is_err());
        let mut d = def("district", AttrType::String);
        d.values.insert("x".into(), String::new());
        assert!(d.check().is_err());
        assert!(def("district", AttrType::String).check().is_ok());
    }
}
