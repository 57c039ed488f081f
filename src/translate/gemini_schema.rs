//! JSON Schema (as OpenAI and Anthropic tools carry it) → the OpenAPI 3.0 subset Gemini's
//! `Schema` takes for function `parameters` and `responseSchema`.
//!
//! Gemini refuses keywords outside its subset (`$schema`, `additionalProperties`, `$defs`,
//! `const`, `exclusiveMinimum`...), so only the subset is kept: `type` (upper case, a
//! `["T", "null"]` list becomes `nullable`), `format` where Gemini knows it, `title`,
//! `description`, `nullable`, `default`, `example`, `enum` (strings), `properties`,
//! `propertyOrdering`, `required` (only names that exist), `items`, `anyOf` (`oneOf`
//! becomes it), min/max counts, lengths, `pattern` and numeric bounds. Local `$ref`s are
//! inlined; one that refers to itself cannot be and makes the tool [`Unsupported`].

use serde_json::{json, Map, Value};

use super::Unsupported;

/// Keywords copied as they are.
const COPIED: &[&str] = &[
    "title",
    "description",
    "nullable",
    "default",
    "example",
    "propertyOrdering",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
];

/// Deeper than this is a schema that refers to itself (or no tool a model could fill).
const MAX_DEPTH: usize = 32;

/// The Gemini form of a JSON Schema.
pub fn gemini_schema(schema: &Value) -> Result<Value, Unsupported> {
    convert(schema, schema, 0)
}

fn convert(node: &Value, root: &Value, depth: usize) -> Result<Value, Unsupported> {
    if depth > MAX_DEPTH {
        return Err(Unsupported::new(
            "a tool schema nests too deep or refers to itself, which gemini cannot take",
        ));
    }
    let obj = match node {
        Value::Object(obj) => obj,
        // `true` accepts anything: an unconstrained schema.
        Value::Bool(true) => return Ok(json!({})),
        Value::Null
        | Value::Bool(false)
        | Value::Number(_)
        | Value::String(_)
        | Value::Array(_) => return Err(Unsupported::new("a tool schema that is not an object")),
    };
    if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
        let target = resolve(reference, root)
            .ok_or_else(|| Unsupported(format!("tool schema $ref {reference:?} is not local")))?;
        let mut out = convert(target, root, depth + 1)?;
        if let (Some(description), Some(out)) = (obj.get("description"), out.as_object_mut()) {
            out.insert("description".into(), description.clone());
        }
        return Ok(out);
    }
    let mut out = Map::new();
    for key in COPIED {
        if let Some(value) = obj.get(*key) {
            out.insert((*key).into(), value.clone());
        }
    }
    set_type(obj, &mut out)?;
    set_format(obj, &mut out);
    let values = obj
        .get("enum")
        .cloned()
        .or_else(|| obj.get("const").map(|c| json!([c])));
    if let Some(Value::Array(values)) = values {
        // Gemini's enum holds strings; a numeric enum keeps its type and loses the list.
        if values.iter().all(Value::is_string) {
            out.insert("enum".into(), Value::Array(values));
            out.entry("type").or_insert_with(|| json!("STRING"));
            if out["type"] == "STRING" {
                out.insert("format".into(), json!("enum"));
            }
        }
    }
    if let Some(properties) = obj.get("properties").and_then(Value::as_object) {
        let mut converted = Map::new();
        for (name, schema) in properties {
            converted.insert(name.clone(), convert(schema, root, depth + 1)?);
        }
        if let Some(required) = obj.get("required").and_then(Value::as_array) {
            let known: Vec<Value> = required
                .iter()
                .filter(|r| r.as_str().is_some_and(|r| converted.contains_key(r)))
                .cloned()
                .collect();
            if !known.is_empty() {
                out.insert("required".into(), Value::Array(known));
            }
        }
        if !converted.is_empty() {
            out.insert("properties".into(), Value::Object(converted));
        }
        out.entry("type").or_insert_with(|| json!("OBJECT"));
    }
    if let Some(items) = obj.get("items") {
        out.insert("items".into(), convert(items, root, depth + 1)?);
    }
    let alternatives = obj.get("anyOf").or_else(|| obj.get("oneOf"));
    if let Some(Value::Array(alternatives)) = alternatives {
        let converted = alternatives
            .iter()
            .map(|a| convert(a, root, depth + 1))
            .collect::<Result<Vec<_>, _>>()?;
        out.insert("anyOf".into(), Value::Array(converted));
    }
    if let Some(Value::Array(all)) = obj.get("allOf") {
        match all.as_slice() {
            [only] => {
                let converted = convert(only, root, depth + 1)?;
                if let Value::Object(inner) = converted {
                    for (k, v) in inner {
                        out.entry(k).or_insert(v);
                    }
                }
            }
            _ => {
                return Err(Unsupported::new(
                    "allOf of several schemas cannot go to gemini",
                ))
            }
        }
    }
    Ok(Value::Object(out))
}

