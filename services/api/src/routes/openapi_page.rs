//! The OpenAPI description as one self-contained HTML page (no script, no style sheet or
//! font from elsewhere), so people read the API without network: operations grouped by
//! tag with their parameters, bodies and responses, then every schema. Written to
//! `docs/api/openapi.html` (the API's `openapi` test checks it is current).

use serde_json::Value;
use std::fmt::Write;

/// The page for `doc` (the JSON form of an OpenAPI 3.1 document).
pub fn html(doc: &Value) -> String {
    let mut out = String::new();
    let title = text(&doc["info"]["title"]);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{t} API</title>\n<style>{STYLE}</style></head><body>\n\
         <h1>{t} API <small>OpenAPI {v}</small></h1>\n<p>{d}</p>\n\
         <p>Generated from <code>openapi.json</code> beside this page (served at \
         <code>GET /api/v1/openapi.json</code>).</p>\n",
        t = esc(&title),
        v = esc(&text(&doc["openapi"])),
        d = esc(&text(&doc["info"]["description"])),
    );
    let ops = operations(doc);
    out.push_str("<nav><h2>Operations</h2>\n");
    for tag in tags(doc) {
        let _ = writeln!(out, "<h3>{}</h3><p>{}</p><ul>", esc(&tag.0), esc(&tag.1));
        for op in ops.iter().filter(|o| o.tag == tag.0) {
            let _ = writeln!(
                out,
                "<li><a href=\"#{}\"><b class=\"m\">{}</b> {}</a> {}</li>",
                op.anchor(),
                op.method.to_uppercase(),
                esc(&op.path),
                esc(&text(&op.spec["summary"])),
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</nav>\n<main>\n");
    for op in &ops {
        operation(&mut out, op);
    }
    out.push_str("<h2 id=\"schemas\">Schemas</h2>\n");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            let _ = writeln!(
                out,
                "<section id=\"schema-{n}\"><h3>{n}</h3><pre>{}</pre></section>",
                json_with_links(schema),
                n = esc(name),
            );
        }
    }
    out.push_str("<h2 id=\"responses\">Common responses</h2>\n");
    if let Some(responses) = doc["components"]["responses"].as_object() {
        for (name, r) in responses {
            let _ = writeln!(
                out,
                "<section id=\"response-{n}\"><h3>{n}</h3><p>{}</p>{}</section>",
                esc(&text(&r["description"])),
                content(&r["content"]),
                n = esc(name),
            );
        }
    }
    out.push_str("</main></body></html>\n");
    out
}

const STYLE: &str = "body{font-family:sans-serif;max-width:72em;margin:auto;padding:1em;\
line-height:1.4}pre{background:#f4f4f4;padding:.5em;overflow:auto}table{border-collapse:\
collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}\
.m{font-family:monospace}section{border-top:1px solid #ddd;margin-top:1em}small{color:#666}";

struct Op<'a> {
    method: &'static str,
    path: String,
    tag: String,
    spec: &'a Value,
}

impl Op<'_> {
    fn anchor(&self) -> String {
        let mut a = format!("{}-{}", self.method, self.path);
        a.retain(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '/');
        a.replace('/', "_")
    }
}

/// Declared tags with their descriptions, in declaration order.
fn tags(doc: &Value) -> Vec<(String, String)> {
    doc["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|t| (text(&t["name"]), text(&t["description"])))
                .collect()
        })
        .unwrap_or_default()
}

fn operations(doc: &Value) -> Vec<Op<'_>> {
    let mut ops = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in ["get", "put", "post", "delete", "patch"] {
                if let Some(spec) = item.get(method) {
                    ops.push(Op {
                        method,
                        path: path.clone(),
                        tag: text(&spec["tags"][0]),
                        spec,
                    });
                }
            }
        }
    }
    ops
}

