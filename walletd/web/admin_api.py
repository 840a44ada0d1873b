"""Locations, API keys and staff accounts under /api/v1 (admin keys); every change is audited."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, url_for
from sqlalchemy.orm import Session

from walletd.admin import accounts, keys, locations
from walletd.email import email_enabled  # [email-links]
from walletd.email_links.staff import email_password_link  # [email-links]
from walletd.models import ApiKey, Location, StaffUser
from walletd.web.admin_schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    LocationCreate,
    LocationList,
    LocationOut,
    LocationUpdate,
    StaffCreate,
    StaffInvited,
    StaffList,
    StaffOut,
    StaffUpdate,
)
from walletd.web.auth import principal
from walletd.web.deps import context, run_in_transaction, services
from walletd.web.endpoint import endpoint

bp = Blueprint("admin_api", __name__, url_prefix="/api/v1")
ADMIN = ("admin",)


def _no_content() -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]  # no body, so no media type to name
    return response


# --- locations ----------------------------------------------------------------------------------


def location_out(location: Location) -> LocationOut:
    """The API's location object."""
    return LocationOut(
        id=location.id,
        name=location.name,
        address=location.address,
        latitude=None if location.latitude is None else f"{location.latitude:f}",
        longitude=None if location.longitude is None else f"{location.longitude:f}",
        timezone=location.timezone,
        created_at=location.created_at,
    )


@bp.post("/locations")
@endpoint("Add a location (a shop or till)", tag="locations", roles=ADMIN, body=LocationCreate,
          response=LocationOut, status=201)  # fmt: skip
def create_location(body: LocationCreate) -> LocationOut:
    """Add a location to the brand."""
    actor, now = principal().actor, context().now
    data = body.model_dump(exclude_unset=True)
    return run_in_transaction(
        lambda s: location_out(  # [google-signup] ctx: a new store updates the cards
            locations.create_location(s, actor, data, now=now, ctx=context())
        )
    )


@bp.get("/locations")
@endpoint("The brand's locations", tag="locations", roles=ADMIN, response=LocationList)
def list_locations() -> LocationList:
    """Every location of the brand, oldest first."""
    brand_id = principal().brand_id
    rows = run_in_transaction(
        lambda s: [location_out(loc) for loc in locations.list_locations(s, brand_id)]
    )
    return LocationList(locations=rows)


@bp.patch("/locations/<int:location_id>")
@endpoint("Change a location (null clears an optional field)", tag="locations", roles=ADMIN,
          body=LocationUpdate, response=LocationOut)  # fmt: skip
def update_location(location_id: int, body: LocationUpdate) -> LocationOut:
    """Change some fields of a location."""
    actor, now = principal().actor, context().now
    data = body.model_dump(exclude_unset=True)
    return run_in_transaction(
        lambda s: location_out(  # [google-signup] ctx
            locations.update_location(s, actor, location_id, data, now=now, ctx=context())
        )
    )


@bp.delete("/locations/<int:location_id>")
@endpoint("Delete a location (its scans keep their points; 409 while live keys are bound)",
          tag="locations", roles=ADMIN, status=204, media_type="",
          other_responses={409: "live API keys are bound to the location"})  # fmt: skip
def delete_location(location_id: int) -> Response:
    """Delete a location; scans made there keep their points and lose the location."""
    actor, now = principal().actor, context().now
    run_in_transaction(  # [google-signup] ctx
        lambda s: locations.delete_location(s, actor, location_id, now=now, ctx=context())
    )
    return _no_content()


# --- API keys -----------------------------------------------------------------------------------


def key_out(api_key: ApiKey) -> dict[str, Any]:
    """The API's key object, without the secret."""
    return {
        "id": api_key.id,
        "prefix": api_key.prefix,
        "role": api_key.role,
        "name": api_key.label,
        "location_id": api_key.location_id,
        "created_at": api_key.created_at,
        "last_used_at": api_key.last_used_at,
        "revoked_at": api_key.revoked_at,
    }


@bp.post("/api-keys")
@endpoint("Issue an API key (the key is in this answer only)", tag="api-keys", roles=ADMIN,
          body=ApiKeyCreate, response=ApiKeyCreated, status=201)  # fmt: skip
