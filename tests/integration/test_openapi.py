"""The OpenAPI document describes every route the app serves, and is self-consistent."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

IGNORED_METHODS = {"HEAD", "OPTIONS"}
OPERATIONS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _openapi_path(rule: str) -> str:
    """`/members/<int:member_id>` as OpenAPI writes it: `/members/{member_id}`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are expected: {ref}"
    node: Any = document
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and token in node, f"unresolved $ref {ref}"
        node = node[token]
    return node


def _document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document: dict[str, Any] = response.get_json()
    return document


def test_openapi_document_is_version_3_1(client: FlaskClient) -> None:
    document = _document(client)
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["title"]
    assert document["servers"] == [{"url": "http://walletd.test"}]


def test_openapi_document_needs_no_credentials(client: FlaskClient) -> None:
    assert client.get("/openapi.json", headers={"Authorization": "Bearer nope"}).status_code == 200


def test_every_route_the_app_serves_is_in_the_openapi_paths(
    app: Flask, client: FlaskClient
) -> None:
    paths = _document(client)["paths"]
    missing: list[str] = []
    served = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = _openapi_path(rule.rule)
        for method in sorted((rule.methods or set()) - IGNORED_METHODS):
            served += 1
            if method.lower() not in paths.get(path, {}):
                missing.append(f"{method} {path}")
    assert served > 0
    assert missing == [], "routes missing from /openapi.json:\n" + "\n".join(missing)


def test_every_path_parameter_is_declared(client: FlaskClient) -> None:
    for path, item in _document(client)["paths"].items():
        names = set(re.findall(r"{([^}]+)}", path))
        for method, operation in item.items():
            if method not in OPERATIONS:
                continue
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, f"{method.upper()} {path}"


def test_every_operation_has_responses(client: FlaskClient) -> None:
    for path, item in _document(client)["paths"].items():
        for method, operation in item.items():
            if method in OPERATIONS:
                assert operation.get("responses"), f"{method.upper()} {path}"


def test_every_ref_resolves(client: FlaskClient) -> None:
    document = _document(client)
    refs = set(_refs(document))
    assert refs, "the document is expected to use $ref"
    for ref in refs:
        _resolve(document, ref)


def test_route_conversion_matches_openapi_templates() -> None:
    assert _openapi_path("/api/v1/members/<int:member_id>") == "/api/v1/members/{member_id}"
    assert _openapi_path("/cards/<serial>/qr.png") == "/cards/{serial}/qr.png"
    assert _openapi_path("/a/<path:rest>/b/<int(signed=True):n>") == "/a/{rest}/b/{n}"


def test_a_body_is_required_unless_the_route_takes_none(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    refund = paths["/api/v1/scans/{scan_id}/reversal"]["post"]["requestBody"]
    assert refund["required"] is False  # no body refunds the rest
    assert paths["/api/v1/scans"]["post"]["requestBody"]["required"] is True
