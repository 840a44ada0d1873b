"""The OpenAPI 3.1 document; a test checks that it names every route the app serves."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/responses/Error"}


def _op(
    summary: str,
    *,
    tag: str,
    security: bool = True,
    body: str | None = None,
    ok: str = "200",
    schema: str | None = None,
    headers: tuple[str, ...] = (),
    params: tuple[dict[str, Any], ...] = (),
    errors: tuple[str, ...] = ("400", "401", "403", "404", "409", "413", "415", "422"),
    content_type: str = "application/json",
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "tags": [tag]}
    parameters = [
        {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
        for name in headers
    ]
    parameters += list(params)
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    ok_body: dict[str, Any] = {"description": "success"}
    if schema:
        ok_body["content"] = {content_type: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    elif content_type != "application/json":
        ok_body["content"] = {content_type: {"schema": {"type": "string", "format": "binary"}}}
    operation["responses"] = {ok: ok_body, **{code: ERROR for code in errors}}
    if not security:
        operation["security"] = []
    return operation


def _path_param(name: str, kind: str = "integer") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


def _query(name: str, kind: str = "string", required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": {"type": kind}}


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": "string"},
                },
            }
        },
    },
    "MemberCreate": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "maxLength": 200},
            "email": {"type": "string", "format": "email"},
            "phone": {"type": "string"},
            "birthday": {"type": "string", "format": "date"},
            "marketing_consent": {"type": "boolean"},
            "referral_code": {"type": "string"},
            "program_id": {"type": "integer"},
        },
    },
    "Member": {
        "type": "object",
        "required": ["id", "name", "points", "tier", "card"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "points": {"type": "integer"},
            "tier": {"type": ["string", "null"]},
            "referral_code": {"type": "string"},
            "card": {
                "type": "object",
                "required": [
                    "serial_number",
                    "barcode",
                    "qr_url",
                    "apple_pass_url",
                    "google_save_url",
                ],
                "properties": {
                    "serial_number": {"type": "string"},
                    "barcode": {"type": "string"},
                    "qr_url": {"type": "string", "format": "uri"},
                    "apple_pass_url": {"type": "string", "format": "uri"},
                    "google_save_url": {"type": ["string", "null"], "format": "uri"},
                },
            },
        },
    },
    "Ledger": {
        "type": "object",
        "properties": {"entries": {"type": "array", "items": {"type": "object"}}},
    },
    "Adjustment": {
        "type": "object",
        "required": ["points", "reason"],
        "properties": {"points": {"type": "integer"}, "reason": {"type": "string"}},
    },
    "ScanCreate": {
        "type": "object",
        "required": ["barcode", "amount"],
        "properties": {
            "barcode": {"type": "string"},
            "amount": {"type": ["string", "number"], "description": "decimal, > 0"},
            "currency": {"type": "string", "minLength": 3, "maxLength": 3},
            "location_id": {"type": "integer"},
        },
    },
    "Scan": {
        "type": "object",
        "required": ["member_id", "points_earned", "balance", "tier"],
        "properties": {
            "scan_id": {"type": "integer"},
            "member_id": {"type": "integer"},
            "points_earned": {"type": "integer"},
            "balance": {"type": "integer"},
            "tier": {"type": ["string", "null"]},
            "amount": {"type": "string"},
            "currency": {"type": "string"},
        },
    },
    "Reversal": {"type": "object"},
    "RedemptionCreate": {
        "type": "object",
        "required": ["barcode"],
        "properties": {
            "barcode": {"type": "string"},
            "points": {"type": "integer", "minimum": 1},
            "reward_id": {"type": "integer"},
        },
    },
    "Redemption": {
        "type": "object",
        "required": ["member_id", "points_redeemed", "balance"],
        "properties": {
            "member_id": {"type": "integer"},
            "points_redeemed": {"type": "integer"},
            "balance": {"type": "integer"},
        },
    },
    "Message": {
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string", "maxLength": 500}},
    },
    "Health": {"type": "object", "properties": {"status": {"type": "string"}}},
}

PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/members": {
        "post": _op("Enroll a member", tag="members", body="MemberCreate", ok="201",
                    schema="Member"),
    },
    "/api/v1/members/{member_id}": {
        "get": _op("Show a member", tag="members", schema="Member",
                   params=(_path_param("member_id"),)),
    },
    "/api/v1/members/{member_id}/ledger": {
        "get": _op("A member's ledger, newest first", tag="members", schema="Ledger",
                   params=(_path_param("member_id"),)),
    },
    "/api/v1/members/{member_id}/adjustments": {
        "post": _op("Adjust a member's points with a reason", tag="members", body="Adjustment",
                    ok="201", params=(_path_param("member_id"),)),
    },
    "/api/v1/members/{member_id}/message": {
        "post": _op("Set a member's card message and push it", tag="members", body="Message",
                    ok="202", params=(_path_param("member_id"),)),
    },
    "/api/v1/scans": {
        "post": _op("Credit a checkout scan (replay answers 200 with the first result)",
                    tag="scans", body="ScanCreate", ok="201", schema="Scan",
                    headers=("Idempotency-Key",)),
    },
    "/api/v1/scans/{scan_id}/reversal": {
        "post": _op("Reverse a scan (refund)", tag="scans", ok="201", schema="Reversal",
                    params=(_path_param("scan_id"),)),
    },
    "/api/v1/redemptions": {
        "post": _op("Redeem points or a reward", tag="scans", body="RedemptionCreate", ok="201",
                    schema="Redemption", headers=("Idempotency-Key",)),
    },
    "/healthz": {
        "get": _op("Database health", tag="operations", security=False, schema="Health",
                   errors=("503",)),
    },
    "/openapi.json": {
        "get": _op("This document", tag="operations", security=False, errors=()),
    },
    "/cards/{serial}/qr.png": {
        "get": _op("The card's QR code (signed link)", tag="cards", security=False,
                   content_type="image/png", errors=("404",),
                   params=(_path_param("serial", "string"), _query("sig", required=True))),
    },
    "/cards/{serial}/pass.pkpass": {
        "get": _op("The signed Apple Wallet pass (signed link)", tag="cards", security=False,
                   content_type="application/vnd.apple.pkpass", errors=("404",),
                   params=(_path_param("serial", "string"), _query("sig", required=True))),
    },
}  # fmt: skip


def openapi_document(base_url: str) -> dict[str, Any]:
    """The whole OpenAPI document for this server."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "walletd",
            "version": "1",
            "description": "Self-hosted loyalty cards for Apple Wallet and Google Wallet.",
        },
        "servers": [{"url": base_url}],
        "security": [{"apiKey": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
            "responses": {
                "Error": {
                    "description": "error envelope",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
            },
        },
    }