def create_api_key(body: ApiKeyCreate) -> ApiKeyCreated:
    """Issue a key; only its hash is stored, so this answer is the only time it is shown."""
    actor, now = principal().actor, context().now

    def work(session: Session) -> ApiKeyCreated:
        api_key, key = keys.create_key(session, actor, role=body.role, name=body.name,
                                       location_id=body.location_id, now=now)  # fmt: skip
        return ApiKeyCreated(**key_out(api_key), key=key)

    return run_in_transaction(work)


@bp.get("/api-keys")
@endpoint("The brand's API keys with their last use", tag="api-keys", roles=ADMIN,
          response=ApiKeyList)  # fmt: skip
def list_api_keys() -> ApiKeyList:
    """Every key of the brand, newest first, revoked ones included; never the keys themselves."""
    brand_id = principal().brand_id
    rows = run_in_transaction(
        lambda s: [ApiKeyOut(**key_out(k)) for k in keys.list_keys(s, brand_id)]
    )
    return ApiKeyList(api_keys=rows)


@bp.delete("/api-keys/<int:key_id>")
@endpoint("Revoke an API key (refused from its next request on; 409 for the last admin key)",
          tag="api-keys", roles=ADMIN, status=204, media_type="",
          other_responses={409: "the brand's last live admin key"})  # fmt: skip
def revoke_api_key(key_id: int) -> Response:
    """Revoke a key; the key making this request may revoke itself."""
    actor, now = principal().actor, context().now
    run_in_transaction(lambda s: keys.revoke_key(s, actor, key_id, now=now))
    return _no_content()


# --- staff --------------------------------------------------------------------------------------


def staff_out(user: StaffUser) -> dict[str, Any]:
    """The API's staff object."""
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "status": accounts.status_of(user),
        "created_at": user.created_at,
        "last_login_at": user.last_login_at,
    }


def set_password_url(token: str) -> str:
    """The absolute one-time link an invitee opens to choose a password."""
    return services().settings.base_url + url_for("dashboard.set_password", token=token)


@bp.post("/staff")
@endpoint("Invite a staff member (answers a one-time set-password link)", tag="staff",
          roles=ADMIN, body=StaffCreate, response=StaffInvited, status=201,
          other_responses={409: "an account with this e-mail exists"})  # fmt: skip
def invite_staff(body: StaffCreate) -> StaffInvited:
    """Create an account without a password; the link is e-mailed when e-mail is on."""
    actor, now = principal().actor, context().now
    send = email_enabled(services().settings)  # [email-links]

    def work(session: Session) -> StaffInvited:
        link = accounts.invite_staff(session, actor, email=body.email, role=body.role,
                                     name=body.name, now=now)  # fmt: skip
        url = set_password_url(link.token)
        emailed = send and email_password_link(session, link, url, language=None, now=now)
        return StaffInvited(**staff_out(link.staff), set_password_url=url,
                            set_password_expires_at=link.expires_at,
                            emailed=bool(emailed))  # fmt: skip

    return run_in_transaction(work)


@bp.get("/staff")
@endpoint("The brand's staff accounts", tag="staff", roles=ADMIN, response=StaffList)
def list_staff() -> StaffList:
    """Every staff account of the brand, oldest first."""
    brand_id = principal().brand_id
    rows = run_in_transaction(
        lambda s: [StaffOut(**staff_out(u)) for u in accounts.list_staff(s, brand_id)]
    )
    return StaffList(staff=rows)


@bp.patch("/staff/<int:staff_id>")
@endpoint("Change a staff account's role, name or disabled state (ends its sessions)",
          tag="staff", roles=ADMIN, body=StaffUpdate, response=StaffOut,
          other_responses={409: "the brand's last admin account"})  # fmt: skip
def update_staff(staff_id: int, body: StaffUpdate) -> StaffOut:
    """Change a staff account; a new role or disabling logs it out at once."""
    actor, now = principal().actor, context().now
    changes = body.model_dump(exclude_unset=True)
    return run_in_transaction(
        lambda s: StaffOut(**staff_out(accounts.update_staff(s, actor, staff_id, changes,
                                                             now=now)))
    )  # fmt: skip


@bp.delete("/staff/<int:staff_id>")
@endpoint("Remove a staff account (its past entries keep naming it)", tag="staff", roles=ADMIN,
          status=204, media_type="",
          other_responses={409: "the brand's last admin account"})  # fmt: skip
def delete_staff(staff_id: int) -> Response:
    """Remove a staff account; its sessions end at once."""
    actor, now = principal().actor, context().now
    run_in_transaction(lambda s: accounts.delete_staff(s, actor, staff_id, now=now))
    return _no_content()
