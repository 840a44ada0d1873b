"""The pages' routes as OpenAPI paths: HTML pages, plus the cashier page's JSON endpoints."""

from __future__ import annotations

import re
from typing import Any

_HTML = {"content": {"text/html": {"schema": {"type": "string"}}}}
_COOKIE: list[dict[str, list[str]]] = [{"session": []}]
_FORM = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "properties": {"csrf_token": {"type": "string"}},
                "required": ["csrf_token"],
            }
        }
    },
}
_INTEGER = {"member_id", "program_id", "campaign_id", "offer_id", "promotion_id"}
_INTEGER |= {"location_id", "key_id", "staff_id"}  # issue 11 [locations-keys-staff]
_INTEGER |= {"automation_id"}  # issue 11 [events]
_INTEGER |= {"scan_id"}  # issue 12 [feedback]
_INTEGER |= {"coupon_id"}  # the member page's coupons panel

# (method, path, summary, kind): kind is "page" (public HTML), "staff" (HTML behind the staff
# session), "form" (public form post), "staff-form", "csv" or "till" (JSON with session + CSRF).
ROUTES: list[tuple[str, str, str, str]] = [
    ("get", "/", "Start page", "page"),
    ("post", "/lang", "Switch the pages' language (cookie)", "form"),
    ("get", "/pass-images/{name}/{filename}", "An image of a card template", "png"),
    ("get", "/join/{program_id}", "Enrollment form", "page"),
    ("post", "/join/{program_id}", "Enroll; 303 to the card page", "form"),
    ("get", "/card/{serial}", "A member's card page (signed link)", "page"),
    ("get", "/join/{program_id}/recover", "Find a lost card", "page"),
    ("post", "/join/{program_id}/recover", "Find a lost card by contact and birthday", "form"),
    ("get", "/cashier/login", "Cashier login", "page"),
    ("post", "/cashier/login", "Log in with a staff account or a cashier key", "form"),
    ("post", "/cashier/logout", "Log out", "staff-form"),
    ("get", "/cashier", "Scan and redeem", "staff"),
    ("post", "/cashier/api/scan", "Credit a scan for the cashier page", "till"),
    ("post", "/cashier/api/redeem", "Redeem a reward for the cashier page", "till"),
    ("post", "/cashier/api/coupons/redeem", "Redeem a coupon for the cashier page", "till"),
    ("get", "/dashboard/login", "Staff login", "page"),
    ("post", "/dashboard/login", "Log in with a staff account", "form"),
    ("post", "/dashboard/logout", "Log out", "staff-form"),
    ("get", "/dashboard", "Overview with charts", "staff"),
    ("get", "/dashboard/poster", "Printable QR poster of the enrollment link", "staff"),
    ("get", "/dashboard/enrollment-poster", "QR poster of the Apple Wallet sign-up pass", "staff"),
    ("get", "/dashboard/members", "Search members", "staff"),
    ("get", "/dashboard/members/{member_id}", "A member and their ledger", "staff"),
    ("post", "/dashboard/members/{member_id}/adjust", "Adjust points with a reason", "staff-form"),
    # [email]
    ("post", "/dashboard/members/{member_id}/card-email", "E-mail the card again", "staff-form"),
    (
        "post",
        "/dashboard/members/{member_id}/coupons/{coupon_id}/void",
        "Void a member's coupon with a reason; 303 to the member page",
        "staff-form",
    ),
    ("get", "/dashboard/program", "Program editor with card preview", "staff"),
    ("post", "/dashboard/program", "Save the program", "staff-form"),
    ("get", "/dashboard/campaigns", "Campaigns", "staff"),
    ("post", "/dashboard/campaigns", "Preview an audience or create a campaign", "staff-form"),
    ("get", "/dashboard/campaigns/{campaign_id}", "A campaign's progress", "staff"),
    ("post", "/dashboard/campaigns/{campaign_id}/cancel", "Cancel a campaign", "staff-form"),
    ("get", "/dashboard/automations", "Automations", "staff"),
    ("post", "/dashboard/automations/{kind}", "Save an automation", "staff-form"),
    ("get", "/dashboard/offers", "Offers with their coupon counts", "staff"),
    ("get", "/dashboard/offers/new", "Offer builder with coupon preview", "staff"),
    ("post", "/dashboard/offers/new", "Create an offer", "staff-form"),
    ("get", "/dashboard/offers/{offer_id}", "An offer's report and issue form", "staff"),
    ("get", "/dashboard/offers/{offer_id}/edit", "Edit an offer", "staff"),
    ("post", "/dashboard/offers/{offer_id}/edit", "Save an offer", "staff-form"),
    ("post", "/dashboard/offers/{offer_id}/archive", "Archive an offer", "staff-form"),
    ("post", "/dashboard/offers/{offer_id}/issue", "Issue to a member or a segment", "staff-form"),
    ("get", "/dashboard/promotions", "Promotions with the form for a new one", "staff"),
    ("post", "/dashboard/promotions", "Create a promotion", "staff-form"),
    ("get", "/dashboard/promotions/{promotion_id}", "Edit a promotion", "staff"),
    ("post", "/dashboard/promotions/{promotion_id}", "Save a promotion", "staff-form"),
    ("post", "/dashboard/promotions/{promotion_id}/delete", "Delete a promotion", "staff-form"),
    ("get", "/dashboard/export/members.csv", "Members as CSV", "csv"),
    ("get", "/dashboard/export/ledger.csv", "Ledger as CSV", "csv"),
    # issue 11 [settings]
    # issue 11 [locations-keys-staff]
    ("get", "/dashboard/locations", "Locations with the form for a new one", "staff"),
    ("post", "/dashboard/locations", "Add a location", "staff-form"),
    ("get", "/dashboard/locations/{location_id}", "Edit a location", "staff"),
    ("post", "/dashboard/locations/{location_id}", "Save a location", "staff-form"),
    ("post", "/dashboard/locations/{location_id}/delete", "Delete a location", "staff-form"),
    ("get", "/dashboard/keys", "API keys with their last use", "staff"),
    ("post", "/dashboard/keys", "Create a key (shown once on the answer)", "staff-form"),
    ("post", "/dashboard/keys/{key_id}/revoke", "Revoke a key", "staff-form"),
    ("get", "/dashboard/staff", "Staff accounts with the invitation form", "staff"),
    ("post", "/dashboard/staff", "Invite staff (a one-time set-password link)", "staff-form"),
    ("post", "/dashboard/staff/{staff_id}", "Change a role or disable an account", "staff-form"),
    ("post", "/dashboard/staff/{staff_id}/delete", "Remove a staff account", "staff-form"),
    ("post", "/dashboard/staff/{staff_id}/link", "A new set-password link", "staff-form"),
    ("get", "/dashboard/set-password/{token}", "Choose a password with a one-time link", "page"),
    ("post", "/dashboard/set-password/{token}", "Set the password and log in", "form"),
    # issue 11 [imports]
    ("get", "/dashboard/members/import", "Import members: upload a CSV file", "staff"),
    ("post", "/dashboard/members/import", "Preview an import (file upload)", "staff-form"),
    ("get", "/dashboard/members/import/{import_id}", "An import's progress", "staff"),
    ("post", "/dashboard/members/import/{import_id}/start", "Confirm an import", "staff-form"),
    # issue 11 [webhooks]
    # issue 11 [events]
    # issue 12 [members]
    ("post", "/dashboard/members/{member_id}/edit", "Correct a member's details", "staff-form"),
    # issue 12 [erasure]
    ("post", "/card/{serial}/consent", "Promotional messages on or off (signed link)", "form"),
    ("get", "/dashboard/members/{member_id}/erase", "Confirm a member's erasure", "staff"),
    ("post", "/dashboard/members/{member_id}/erase", "Erase a member", "staff-form"),
    # issue 12 [refunds]
    # issue 12 [messages]
    # issue 12 [feedback]
    ("get", "/feedback/{scan_id}", "Rate a visit (signed link: exp, sig)", "page"),
    ("post", "/feedback/{scan_id}", "Send a visit's rating; 303 to the thanks", "form"),
    ("get", "/dashboard/feedback", "Ratings by location and over time", "staff"),
    ("get", "/dashboard/event-automations", "Event automations", "staff"),
    ("post", "/dashboard/event-automations", "Create an event automation", "staff-form"),
    ("post", "/dashboard/event-automations/{automation_id}/toggle", "On/off", "staff-form"),
    ("post", "/dashboard/event-automations/{automation_id}/delete", "Delete one", "staff-form"),
    # issue 15 [delivery]
    ("get", "/dashboard/delivery", "Is my card up to date? (delivery health)", "staff"),
    # issue 13 [docs]
    ("get", "/docs", "This API reference, drawn from /openapi.json", "page"),
    # issue 16 [email-campaigns]
    ("get", "/unsubscribe", "Confirm stopping promotional e-mails (signed link: m, sig)", "page"),
    ("post", "/unsubscribe", "One-click unsubscribe, RFC 8058 (signed link: m, sig)", "one-click"),
    # issue 16 [email-links]
    ("get", "/join/{program_id}/recover/{token}", "An e-mailed one-time card link", "page"),
    ("post", "/join/{program_id}/recover/{token}", "Spend the link; 303 to the card", "form"),
    ("get", "/dashboard/forgot-password", "Ask for a password link by e-mail", "page"),
    ("post", "/dashboard/forgot-password", "E-mail a one-time password link", "form"),
    # issue 15 [google-signup]
    ("get", "/join/{program_id}/google", "Sign-up from Google Wallet: the prefilled form", "page"),
    ("post", "/join/{program_id}/google", "Google Wallet's sign-up post (prefills)", "google"),
]