fn operation(out: &mut String, op: &Op<'_>) {
    let s = op.spec;
    let _ = write!(
        out,
        "<section id=\"{}\"><h3><span class=\"m\">{} {}</span></h3>\n<p><b>{}</b></p>\n",
        op.anchor(),
        op.method.to_uppercase(),
        esc(&op.path),
        esc(&text(&s["summary"])),
    );
    let description = text(&s["description"]);
    if !description.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", esc(&description));
    }
    if let Some(params) = s["parameters"].as_array() {
        out.push_str(
            "<table><tr><th>parameter</th><th>in</th><th>required</th><th>schema</th>\
             <th>description</th></tr>\n",
        );
        for p in params {
            let _ = writeln!(
                out,
                "<tr><td class=\"m\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&text(&p["name"])),
                esc(&text(&p["in"])),
                p["required"].as_bool().unwrap_or(false),
                schema_brief(&p["schema"]),
                esc(&text(&p["description"])),
            );
        }
        out.push_str("</table>\n");
    }
    if s["requestBody"].is_object() {
        let _ = writeln!(
            out,
            "<p>Request body{}: {}</p>{}",
            if s["requestBody"]["required"] == true {
                " (required)"
            } else {
                ""
            },
            esc(&text(&s["requestBody"]["description"])),
            content(&s["requestBody"]["content"]),
        );
    }
    out.push_str("<table><tr><th>status</th><th>response</th><th>body</th></tr>\n");
    if let Some(responses) = s["responses"].as_object() {
        for (status, r) in responses {
            let (description, body) = match r["$ref"].as_str() {
                Some(reference) => {
                    let name = reference.rsplit('/').next().unwrap_or(reference);
                    (
                        format!("<a href=\"#response-{0}\">{0}</a>", esc(name)),
                        String::new(),
                    )
                }
                None => (esc(&text(&r["description"])), content(&r["content"])),
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{description}</td><td>{body}</td></tr>",
                esc(status)
            );
        }
    }
    out.push_str("</table></section>\n");
}

/// Each media type with its schema (a link for a named one).
fn content(c: &Value) -> String {
    let Some(c) = c.as_object() else {
        return String::new();
    };
    c.iter()
        .map(|(media, m)| {
            format!(
                "<p><code>{}</code> {}</p>",
                esc(media),
                schema_brief(&m["schema"])
            )
        })
        .collect()
}

/// A named schema as a link; anything else as compact JSON with links.
fn schema_brief(schema: &Value) -> String {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    if schema.is_null() {
        return String::new();
    }
    format!("<code>{}</code>", links(&esc(&schema.to_string())))
}

fn json_with_links(v: &Value) -> String {
    links(&esc(&serde_json::to_string_pretty(v).unwrap_or_default()))
}

/// Turns escaped `"#/components/schemas/Name"` into links to the schema's section.
fn links(escaped: &str) -> String {
    const REF: &str = "&quot;#/components/schemas/";
    let mut out = String::new();
    let mut rest = escaped;
    while let Some(i) = rest.find(REF) {
        out.push_str(&rest[..i]);
        let after = &rest[i + REF.len()..];
        let end = after.find("&quot;").unwrap_or(after.len());
        let name = &after[..end];
        let _ = write!(out, "&quot;<a href=\"#schema-{name}\">{name}</a>&quot;");
        rest = after.get(end + "&quot;".len()..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

fn text(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_default()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_text_and_links_schemas() {
        let doc = json!({
            "openapi": "3.1.0",
            "info": {"title": "t<x>", "description": "d"},
            "tags": [{"name": "a", "description": ""}],
            "paths": {"/p/{id}": {"get": {
                "tags": ["a"], "summary": "s & t",
                "parameters": [{"name": "id", "in": "path", "required": true,
                                "schema": {"type": "string"}}],
                "responses": {"200": {"description": "ok", "content": {"application/json":
                    {"schema": {"$ref": "#/components/schemas/Thing"}}}}}
            }}},
            "components": {"schemas": {"Thing": {"type": "object", "properties":
                {"inner": {"$ref": "#/components/schemas/Other"}}}}}
        });
        let page = html(&doc);
        assert!(page.contains("t&lt;x&gt; API"), "{page}");
        assert!(page.contains("s &amp; t"));
        assert!(page.contains("href=\"#get-_p_id\""));
        assert!(page.contains("<a href=\"#schema-Thing\">Thing</a>"));
        assert!(page.contains("&quot;<a href=\"#schema-Other\">Other</a>&quot;"));
        assert!(!page.contains("<script"));
    }
}