/// `#/$defs/Name` or `#/definitions/Name` in the root schema.
fn resolve<'a>(reference: &str, root: &'a Value) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    root.pointer(pointer)
}

fn set_type(obj: &Map<String, Value>, out: &mut Map<String, Value>) -> Result<(), Unsupported> {
    let upper = |t: &str| Value::from(t.to_ascii_uppercase());
    match obj.get("type") {
        None => {}
        Some(Value::String(t)) if t == "null" => {
            out.insert("nullable".into(), json!(true));
        }
        Some(Value::String(t)) => {
            out.insert("type".into(), upper(t));
        }
        Some(Value::Array(types)) => {
            let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            let real: Vec<&str> = names.iter().copied().filter(|t| *t != "null").collect();
            if real.len() < names.len() {
                out.insert("nullable".into(), json!(true));
            }
            match real.as_slice() {
                [] => {}
                [one] => {
                    out.insert("type".into(), upper(one));
                }
                several => {
                    let any: Vec<Value> = several
                        .iter()
                        .map(|t| json!({ "type": upper(t) }))
                        .collect();
                    out.insert("anyOf".into(), Value::Array(any));
                }
            }
        }
        Some(_) => return Err(Unsupported::new("a tool schema type that is not a name")),
    }
    Ok(())
}

/// Gemini knows few formats (the Gemini API refuses the others on strings).
fn set_format(obj: &Map<String, Value>, out: &mut Map<String, Value>) {
    let Some(format) = obj.get("format").and_then(Value::as_str) else {
        return;
    };
    let known = match out.get("type").and_then(Value::as_str) {
        Some("STRING") => matches!(format, "enum" | "date-time"),
        Some("NUMBER") => matches!(format, "float" | "double"),
        Some("INTEGER") => matches!(format, "int32" | "int64"),
        _ => false,
    };
    if known {
        out.insert("format".into(), json!(format));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_keywords_go_and_the_subset_stays() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "city": {"type": "string", "description": "where", "minLength": 1, "format": "hostname"},
                "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
                "days": {"type": "integer", "exclusiveMinimum": 0, "maximum": 14, "format": "int32"},
                "tags": {"type": "array", "items": {"const": "x"}},
                "when": {"$ref": "#/$defs/When"},
            },
            "required": ["city", "ghost"],
            "$defs": {"When": {"type": "string", "format": "date-time"}},
        });
        let out = gemini_schema(&schema).unwrap();
        assert_eq!(
            out,
            json!({
                "type": "OBJECT",
                "properties": {
                    "city": {"type": "STRING", "description": "where", "minLength": 1},
                    "unit": {"type": "STRING", "nullable": true, "enum": ["c", "f"], "format": "enum"},
                    "days": {"type": "INTEGER", "maximum": 14, "format": "int32"},
                    "tags": {"type": "ARRAY", "items": {"type": "STRING", "enum": ["x"], "format": "enum"}},
                    "when": {"type": "STRING", "format": "date-time"},
                },
                "required": ["city"],
            })
        );
    }

    #[test]
    fn a_schema_that_refers_to_itself_is_unsupported() {
        let schema = json!({
            "type": "object",
            "properties": {"node": {"$ref": "#"}},
        });
        assert!(gemini_schema(&schema).is_err());
        let remote = json!({"$ref": "https://example.com/s.json"});
        assert!(gemini_schema(&remote).is_err());
    }

    #[test]
    fn union_types_become_any_of() {
        let out = gemini_schema(&json!({"type": ["string", "integer"]})).unwrap();
        assert_eq!(
            out,
            json!({"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]})
        );
        let out = gemini_schema(&json!({"oneOf": [{"type": "string"}, {"type": "null"}]})).unwrap();
        assert_eq!(
            out,
            json!({"anyOf": [{"type": "STRING"}, {"nullable": true}]})
        );
    }
}
