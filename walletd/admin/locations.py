"""A brand's locations (shops, tills): name, address, coordinates and time zone."""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from walletd.audit import Actor, record
from walletd.errors import N_, ConflictError, NotFoundError, ValidationError
from walletd.loyalty import discovery  # [google-signup]
from walletd.loyalty.context import Context  # [google-signup]
from walletd.models import ApiKey, Location

MAX_ID = 2**31 - 1
MAX_LOCATIONS = 1000
FIELDS = ("name", "address", "latitude", "longitude", "timezone")
# Six decimals of a degree are about 11 cm: more precision than any shop needs; GPS readings
# with more digits are rounded, not refused.
_COORDINATE = Decimal("0.000001")


@functools.cache
def _zone_names() -> frozenset[str]:
    # Read once: the list comes from the file system (or tzdata) and never changes in a process.
    return frozenset(zoneinfo.available_timezones())


def _text(value: object, field: str, max_length: int, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise ValidationError(N_("{field} is required"), field=field, params={"field": field})
        return None
    if not isinstance(value, str):
        raise ValidationError(N_("{field} must be text"), field=field, params={"field": field})
    text = value.strip()
    if not text:
        if required:
            raise ValidationError(
                N_("{field} must be 1 to {max} characters"),
                field=field,
                params={"field": field, "max": max_length},
            )
        return None
    if len(text) > max_length or not text.replace("\n", " ").isprintable():
        raise ValidationError(
            f"{field} must be 1 to {max_length} printable characters", field=field
        )
    return text


def _coordinate(value: object, field: str, limit: int) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValidationError(
            N_("{field} must be a decimal number"), field=field, params={"field": field}
        )
    if isinstance(value, str) and len(value) > 32:
        raise ValidationError(
            N_("{field} must be a decimal number of degrees"), field=field, params={"field": field}
        )
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValidationError(
            N_("{field} must be a decimal number"), field=field, params={"field": field}
        ) from None
    # Range first: quantizing 1e999999 would be slow and pointless.
    if not number.is_finite() or not -limit <= number <= limit:
        raise ValidationError(
            N_("{field} must be between -{limit} and {limit}"),
            field=field,
            params={"field": field, "limit": limit},
        )
    return number.quantize(_COORDINATE, rounding=ROUND_HALF_EVEN)


def _timezone(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in _zone_names():
        raise ValidationError(
            "timezone must be an IANA time zone such as Asia/Taipei", field="timezone"
        )
    return value


def _apply(location: Location, data: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Set the given fields; returns {field: [before, after]} of what changed."""
    parsed: dict[str, Any] = {}
    if "name" in data:
        parsed["name"] = _text(data["name"], "name", 200, required=True)
    if "address" in data:
        parsed["address"] = _text(data["address"], "address", 500, required=False)
    if "latitude" in data:
        parsed["latitude"] = _coordinate(data["latitude"], "latitude", 90)
    if "longitude" in data:
        parsed["longitude"] = _coordinate(data["longitude"], "longitude", 180)
    if "timezone" in data:
        parsed["timezone"] = _timezone(data["timezone"])
    latitude = parsed.get("latitude", location.latitude)
    longitude = parsed.get("longitude", location.longitude)
    if (latitude is None) != (longitude is None):
        field = "longitude" if latitude is not None else "latitude"
        raise ValidationError("give both latitude and longitude, or neither", field=field)
    changes: dict[str, list[Any]] = {}
    for name, value in parsed.items():
        before = getattr(location, name)
        if before != value:
            changes[name] = [_plain(before), _plain(value)]
            setattr(location, name, value)
    return changes


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def list_locations(session: Session, brand_id: int) -> list[Location]:
    """A brand's locations, oldest first."""
    return list(
        session.scalars(select(Location).where(Location.brand_id == brand_id).order_by(Location.id))
    )


def get_location(session: Session, brand_id: int, location_id: int) -> Location:
    """A brand's location; another brand's is not found."""
    if not 0 < location_id <= MAX_ID:
        raise NotFoundError("location not found")
    location = session.scalar(
        select(Location).where(Location.id == location_id, Location.brand_id == brand_id)
    )
    if location is None:
        raise NotFoundError("location not found")
    return location


def check_location_id(session: Session, brand_id: int, location_id: object, field: str) -> int:
    """A location id of the brand given in a body or query: 422 on `field` when it is not one."""
    if isinstance(location_id, bool) or not isinstance(location_id, int):
        raise ValidationError(
            N_("{field} must be an integer id"), field=field, params={"field": field}
        )
    try:
        return get_location(session, brand_id, location_id).id
    except NotFoundError:
        raise ValidationError(
            N_("{field} is not a location of this brand"), field=field, params={"field": field}
        ) from None


def create_location(
    session: Session,
    actor: Actor,
    data: Mapping[str, Any],
    *,
    now: datetime,
    ctx: Context | None = None,
) -> Location:
    """Add a location to the actor's brand (name required; coordinates both or neither).

    With `ctx`, a store with coordinates updates the brand's cards (they carry the stores).
    """
    count = session.scalar(
        select(func.count()).select_from(Location).where(Location.brand_id == actor.brand_id)
    )
    if (count or 0) >= MAX_LOCATIONS:
        raise ConflictError(
            N_("a brand has at most {max} locations"), params={"max": MAX_LOCATIONS}
        )
    location = Location(brand_id=actor.brand_id, name="", created_at=now, updated_at=now)
    changes = _apply(location, {"name": None, **data})
    session.add(location)
    session.flush()
    record(session, actor, "location.created", "location", location.id, now=now,
           changes=changes)  # fmt: skip
    if ctx is not None and location.latitude is not None:  # [google-signup]
        discovery.refresh_store_cards(session, actor.brand_id, ctx)
    return location


def update_location(
    session: Session,
    actor: Actor,
    location_id: int,
    data: Mapping[str, Any],
    *,
    now: datetime,
    ctx: Context | None = None,
) -> Location:
    """Change some fields of a location; null clears the address, coordinates or time zone.

    With `ctx`, a change the cards show (coordinates, a store's name) updates the brand's cards.
    """
    location = get_location(session, actor.brand_id, location_id)
    had_coordinates = location.latitude is not None  # [google-signup]
    changes = _apply(location, data)
    if changes:
        location.updated_at = now
        record(session, actor, "location.updated", "location", location.id, now=now,
               changes=changes)  # fmt: skip
        if ctx is not None and discovery.store_fields_changed(  # [google-signup]
            changes, had_coordinates=had_coordinates
        ):
            discovery.refresh_store_cards(session, actor.brand_id, ctx)
    return location


def delete_location(
    session: Session,
    actor: Actor,
    location_id: int,
    *,
    now: datetime,
    ctx: Context | None = None,
) -> None:
    """Delete a location; its scans keep their points and lose the location (SET NULL).

    With `ctx`, deleting a store with coordinates updates the brand's cards.

    Refused while a live API key is bound to it: that till's scans would silently lose their
    location. Revoke the key first (revoked keys just lose the binding).
    """
    location = get_location(session, actor.brand_id, location_id)
    bound = session.scalars(
        select(ApiKey).where(ApiKey.brand_id == actor.brand_id, ApiKey.location_id == location.id)
    ).all()
    if any(key.revoked_at is None for key in bound):
        raise ConflictError(
            "API keys are bound to this location: revoke them first", field="location_id"
        )
    for key in bound:
        key.location_id = None
    record(session, actor, "location.deleted", "location", location.id, now=now,
           changes={"name": [location.name, None]})  # fmt: skip
    was_store = location.latitude is not None  # [google-signup]
    session.delete(location)
    session.flush()
    if ctx is not None and was_store:  # [google-signup]
        discovery.refresh_store_cards(session, actor.brand_id, ctx)