def _operation(method: str, path: str, summary: str, kind: str) -> dict[str, Any]:
    operation: dict[str, Any] = {"tags": ["pages"], "summary": summary, "security": []}
    names = re.findall(r"{([^}]+)}", path)
    if names:
        operation["parameters"] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "integer" if name in _INTEGER else "string"},
            }
            for name in names
        ]
    if kind.startswith("staff") or kind in ("csv", "till"):
        operation["security"] = _COOKIE
    if kind == "one-click":  # [email-campaigns]: no session, no CSRF token, a signed link
        operation["parameters"] = [
            {"name": name, "in": "query", "required": True, "schema": {"type": "string"}}
            for name in ("m", "sig")
        ]
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "List-Unsubscribe": {"type": "string", "enum": ["One-Click"]}
                        },
                        "required": ["List-Unsubscribe"],
                    }
                }
            },
        }
        operation["responses"] = {"200": {"description": "unsubscribed", **_HTML}}
    elif kind == "google":  # [google-signup]: Google Wallet posts without session or token
        operation["requestBody"] = {
            "required": False,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "SharedDataType": {
                                "type": "string",
                                "description": "Base64 of the JSON object Google shares",
                            }
                        },
                    }
                }
            },
        }
        operation["responses"] = {"200": {"description": "the join form, prefilled", **_HTML}}
    elif kind in ("form", "staff-form"):
        operation["requestBody"] = _FORM
        operation["responses"] = {
            "200": {"description": "the form again, with errors next to fields", **_HTML},
            "303": {"description": "done; see Location"},
            "400": {"description": "missing or stale CSRF token", **_HTML},
        }
    elif kind == "till":
        operation["parameters"] = [
            {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
            for name in ("X-CSRF-Token", "Idempotency-Key")
        ]
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
        operation["responses"] = {
            "201": {"description": "done: member, points, balance, tier, reachable rewards"},
            "200": {"description": "a replay of the same Idempotency-Key: the first answer"},
            "default": {"$ref": "#/components/responses/Error"},
        }
    elif kind == "csv":
        operation["responses"] = {
            "200": {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}
        }
    elif kind == "png":
        operation["responses"] = {
            "200": {"description": "PNG", "content": {"image/png": {"schema": {"type": "string"}}}}
        }
    else:
        operation["responses"] = {"200": {"description": "HTML page", **_HTML}}
    if kind in ("staff", "csv"):
        operation["responses"]["302"] = {"description": "not logged in: to the login page"}
    operation["responses"].setdefault(
        "4XX", {"description": "refused: unknown page, stale form, too many attempts"}
    )
    return operation


def page_paths() -> dict[str, dict[str, Any]]:
    """OpenAPI path items of every page route."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, kind in ROUTES:
        paths.setdefault(path, {})[method] = _operation(method, path, summary, kind)
    return paths


SECURITY_SCHEMES = {
    "session": {"type": "apiKey", "in": "cookie", "name": "walletd_session"},
}
