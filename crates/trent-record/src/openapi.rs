//! The OpenAPI 3.0 description of the record's HTTP API (`GET /openapi.json`), generated
//! from the same tables the server uses (types, search parameters), so that it cannot
//! claim what the server does not do — and so that a conformance fuzzer (schemathesis)
//! can drive every path from it.
//!
//! Why not the published FHIR OpenAPI: it describes all of FHIR; this describes what this
//! server serves, with the statuses it answers. FHIR bodies are described at the level the
//! server guarantees (an object with `resourceType`; errors are OperationOutcomes), not
//! as full FHIR profiles.

use serde_json::{Map, Value, json};

use crate::index::{self, ParamKind, SUPPORTED_TYPES};

fn fhir_content(schema: Value) -> Value {
    json!({"application/fhir+json": {"schema": schema}})
}

fn resource_schema(t: &str) -> Value {
    json!({
        "type": "object",
        "required": ["resourceType"],
        "properties": {"resourceType": {"type": "string", "enum": [t]}, "id": {"type": "string"}},
    })
}

fn any_resource() -> Value {
    json!({"type": "object", "required": ["resourceType"], "properties": {"resourceType": {"type": "string"}}})
}

fn outcome_schema() -> Value {
    json!({
        "type": "object",
        "required": ["resourceType", "issue"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
            "issue": {"type": "array", "minItems": 1, "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {"severity": {"type": "string"}, "code": {"type": "string"}, "diagnostics": {"type": "string"}},
            }},
        },
    })
}

fn errors(codes: &[u16]) -> Map<String, Value> {
    let mut m = Map::new();
    for c in codes {
        m.insert(
            c.to_string(),
            json!({"description": "OperationOutcome", "content": fhir_content(outcome_schema())}),
        );
    }
    m
}

fn responses(ok: &[(u16, Value)], err: &[u16]) -> Value {
    let mut m = errors(err);
    for (c, schema) in ok {
        m.insert(
            c.to_string(),
            json!({"description": "success", "content": fhir_content(schema.clone())}),
        );
    }
    Value::Object(m)
}

fn bundle_schema() -> Value {
    json!({"type": "object", "required": ["resourceType", "type"], "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "type": {"type": "string"},
        "entry": {"type": "array", "items": {"type": "object"}},
    }})
}

const AUTH_ERRORS: &[u16] = &[400, 401, 403];

