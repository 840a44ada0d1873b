"""The OpenAPI 3.1 document, generated from the routes and the models that validate them."""

from __future__ import annotations

import re
from typing import Any

import pydantic
from flask import Flask
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from werkzeug.routing import Rule

from walletd.web.endpoint import MAX_ID, TOKEN_PATTERN, Spec, spec_of
from walletd.web.pages.openapi import SECURITY_SCHEMES, page_paths

REF = "#/components/schemas/{model}"
ERROR = {"$ref": "#/components/responses/Error"}
_ARGUMENT = re.compile(r"<(?:([a-zA-Z_][a-zA-Z0-9_]*)(?:\([^)]*\))?:)?([a-zA-Z_][a-zA-Z0-9_]*)>")
_STATUS_TEXT = {
    200: "success",
    201: "created",
    202: "accepted",
    204: "nothing to send",
    304: "not modified",
    503: "unavailable",
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "snake_case, stable"},
                "message": {"type": "string"},
                "field": {"type": "string", "description": "the field at fault, as a dotted path"},
                "existing_member_id": {
                    "type": "integer",
                    "description": "409 member_exists: the member who already has the contact",
                },
                "errors": {
                    "type": "array",
                    "description": "every field error of a 422 at once",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                            "type": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}


def openapi_path(rule: str) -> str:
    """`/members/<int:member_id>` as OpenAPI writes it: `/members/{member_id}`."""
    return _ARGUMENT.sub(lambda m: "{" + m.group(2) + "}", rule)


def _path_parameters(rule: Rule) -> list[dict[str, Any]]:
    parameters = []
    for converter, name in _ARGUMENT.findall(rule.rule):
        if converter == "int":
            schema: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": MAX_ID}
        elif converter == "token":
            schema = {"type": "string", "pattern": f"^{TOKEN_PATTERN}$"}
        else:
            schema = {"type": "string", "maxLength": 200}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return parameters


def _query_parameters(model: type[pydantic.BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True, ref_template=REF)
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k != "title"},
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _content(spec: Spec, model_ref: dict[str, Any] | None) -> dict[str, Any]:
    if not spec.media_type:
        return {}
    if spec.media_type != "application/json":
        return {"content": {spec.media_type: {"schema": {"type": "string", "format": "binary"}}}}
    return {"content": {"application/json": {"schema": model_ref or {"type": "object"}}}}


class _Builder:
    """Collects the models the operations name, so their schemas are emitted once."""

    def __init__(self) -> None:
        self.models: set[tuple[type[pydantic.BaseModel], JsonSchemaMode]] = set()

    def ref(self, model: type[pydantic.BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        self.models.add((model, mode))
        return {"$ref": f"#/$model/{mode}/{model.__module__}.{model.__qualname__}"}

    def operation(self, spec: Spec, rule: Rule, method: str) -> dict[str, Any]:
        operation: dict[str, Any] = {
            "operationId": f"{rule.endpoint}.{method}",
            "summary": spec.summary,
            "tags": [spec.tag],
        }
        if spec.roles:
            operation["description"] = "API key roles: " + ", ".join(spec.roles)
        parameters = _path_parameters(rule)
        if spec.query is not None:
            parameters += _query_parameters(spec.query)
        if spec.auth == "apple":
            parameters.append(
                {"name": "Authorization", "in": "header", "required": True,
                 "schema": {"type": "string", "pattern": "^ApplePass [A-Za-z0-9]{16,64}$"}}
            )  # fmt: skip
        for header in spec.headers:
            parameters.append(
                {"name": header.name, "in": "header", "required": header.required,
                 "description": header.description,
                 "schema": {"type": "string", "minLength": 1, "maxLength": header.max_length}}
            )  # fmt: skip
        if parameters:
            operation["parameters"] = parameters
        body = spec.body or spec.body_doc
        if body is not None:
            operation["requestBody"] = {
                "required": not spec.body_optional,
                "content": {"application/json": {"schema": self.ref(body, "validation")}},
            }
        reply = self.ref(spec.response, "serialization") if spec.response else None
        responses: dict[str, Any] = {
            str(spec.status): {"description": _STATUS_TEXT.get(spec.status, "success"),
                               **_content(spec, reply)},
        }  # fmt: skip
        for status, description in spec.other_responses.items():
            if status == 503 and reply is not None:
                # Health probes answer "unavailable" in their own reply model, not as an error.
                responses[str(status)] = {"description": description, **_content(spec, reply)}
            elif status >= 400:
                responses[str(status)] = {"description": description, **ERROR_CONTENT}
            elif status in (204, 304):
                responses[str(status)] = {"description": description}
            else:
                responses[str(status)] = {"description": description, **_content(spec, reply)}
        if spec.auth == "apple" or rule.endpoint == "apple.log_messages":
            # Apple's web service answers its refusals with a status and no body.
            responses["4XX"] = {"description": "refused (Apple's protocol: status only)"}
        else:
            responses["4XX"] = ERROR
        operation["responses"] = responses
        operation["security"] = [{"apiKey": []}] if spec.auth == "api" else []
        return operation

    def schemas(self) -> tuple[dict[str, str], dict[str, Any]]:
        """Component schemas and how the placeholder refs map onto them."""
        ordered = sorted(self.models, key=lambda m: (m[0].__qualname__, m[1]))
        key_map, definitions = models_json_schema(ordered, ref_template=REF)
        refs: dict[str, str] = {}
        for (model, mode), schema in key_map.items():
            refs[f"#/$model/{mode}/{model.__module__}.{model.__qualname__}"] = schema["$ref"]
        return refs, definitions.get("$defs", {})


ERROR_CONTENT = {
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
}


def _replace_refs(node: Any, refs: dict[str, str]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"$ref"} and node["$ref"] in refs:
            return {"$ref": refs[node["$ref"]]}
        return {k: _replace_refs(v, refs) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_refs(v, refs) for v in node]
    return node


def build_document(app: Flask, base_url: str) -> dict[str, Any]:
    """The whole OpenAPI document for this app's routes."""
    builder = _Builder()
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        spec = spec_of(app.view_functions[rule.endpoint])
        if spec is None:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(openapi_path(rule.rule), {})[method.lower()] = builder.operation(
                spec, rule, method.lower()
            )
    for path, item in page_paths().items():
        for method, operation in item.items():
            paths.setdefault(path, {}).setdefault(method, operation)
    refs, schemas = builder.schemas()
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "walletd",
            "version": "1",
            "description": "Self-hosted loyalty cards for Apple Wallet and Google Wallet. "
            "Errors are always the envelope below; a 422 lists every field error at once.",
        },
        "servers": [{"url": base_url}],
        "security": [{"apiKey": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}, **SECURITY_SCHEMES},
            "schemas": {"Error": ERROR_SCHEMA, **schemas},
            "responses": {"Error": {"description": "error envelope", **ERROR_CONTENT}},
        },
    }
    replaced: dict[str, Any] = _replace_refs(document, refs)
    return replaced


def openapi_document(app: Flask, base_url: str) -> dict[str, Any]:
    """The document, built once per app (routes and models do not change while it runs)."""
    cached: dict[str, Any] | None = app.extensions.get("walletd_openapi")
    if cached is None:
        cached = app.extensions["walletd_openapi"] = build_document(app, base_url)
    return cached
