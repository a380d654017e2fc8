//! Valid identifiers and subjects for tests: check digits computed, not hard-coded.

use serde_json::{json, Value};

/// A valid resident ID number: Shanghai address code, birth date (`YYYYMMDD`), sequence.
pub fn resident_id(birth: &str, seq: u32) -> String {
    let first = format!("310115{birth}{:03}", seq % 1000);
    let c = domain::ids::resident_id_check_char(&first).unwrap();
    format!("{first}{c}")
}

/// A valid unified social credit code from a number.
pub fn credit_code(n: u32) -> String {
    let first = format!("91310115{:08}A", n);
    let c = domain::ids::credit_code_check_char(&first).unwrap();
    format!("{first}{c}")
}

pub fn mobile(n: u32) -> String {
    format!("139{:08}", n)
}

pub fn openid(n: u32) -> String {
    format!("oTest{:023}", n)
}

/// A person as the API takes it.
pub fn person(
    id: &str,
    name: &str,
    mobile: Option<String>,
    openid: Option<String>,
    attrs: Value,
) -> Value {
    let mut v = json!({"id": id, "kind": "person", "name": name, "attributes": attrs});
    if let Some(m) = mobile {
        v["mobile"] = m.into();
    }
    if let Some(o) = openid {
        v["wechat_openid"] = o.into();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identifiers_parse() {
        let id = resident_id("19900307", 451);
        assert!(domain::ids::ResidentId::parse(&id).is_ok(), "{id}");
        let code = credit_code(42);
        assert!(domain::ids::CreditCode::parse(&code).is_ok(), "{code}");
        assert!(domain::ids::MobileNumber::parse(&mobile(7)).is_ok());
        assert_eq!(
            person(&id, "张伟", None, Some(openid(1)), json!({}))["kind"],
            "person"
        );
    }
}
