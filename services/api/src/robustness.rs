//! Property tests of the parsers a stranger or an importer feeds: every callback body
//! parser and the NDJSON / CSV import parsers. None may panic; every refusal is a clear
//! error with a stable code.

use crate::import::{self, MAX_LINE_BYTES};
use crate::routes::operations::{
    is_unsubscribe_reply, parse_aliyun_sms_up, parse_tencent_sms_reply,
};
use connectors::receipts;
use proptest::prelude::*;

/// Bodies shaped like the providers' JSON (arrays of objects with their keys and odd
/// values), plus arbitrary bytes.
fn json_body() -> impl Strategy<Value = Vec<u8>> {
    let key = prop::sample::select(vec![
        "phone_number",
        "content",
        "sign_name",
        "mobile",
        "text",
        "sign",
        "biz_id",
        "out_id",
        "success",
        "err_code",
        "err_msg",
        "sid",
        "report_status",
        "errmsg",
        "CallId",
        "OutId",
        "StatusCode",
        "Dtmf",
        "status_code",
        "call_id",
        "out_id",
        "dtmf",
        "x",
    ]);
    let value = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "\\PC{0,20}".prop_map(serde_json::Value::from),
        Just(serde_json::json!(["TD"])),
        Just(serde_json::json!({"a": 1})),
    ];
    let object = prop::collection::btree_map(key, value, 0..6).prop_map(|m| {
        serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    });
    prop_oneof![
        prop::collection::vec(object.clone(), 0..4)
            .prop_map(|v| serde_json::Value::Array(v).to_string().into_bytes()),
        object.prop_map(|o| o.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..200),
        "\\PC{0,100}".prop_map(String::into_bytes),
    ]
}

/// WeChat-like XML with arbitrary pieces.
fn xml_body() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just("<xml>".to_string()),
        Just("</xml>".to_string()),
        Just("<MsgType><![CDATA[event]]></MsgType>".to_string()),
        Just("<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>".to_string()),
        Just("<Event><![CDATA[subscribe_msg_sent_event]]></Event>".to_string()),
        Just("<MsgID>12</MsgID>".to_string()),
        Just("<Status><![CDATA[success]]></Status>".to_string()),
        Just("<List><MsgID>1</MsgID><ErrorCode>0</ErrorCode></List>".to_string()),
        Just("<![CDATA[".to_string()),
        Just("]]>".to_string()),
        Just("<!DOCTYPE x [<!ENTITY a \"aaaa\">]>".to_string()),
        Just("&a;&amp;&#x0;".to_string()),
        "\\PC{0,10}",
    ];
    prop::collection::vec(piece, 0..10).prop_map(|v| v.concat().into_bytes())
}

/// Subject lines: valid ones, broken JSON, odd bytes, and very long lines.
fn ndjson_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(
            br#"{"id":"11010519491231002X","kind":"person","name":"x","mobile":"13800000000"}"#
                .to_vec()
        ),
        Just(
            br#"{"id":"9144030071526726XG","kind":"enterprise","attributes":{"employees":3}}"#
                .to_vec()
        ),
        Just(
            "{\"id\":\"1101051949123100\u{e9}\",\"kind\":\"person\"}"
                .as_bytes()
                .to_vec()
        ),
        "\\PC{0,40}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..40),
        (1usize..3).prop_map(|k| vec![b'x'; MAX_LINE_BYTES + k]),
        Just(Vec::new()),
    ]
    .prop_map(|mut v| {
        v.retain(|b| *b != b'\n');
        v
    })
}

fn csv_text() -> impl Strategy<Value = String> {
    let row = prop_oneof![
        Just("11010519491231002X,person,张三,13800000000,,3".to_string()),
        Just("9144030071526726XG,enterprise,,,,a|b".to_string()),
        Just("1101051949123100é,person,,,,".to_string()),
        Just("\"unterminated,person".to_string()),
        "[a-z0-9,\"é|. ]{0,30}",
        "\\PC{0,30}",
    ];
    (
        prop_oneof![
            Just("id,kind,name,mobile,wechat_openid,employees".to_string()),
            Just("id,kind".to_string()),
            "\\PC{0,20}",
        ],
        prop::collection::vec(row, 0..6),
    )
        .prop_map(|(h, rows)| {
            let mut s = h;
            for r in rows {
                s.push('\n');
                s.push_str(&r);
            }
            s
        })
}

/// The codes an import rejection may start with.
const IMPORT_CODES: &[&str] = &[
    "invalid_encoding",
    "invalid_json",
    "line_too_long",
    "invalid_csv",
    "invalid_header",
    "invalid_resident_id",
    "invalid_credit_code",
    "invalid_mobile",
    "invalid_openid",
    "invalid_kind",
    "invalid_attribute",
    "invalid_subject",
];

