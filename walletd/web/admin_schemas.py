"""Request and response models of the location, API key and staff routes."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StrictBool, WithJsonSchema

from walletd.web.schemas import Id, Reply, Request, Text, Timestamp


def _degrees(value: object) -> object:
    """A decimal as a JSON number or string; its range is the service's to judge."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError("must be a decimal number or a decimal string")
    if isinstance(value, str) and len(value) > 32:
        raise ValueError("must be a decimal number of degrees such as 25.033964")
    return value


def _coordinate(limit: int) -> Any:
    return Annotated[
        Any,
        BeforeValidator(_degrees),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "maxLength": 32,
                     "pattern": f"^-?[0-9]{{1,{len(str(limit))}}}(\\.[0-9]{{1,12}})?$"},
                    {"type": "number", "minimum": -limit, "maximum": limit},
                ],
                "description": f"degrees, -{limit} to {limit}; rounded to 6 decimals",
            },
            mode="validation",
        ),
    ]  # fmt: skip


Latitude = _coordinate(90)
Longitude = _coordinate(180)
TimeZone = Annotated[
    str,
    Field(max_length=64, description="IANA name such as Asia/Taipei; null: the program's zone"),
    WithJsonSchema({"type": "string", "maxLength": 64, "examples": ["Asia/Taipei"]}),
]
Role = Literal["admin", "cashier"]


# --- locations ----------------------------------------------------------------------------------


class LocationCreate(Request):
    """A shop or till; latitude and longitude come together or not at all."""

    name: Text(200, 1)  # type: ignore[valid-type]
    address: Text(500) | None = None  # type: ignore[valid-type]
    latitude: Latitude | None = None  # type: ignore[valid-type]
    longitude: Longitude | None = None  # type: ignore[valid-type]
    timezone: TimeZone | None = None


class LocationUpdate(LocationCreate):
    """Some fields of a location; null clears the address, the coordinates or the time zone."""

    name: Text(200, 1) | None = None  # type: ignore[valid-type]


class LocationOut(Reply):
    """A location of the brand."""

    id: int
    name: str
    address: str | None
    latitude: str | None = Field(description="degrees as a decimal string")
    longitude: str | None = Field(description="degrees as a decimal string")
    timezone: str | None = Field(description="IANA name; null: the program's time zone")
    created_at: Timestamp


class LocationList(Reply):
    """The brand's locations, oldest first."""

    locations: list[LocationOut]


# --- API keys -----------------------------------------------------------------------------------


class ApiKeyCreate(Request):
    """A new key: its role, a name people recognise, and optionally the till's location."""

    role: Role
    name: Text(200, 1)  # type: ignore[valid-type]
    location_id: Id | None = Field(
        default=None, description="scans with this key happen here unless they name a location"
    )


class ApiKeyOut(Reply):
    """An API key without its secret."""

    id: int
    prefix: str = Field(description="the key's first characters, to recognise it")
    role: str
    name: str
    location_id: int | None
    created_at: Timestamp
    last_used_at: Timestamp | None = Field(description="to the minute")
    revoked_at: Timestamp | None


class ApiKeyCreated(ApiKeyOut):
    """The new key: `key` is shown this once and cannot be shown again."""

    key: str


class ApiKeyList(Reply):
    """The brand's keys, newest first, revoked ones included."""

    api_keys: list[ApiKeyOut]


# --- staff --------------------------------------------------------------------------------------


class StaffCreate(Request):
    """Invite a staff member: the account gets a one-time link to choose a password."""

    email: Text(320, 3)  # type: ignore[valid-type]
    role: Role
    name: Text(200) | None = None  # type: ignore[valid-type]


class StaffUpdate(Request):
    """Change a staff account; a new role or disabling ends its sessions at once."""

    role: Role | None = None
    disabled: StrictBool | None = None
    name: Text(200) | None = None  # type: ignore[valid-type]


class StaffOut(Reply):
    """A staff account of the brand."""

    id: int
    email: str
    name: str | None
    role: str
    status: Literal["invited", "active", "disabled"]
    created_at: Timestamp
    last_login_at: Timestamp | None


class StaffInvited(StaffOut):
    """The invited account and its set-password link, shown to the admin this once."""

    set_password_url: str = Field(
        description="one-time link, valid 72 hours; e-mailed to the invitee when e-mail is on "
        '("emailed"), else send it yourself'
    )
    set_password_expires_at: Timestamp
    # [email-links]
    emailed: bool = Field(
        default=False, description="the link was also e-mailed to the invitee (e-mail is on)"
    )


class StaffList(Reply):
    """The brand's staff accounts, oldest first."""

    staff: list[StaffOut]
