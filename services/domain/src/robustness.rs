//! Property tests of everything that reads text from outside: identifier validators,
//! subject validation and the template check. None may panic, whatever the input; every
//! refusal names its stable code.

use crate::channel::Channel;
use crate::ids::{self, CreditCode, MobileNumber, OpenId, ResidentId};
use crate::subject::{Subject, SubjectDoc};
use crate::template::{RenderContext, Template};
use proptest::prelude::*;

/// Text shaped like an identifier with a twist: digits and letters, then any character
/// (non-ASCII included), at lengths around 18.
fn id_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{15,19}\\PC{0,3}",
        "[0-9A-Z]{16,18}\\PC{0,2}",
        "\\PC{0,25}",
        "[0-9]{17}[xX0-9é中]",
        "[0-9]{16}[é中😀]",
        " *[+0-9 -]{8,20} *",
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..3)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn subject_doc() -> impl Strategy<Value = SubjectDoc> {
    (
        id_like(),
        prop_oneof![
            Just("person".to_string()),
            Just("enterprise".to_string()),
            "\\PC{0,8}"
        ],
        "\\PC{0,30}",
        prop::option::of(id_like()),
        prop::option::of("[A-Za-z0-9_\\-é ]{0,70}"),
        prop::collection::btree_map("\\PC{0,8}|[a-z_]{1,8}", json_value(), 0..4),
    )
        .prop_map(|(id, kind, name, mobile, openid, attrs)| SubjectDoc {
            id,
            kind,
            name,
            mobile,
            wechat_openid: openid,
            attributes: attrs.into_iter().collect(),
        })
}

/// Template-like text: markup pieces, known and unknown variables, filters, loops.
fn template_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{{ subject.name }}".to_string()),
        Just("{{ policy.title }}".to_string()),
        Just("{{ benefit | yuan }}".to_string()),
        Just("{{ link }}".to_string()),
        Just("{% for c in policy.summary %}{{ c }}{% endfor %}".to_string()),
        Just("{% for s in subject.skills %}{{ s }}{% endfor %}".to_string()),
        Just("{% if benefit %}".to_string()),
        Just("{% endif %}".to_string()),
        Just("{{ ".to_string()),
        Just(" }}".to_string()),
        Just("{%".to_string()),
        Just("【".to_string()),
        Just("https://x.cn".to_string()),
        Just("{{ subject.name | upper | replace('a', policy.title) }}".to_string()),
        "[a-z_.|(){}% '\"0-9]{0,12}",
        "\\PC{0,10}",
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

fn sample_context(long: usize) -> RenderContext {
    let obj = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
    RenderContext {
        why: String::new(),
        subject: obj(serde_json::json!({
            "name": "张".repeat(long.max(1)),
            "skills": vec!["焊工"; long],
        })),
        policy: crate::template::POLICY_FIELDS
            .iter()
            .map(|f| (f.to_string(), serde_json::Value::from("政".repeat(long))))
            .collect(),
        benefit: Some(1234.5),
        link: "https://push.example.gov.cn/l/x".into(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The panic of issue 10: byte slicing after a length check in bytes.
    #[test]
    fn identifier_validators_never_panic_and_say_why(s in id_like()) {
        match ResidentId::parse(&s) {
            Ok(id) => {
                prop_assert_eq!(id.as_str().len(), 18);
                let _ = (id.birth_date(), id.sex(), id.masked());
            }
            Err(e) => prop_assert!(e.to_string().starts_with("invalid_resident_id: "), "{}", e),
        }
        match CreditCode::parse(&s) {
            Ok(c) => prop_assert_eq!(c.as_str().len(), 18),
            Err(e) => prop_assert!(e.to_string().starts_with("invalid_credit_code: "), "{}", e),
        }
        match MobileNumber::parse(&s) {
            Ok(m) => prop_assert_eq!(m.masked().chars().count(), 11),
            Err(e) => prop_assert!(e.to_string().starts_with("invalid_mobile: "), "{}", e),
        }
        match OpenId::parse(&s) {
            Ok(o) => { let _ = o.masked(); }
            Err(e) => prop_assert!(e.to_string().starts_with("invalid_openid: "), "{}", e),
        }
        let _ = ids::mask_subject_id(&s);
        let _ = ids::mask_any(&s);
    }

    /// A refusal never echoes a whole mobile number (messages reach logs).
    #[test]
    fn mobile_refusals_never_carry_the_number(digits in "1[3-9][0-9]{9}", junk in "[a-zé]") {
        let s = format!("{digits}{junk}");
        let e = MobileNumber::parse(&s).unwrap_err().to_string();
        prop_assert!(!e.contains(&digits), "{}", e);
    }

    #[test]
    fn subject_validation_never_panics_and_names_its_code(doc in subject_doc()) {
        match Subject::from_doc(doc) {
            Ok(s) => {
                let back = Subject::from_doc(s.to_doc());
                prop_assert_eq!(back.as_ref(), Ok(&s));
                let _ = s.to_masked_doc();
            }
            Err(e) => {
                let text = e.to_string();
                prop_assert!(text.starts_with(&format!("{}: ", e.code())), "{}", text);
            }
        }
    }

    #[test]
    fn template_check_never_panics_and_says_why(
        src in template_like(),
        channel in prop::sample::select(vec![Channel::Sms, Channel::Wechat, Channel::Hotline]),
    ) {
        match Template::compile(channel, &src) {
            Ok(t) => {
                let _ = t.render(&sample_context(3));
            }
            Err(e) => prop_assert!(!e.message.trim().is_empty()),
        }
    }
}

#[test]
fn seventeen_digits_and_a_non_ascii_character_are_refused() {
    for s in [
        "11010519491231002é",
        "1101051949123100中",
        "110105194912310😀",
        "11010519491231002😀",
        "9144030071526726X中",
    ] {
        let e = ResidentId::parse(s).unwrap_err().to_string();
        assert!(e.starts_with("invalid_resident_id: "), "{s}: {e}");
        let e = CreditCode::parse(s).unwrap_err().to_string();
        assert!(e.starts_with("invalid_credit_code: "), "{s}: {e}");
    }
}