/// The OpenAPI document.
pub fn document() -> Value {
    let mut paths = Map::new();
    let id_param =
        json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}});
    let body_errors: &[u16] = &[400, 401, 403, 404, 409, 412, 413, 415, 422];
    for t in SUPPORTED_TYPES {
        let mut params: Vec<Value> = index::SEARCH_PARAMS
            .iter()
            .filter(|(rt, _, _)| rt == t)
            .map(|(_, n, k)| {
                json!({"name": n, "in": "query", "required": false, "schema": {"type": "string"},
                "description": match k {
                    ParamKind::Token => "token: system|code, |code, code or system|",
                    ParamKind::Str => "string (case-insensitive starts-with)",
                    ParamKind::Date => "date with optional prefix eq, ne, lt, gt, le, ge",
                    ParamKind::Reference => "reference: Type/id or id",
                }})
            })
            .collect();
        for (n, schema) in [
            ("_id", json!({"type": "string"})),
            (
                "_count",
                json!({"type": "integer", "minimum": 0, "maximum": 1000}),
            ),
            ("_offset", json!({"type": "integer", "minimum": 0})),
            ("_include", json!({"type": "string"})),
        ] {
            params.push(json!({"name": n, "in": "query", "required": false, "schema": schema}));
        }
        paths.insert(
            format!("/fhir/{t}"),
            json!({
                "get": {"operationId": format!("search{t}"), "summary": format!("search {t}"),
                        "parameters": params,
                        "responses": responses(&[(200, bundle_schema())], &[400, 401, 403])},
                "post": {"operationId": format!("create{t}"), "summary": format!("create {t}"),
                         "requestBody": {"required": true, "content": fhir_content(resource_schema(t))},
                         "responses": responses(&[(201, resource_schema(t))], body_errors)},
            }),
        );
        let item = json!({
            "parameters": [id_param],
            "get": {"operationId": format!("read{t}"), "summary": format!("read {t}"),
                    "responses": responses(&[(200, resource_schema(t))], &[400, 401, 403, 404, 410])},
            "put": {"operationId": format!("update{t}"), "summary": format!("create or update {t}"),
                    "requestBody": {"required": true, "content": fhir_content(resource_schema(t))},
                    "responses": responses(&[(200, resource_schema(t)), (201, resource_schema(t))], body_errors)},
            "delete": {"operationId": format!("delete{t}"), "summary": format!("delete {t}"),
                       "responses": {"204": {"description": "deleted"}, "400": {"description": "OperationOutcome", "content": fhir_content(outcome_schema())},
                                     "401": {"description": "OperationOutcome", "content": fhir_content(outcome_schema())},
                                     "403": {"description": "OperationOutcome", "content": fhir_content(outcome_schema())},
                                     "404": {"description": "OperationOutcome", "content": fhir_content(outcome_schema())},
                                     "412": {"description": "OperationOutcome", "content": fhir_content(outcome_schema())}}},
        });
        if *t == "Patient" {
            paths.insert(
                "/fhir/Patient/{id}/$everything".into(),
                json!({"parameters": [id_param], "get": {"operationId": "everything", "summary": "the whole record of one person",
                        "responses": responses(&[(200, bundle_schema())], &[400, 401, 403, 404])}}),
            );
        }
        paths.insert(format!("/fhir/{t}/{{id}}"), item);
    }
    paths.insert(
        "/fhir/AuditEvent".into(),
        json!({"get": {"operationId": "searchAuditEvent", "summary": "who accessed a person's record",
            "parameters": [{"name": "patient", "in": "query", "required": true, "schema": {"type": "string"}}],
            "responses": responses(&[(200, bundle_schema())], AUTH_ERRORS)}}),
    );
    paths.insert(
        "/fhir/metadata".into(),
        json!({"get": {"operationId": "capabilities", "summary": "CapabilityStatement", "security": [],
            "responses": responses(&[(200, resource_schema("CapabilityStatement"))], &[])}}),
    );
    paths.insert(
        "/fhir".into(),
        json!({"post": {"operationId": "transaction", "summary": "transaction or batch Bundle",
            "requestBody": {"required": true, "content": fhir_content(bundle_schema())},
            "responses": responses(&[(200, bundle_schema())], body_errors)}}),
    );
    paths.insert(
        "/fhir/$process-message".into(),
        json!({"post": {"operationId": "processMessage", "summary": "a FHIR message (transfer of care) from a registered sender",
            "requestBody": {"required": true, "content": fhir_content(bundle_schema())},
            "responses": {
                "200": {"description": "response message (ok)", "content": fhir_content(bundle_schema())},
                "400": {"description": "OperationOutcome, or a response message (fatal-error)", "content": fhir_content(any_resource())},
                "401": {"description": "OperationOutcome", "content": fhir_content(outcome_schema())},
                "403": {"description": "OperationOutcome (unknown sender), or a response message (fatal-error)", "content": fhir_content(any_resource())},
                "404": {"description": "response message (fatal-error)", "content": fhir_content(any_resource())},
                "409": {"description": "OperationOutcome", "content": fhir_content(outcome_schema())},
                "412": {"description": "response message (fatal-error)", "content": fhir_content(any_resource())},
                "413": {"description": "OperationOutcome", "content": fhir_content(outcome_schema())},
                "415": {"description": "OperationOutcome", "content": fhir_content(outcome_schema())},
                "422": {"description": "response message (fatal-error)", "content": fhir_content(any_resource())},
                "503": {"description": "response message (transient-error)", "content": fhir_content(bundle_schema())},
            }}}),
    );
    let json_obj = |schema: Value| json!({"application/json": {"schema": schema}});
    paths.insert(
        "/record/worklist".into(),
        json!({"post": {"operationId": "worklist", "summary": "identify a PHM worklist for the clinician's practice",
            "requestBody": {"required": true, "content": json_obj(json!({
                "type": "object", "required": ["practice", "rows"],
                "properties": {"practice": {"type": "string"}, "rows": {"type": "array", "items": {
                    "type": "object", "required": ["person"],
                    "properties": {"person": {"type": "string"}, "score": {"type": "number"},
                                   "reasons": {"type": "array", "items": {"type": "string"}}}}}}}))},
            "responses": {
                "200": {"description": "rows, identified or withheld", "content": json_obj(json!({"type": "object", "required": ["practice", "rows"]}))},
                "400": {"description": "OperationOutcome", "content": fhir_content(outcome_schema())},
                "401": {"description": "OperationOutcome", "content": fhir_content(outcome_schema())},
                "403": {"description": "OperationOutcome", "content": fhir_content(outcome_schema())},
                "413": {"description": "OperationOutcome", "content": fhir_content(outcome_schema())},
                "415": {"description": "OperationOutcome", "content": fhir_content(outcome_schema())},
            }}}),
    );
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "trent shared care record",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "FHIR R4 (JSON) over the record store; every request is decided and audited. See docs/record.md.",
        },
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_type_has_its_paths() {
        let d = super::document();
        for t in crate::index::SUPPORTED_TYPES {
            assert!(d["paths"][format!("/fhir/{t}")]["get"].is_object(), "{t}");
            assert!(
                d["paths"][format!("/fhir/{t}/{{id}}")]["put"].is_object(),
                "{t}"
            );
        }
        assert!(d["paths"]["/fhir/$process-message"]["post"].is_object());
    }
}
