"""The OpenAPI 3.1 document; a test checks that it names every route the app serves."""

from __future__ import annotations

from typing import Any

from walletd.web.pages.openapi import SECURITY_SCHEMES, page_paths

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
    "GoogleCallback": {
        "type": "object",
        "required": ["signature", "intermediateSigningKey", "protocolVersion", "signedMessage"],
        "properties": {
            "signature": {"type": "string"},
            "intermediateSigningKey": {
                "type": "object",
                "properties": {
                    "signedKey": {"type": "string"},
                    "signatures": {"type": "array", "items": {"type": "string"}},
                },
            },
            "protocolVersion": {"type": "string", "const": "ECv2SigningOnly"},
            "signedMessage": {"type": "string"},
        },
    },
    "GoogleCallbackResult": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["recorded", "duplicate", "unknown_object"]}
        },
    },
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
    "/google/callbacks": {
        "post": _op("Google Wallet save/delete callback (signed by Google, ECv2SigningOnly)",
                    tag="google", security=False, body="GoogleCallback",
                    schema="GoogleCallbackResult", errors=("400", "401", "404", "413", "503")),
    },
    "/google/programs/{program_id}/logo.png": {
        "get": _op("A program's logo, fetched by Google for its loyalty class", tag="google",
                   security=False, content_type="image/png", errors=("404",),
                   params=(_path_param("program_id"),)),
    },
}  # fmt: skip


def _apple(summary: str, ok: str, *params: dict[str, Any], auth: bool = True) -> dict[str, Any]:
    """An Apple Wallet web service operation (ApplePass token auth, not API keys)."""
    operation = _op(summary, tag="apple", security=False, ok=ok, params=params,
                    errors=("400", "401") if auth else ("400",))  # fmt: skip
    if auth:
        operation["parameters"] = [
            {"name": "Authorization", "in": "header", "required": True,
             "schema": {"type": "string", "pattern": "^ApplePass .+"}},
            *operation.get("parameters", []),
        ]  # fmt: skip
    return operation


_DEVICE = _path_param("device_id", "string")
_PASS_TYPE = _path_param("pass_type_id", "string")
_SERIAL = _path_param("serial", "string")
_CAMPAIGN = _path_param("campaign_id")
_PROGRAM = _path_param("program_id")

PATHS.update({
    "/passes/v1/devices/{device_id}/registrations/{pass_type_id}/{serial}": {
        "post": _apple("Register a device for pass updates (201 new, 200 known)", "201",
                       _DEVICE, _PASS_TYPE, _SERIAL),
        "delete": _apple("Unregister a device from a pass", "200", _DEVICE, _PASS_TYPE, _SERIAL),
    },
    "/passes/v1/devices/{device_id}/registrations/{pass_type_id}": {
        "get": _apple("Serial numbers changed since passesUpdatedSince (204 when none)", "200",
                      _DEVICE, _PASS_TYPE, _query("passesUpdatedSince"), auth=False),
    },
    "/passes/v1/passes/{pass_type_id}/{serial}": {
        "get": _apple("The latest signed pass (304 with If-Modified-Since)", "200",
                      _PASS_TYPE, _SERIAL),
    },
    "/passes/v1/log": {"post": _apple("Device log messages", "200", auth=False)},
    "/api/v1/campaigns": {
        "post": _op("Create a campaign (scheduled, or a draft)", tag="campaigns",
                    body="CampaignCreate", ok="201", schema="Campaign"),
        "get": _op("List the brand's campaigns", tag="campaigns"),
    },
    "/api/v1/campaigns/{campaign_id}": {
        "get": _op("A campaign's recipients, deliveries, skips and expected finish",
                   tag="campaigns", schema="Campaign", params=(_CAMPAIGN,)),
    },
    "/api/v1/campaigns/{campaign_id}/cancel": {
        "post": _op("Cancel a campaign", tag="campaigns", schema="Campaign", params=(_CAMPAIGN,)),
    },
    "/api/v1/campaigns/{campaign_id}/schedule": {
        "post": _op("Schedule a draft", tag="campaigns", schema="Campaign", params=(_CAMPAIGN,)),
    },
    "/api/v1/campaigns/{campaign_id}/report": {
        "get": _op("Lift of recipients over the holdout group", tag="campaigns",
                   params=(_CAMPAIGN,)),
    },
    "/api/v1/segments/preview": {
        "get": _op("Count the members of a segment", tag="segments",
                   params=(_query("segment", required=True),)),
    },
    "/api/v1/reports/summary": {
        "get": _op("Members, activity, repeat rate, returning share, AOV, installed cards",
                   tag="reports", params=(_query("from", required=True),
                                          _query("to", required=True))),
    },
    "/api/v1/programs/{program_id}/automations": {
        "get": _op("The program's automations", tag="automations", params=(_PROGRAM,)),
    },
    "/api/v1/programs/{program_id}/automations/{kind}": {
        "put": _op("Switch an automation on or off, change its message, delay or holdout",
                   tag="automations", body="AutomationUpdate",
                   params=(_PROGRAM, _path_param("kind", "string"))),
    },
})  # fmt: skip

SCHEMAS.update({
    "Segment": {
        "description": 'A preset {"preset": NAME} or a tree of {"and": [...]}, {"or": [...]} '
                       'and {"field", "op", "value"} conditions',
        "type": "object",
    },
    "CampaignCreate": {
        "type": "object",
        "required": ["name", "message", "segment"],
        "properties": {
            "name": {"type": "string", "maxLength": 200},
            "message": {"type": "string", "maxLength": 500},
            "segment": {"$ref": "#/components/schemas/Segment"},
            "send_at": {"type": "string", "format": "date-time"},
            "holdout_percent": {"type": "integer", "minimum": 0, "maximum": 50},
            "lift_window_days": {"type": "integer", "minimum": 1, "maximum": 90},
            "program_id": {"type": "integer"},
            "draft": {"type": "boolean"},
        },
    },
    "Campaign": {
        "type": "object",
        "required": ["id", "status", "recipients", "delivered", "failed"],
        "properties": {
            "id": {"type": "integer"},
            "status": {"enum": ["draft", "scheduled", "sending", "sent", "cancelled"]},
            "recipients": {"type": "integer"},
            "holdout": {"type": "integer"},
            "delivered": {"type": "integer"},
            "failed": {"type": "integer"},
            "pending": {"type": "integer"},
            "skipped": {"type": "integer"},
            "skipped_by_reason": {"type": "object"},
            "expected_finish_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "AutomationUpdate": {
        "type": "object",
        "required": ["enabled"],
        "properties": {
            "enabled": {"type": "boolean"},
            "message": {"type": "string"},
            "delay_days": {"type": "integer"},
            "holdout_percent": {"type": "integer"},
        },
    },
})  # fmt: skip


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
        "paths": {**PATHS, **page_paths()},
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}, **SECURITY_SCHEMES},
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