fn has_code(error: &str) -> bool {
    IMPORT_CODES
        .iter()
        .any(|c| error.starts_with(&format!("{c}: ")))
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn receipt_parsers_never_panic(body in json_body()) {
        for parsed in [
            receipts::parse_aliyun_sms_report(&body),
            receipts::parse_aliyun_voice_report(&body),
            receipts::parse_tencent_sms_report(&body),
        ] {
            if let Err(e) = parsed {
                prop_assert!(e.to_string().starts_with("invalid_receipt: "), "{}", e);
            }
        }
    }

    #[test]
    fn wechat_event_parser_never_panics(body in xml_body()) {
        if let Err(e) = receipts::parse_wechat_event(&body) {
            prop_assert!(e.to_string().starts_with("invalid_receipt: "), "{}", e);
        }
    }

    #[test]
    fn sms_reply_parsers_never_panic(body in json_body()) {
        for parsed in [parse_aliyun_sms_up(&body), parse_tencent_sms_reply(&body)] {
            match parsed {
                Ok(replies) => for r in replies {
                    let _ = is_unsubscribe_reply(&r.text);
                },
                Err(e) => prop_assert!(e.starts_with("invalid_json: "), "{}", e),
            }
        }
    }

    #[test]
    fn ndjson_import_accounts_for_every_line(lines in prop::collection::vec(ndjson_line(), 0..8)) {
        let body: Vec<u8> = lines.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect();
        let mut got = Vec::new();
        let report = block_on(import::parse_ndjson(&body[..], &Default::default(), &mut got)).expect("reads");
        let blank = lines
            .iter()
            .filter(|l| std::str::from_utf8(l).is_ok_and(|t| t.trim().is_empty()))
            .count() as u64;
        prop_assert_eq!(report.accepted as usize, got.len());
        prop_assert_eq!(report.accepted + report.rejected_count + blank, lines.len() as u64);
        for r in &report.rejected {
            prop_assert!(has_code(&r.error), "{}", r.error);
            prop_assert!(r.line >= 1 && r.line <= lines.len() as u64);
        }
    }

    #[test]
    fn csv_import_never_panics_and_says_why(text in csv_text()) {
        let mut got = Vec::new();
        let report = block_on(import::parse_csv(text.as_bytes(), &Default::default(), &mut got)).expect("reads");
        prop_assert_eq!(report.accepted as usize, got.len());
        for r in &report.rejected {
            prop_assert!(has_code(&r.error), "{}", r.error);
        }
    }
}

#[test]
fn an_overlong_ndjson_line_is_refused_and_the_next_still_counts() {
    let mut body = vec![b'{'; MAX_LINE_BYTES * 3];
    body.push(b'\n');
    body.extend_from_slice(br#"{"id":"11010519491231002X","kind":"person"}"#);
    let mut got = Vec::new();
    let report = block_on(import::parse_ndjson(
        &body[..],
        &Default::default(),
        &mut got,
    ))
    .unwrap();
    assert_eq!(report.accepted, 1);
    assert_eq!(report.rejected_count, 1);
    assert_eq!(report.rejected[0].line, 1);
    assert!(report.rejected[0].error.starts_with("line_too_long: "));
    assert_eq!(got[0].id.as_str(), "11010519491231002X");
}

#[test]
fn imports_check_the_types_the_catalogue_declares_line_by_line() {
    use domain::attribute::{AttrType, AttributeDef, Catalogue};
    let def = |name: &str, label: &str, ty| AttributeDef {
        name: name.into(),
        label: label.into(),
        ty,
        unit: String::new(),
        values: Default::default(),
        personal: false,
    };
    let catalogue = Catalogue::new([
        def("insured_months", "参保月数", AttrType::Integer),
        def("skills", "职业技能等级证书", AttrType::List),
        def("street", "街道代码", AttrType::String),
    ]);
    let body = concat!(
        r#"{"id":"11010519491231002X","kind":"person","attributes":{"insured_months":12}}"#,
        "\n",
        r#"{"id":"11010519491231002X","kind":"person","attributes":{"insured_months":"abc"}}"#,
        "\n",
        r#"{"id":"11010519491231002X","kind":"person","attributes":{"undeclared":"x","skills":"焊工"}}"#,
        "\n",
    );
    let mut got = Vec::new();
    let report = block_on(import::parse_ndjson(body.as_bytes(), &catalogue, &mut got)).unwrap();
    assert_eq!(report.accepted, 1, "{:?}", report.rejected);
    assert_eq!(report.rejected.len(), 2);
    assert_eq!(report.rejected[0].line, 2);
    assert_eq!(
        report.rejected[0].error,
        "invalid_attribute: attribute insured_months (参保月数) must be a whole number; got \"abc\""
    );
    assert_eq!(report.rejected[1].line, 3);
    assert!(report.rejected[1]
        .error
        .contains("skills (职业技能等级证书) must be a list"));
    // CSV cells are read loosely: one certificate is a list of one, digits a street code.
    let csv = "id,kind,name,mobile,wechat_openid,insured_months,skills,street\n\
               11010519491231002X,person,,,,12,焊工,310115\n\
               11010519491231002X,person,,,,1.5,,\n";
    let mut got = Vec::new();
    let report = block_on(import::parse_csv(csv.as_bytes(), &catalogue, &mut got)).unwrap();
    assert_eq!(report.accepted, 1, "{:?}", report.rejected);
    assert_eq!(report.rejected[0].line, 3);
    assert!(report.rejected[0]
        .error
        .starts_with("invalid_attribute: attribute insured_months"));
    let a = &got[0].attributes;
    assert_eq!(a["skills"], domain::AttrValue::List(vec!["焊工".into()]));
    assert_eq!(a["street"], domain::AttrValue::Str("310115".into()));
}
