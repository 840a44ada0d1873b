"""How a program is found outside walletd: sign-up from Google Wallet, and the brand's stores on
its cards (Apple `locations`, Google `merchantLocations`), so cards surface near the shops."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from walletd.errors import N_, ValidationError
from walletd.loyalty.context import Context
from walletd.loyalty.programs import touch_program_cards
from walletd.models import Card, Location, Member, Program, ProgramDiscovery
from walletd.push.outbox import GOOGLE_OBJECT, enqueue

# DiscoverableProgramMerchantSignupInfo.signupSharedDatas in Google's discovery document, without
# SHARED_DATA_TYPE_UNSPECIFIED.
SHARED_DATA_TYPES = (
    "FIRST_NAME", "LAST_NAME", "STREET_ADDRESS", "ADDRESS_LINE_1", "ADDRESS_LINE_2",
    "ADDRESS_LINE_3", "CITY", "STATE", "ZIPCODE", "COUNTRY", "EMAIL", "PHONE",
)  # fmt: skip
# DiscoverableProgram.state; Google's deprecated lower-case aliases are read as the canonical name.
SIGNUP_STATES = ("TRUSTED_TESTERS", "LIVE", "DISABLED")
STATE_ALIASES: Mapping[str, str] = {
    "trustedTesters": "TRUSTED_TESTERS",
    "live": "LIVE",
    "disabled": "DISABLED",
}
DEFAULT_SHARED_DATA = ("FIRST_NAME", "LAST_NAME", "EMAIL", "PHONE")
# Apple and Google both take at most ten locations on a pass or class.
MAX_STORES = 10
MAX_RELEVANT_TEXT = 100
# Wallet uses the smaller of maxDistance and its own default (about 100 m for store cards), and
# developers report values under ~100 m ignored: 10 m to 10 km covers every useful choice.
MIN_DISTANCE, MAX_DISTANCE = 10, 10_000
FIELDS = frozenset({"google_signup", "location_relevant_text", "location_max_distance"})
# The settings on a card: a change re-renders every card of the program.
ON_CARDS = frozenset({"location_relevant_text", "location_max_distance"})
JOIN_PATH = "/join/{program_id}/google"
RECOVER_PATH = "/join/{program_id}/recover"


@dataclass(frozen=True)
class Store:
    """One shop on a card: where it is and what the lock screen says near it."""

    latitude: float
    longitude: float
    relevant_text: str


def find_discovery(session: Session, program_id: int) -> ProgramDiscovery | None:
    """The program's discovery settings, or None while it has the defaults."""
    return session.get(ProgramDiscovery, program_id)


def settings_of(session: Session, program_id: int) -> dict[str, Any]:
    """The discovery settings as the program settings API shows them."""
    row = find_discovery(session, program_id)
    if row is None:
        return {
            "google_signup": {
                "enabled": False,
                "shared_data": list(DEFAULT_SHARED_DATA),
                "state": "TRUSTED_TESTERS",
            },
            "location_relevant_text": None,
            "location_max_distance": None,
        }
    return {
        "google_signup": {
            "enabled": row.google_signup_enabled,
            "shared_data": _shared_list(row.google_signup_shared_data),
            "state": row.google_signup_state,
        },
        "location_relevant_text": row.location_relevant_text,
        "location_max_distance": row.location_max_distance,
    }


def _shared_list(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


def apply_settings(
    session: Session, program: Program, changes: Mapping[str, Any], ctx: Context
) -> None:
    """Validate and store the discovery settings among `changes` (others are ignored)."""
    mine = {key: changes[key] for key in FIELDS if key in changes}
    if not mine:
        return
    row = find_discovery(session, program.id)
    if row is None:
        row = ProgramDiscovery(
            program_id=program.id,
            google_signup_enabled=False,
            google_signup_shared_data=",".join(DEFAULT_SHARED_DATA),
            google_signup_state="TRUSTED_TESTERS",
            updated_at=ctx.now,
        )
        session.add(row)
    if "google_signup" in mine:
        enabled, shared, state = _parse_signup(mine["google_signup"], ctx)
        row.google_signup_enabled = enabled
        row.google_signup_shared_data = ",".join(shared)
        row.google_signup_state = state
        queue_class_sync(session, program.id, ctx)
    if "location_relevant_text" in mine:
        row.location_relevant_text = _relevant_text(mine["location_relevant_text"])
    if "location_max_distance" in mine:
        row.location_max_distance = _distance(mine["location_max_distance"])
    row.updated_at = ctx.now


def queue_class_sync(session: Session, program_id: int, ctx: Context) -> None:
    """Have the worker bring the program's Google class up to date soon.

    A class is synced before the first object delivery of its program; sign-up settings show on
    no card, so one card's object row (a balance PATCH that changes nothing) carries the class
    sync instead of pushing every card. A program without cards gets its class with its first.
    """
    if not ctx.google_enabled:
        return
    first = session.execute(
        select(Card.id, Card.serial_number)
        .join(Member, Member.id == Card.member_id)
        .where(Member.program_id == program_id, Card.kind == "loyalty")
        .order_by(Card.id)
        .limit(1)
    ).first()
    if first is not None:
        card_id, serial = first
        enqueue(
            session,
            [
                {
                    "kind": GOOGLE_OBJECT,
                    "dedupe_key": f"{GOOGLE_OBJECT}:{serial}",
                    "payload": {"card_id": card_id},
                }
            ],
            now=ctx.now,
        )


def _parse_signup(value: Any, ctx: Context) -> tuple[bool, list[str], str]:
    field = "google_signup"
    if not isinstance(value, Mapping):
        raise ValidationError(
            'google_signup must be {"enabled", "shared_data", "state"}', field=field
        )
    unknown = set(value) - {"enabled", "shared_data", "state"}
    if unknown:
        raise ValidationError("not a google_signup setting", field=f"{field}.{sorted(unknown)[0]}")
    enabled = value.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ValidationError("enabled must be true or false", field=f"{field}.enabled")
    if enabled and not ctx.google_enabled:
        raise ValidationError(
            "Google Wallet is not configured on this server (WALLETD_GOOGLE_ISSUER_ID and "
            "WALLETD_GOOGLE_CREDENTIALS): sign-up from Google Wallet needs it",
            field=f"{field}.enabled",
        )
    shared = value.get("shared_data", list(DEFAULT_SHARED_DATA))
    if not isinstance(shared, list | tuple):
        raise ValidationError("shared_data must be a list", field=f"{field}.shared_data")
    for index, name in enumerate(shared):
        if name not in SHARED_DATA_TYPES:
            raise ValidationError(
                N_("{name} is not one of Google's shared data types ({choices})"),
                field=f"{field}.shared_data.{index}",
                params={"name": str(name)[:40], "choices": ", ".join(SHARED_DATA_TYPES)},
            )
    if len(set(shared)) != len(shared):
        raise ValidationError("a shared data type is listed twice", field=f"{field}.shared_data")
    state = value.get("state", "TRUSTED_TESTERS")
    state = STATE_ALIASES.get(state, state) if isinstance(state, str) else state
    if state not in SIGNUP_STATES:
        raise ValidationError(
            "state must be TRUSTED_TESTERS, LIVE or DISABLED", field=f"{field}.state"
        )
    return enabled, list(shared), str(state)


def _relevant_text(value: Any) -> str | None:
    if value is None:
        return None
    field = "location_relevant_text"
    if not isinstance(value, str):
        raise ValidationError("location_relevant_text must be text or null", field=field)
    text = value.strip()
    if not text:
        return None
    if len(text) > MAX_RELEVANT_TEXT or not text.isprintable():
        raise ValidationError(
            N_("{field} must be 1 to {max} printable characters"),
            field=field,
            params={"field": field, "max": MAX_RELEVANT_TEXT},
        )
    return text


def _distance(value: Any) -> int | None:
    if value is None:
        return None
    field = "location_max_distance"
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (MIN_DISTANCE <= value <= MAX_DISTANCE)
    ):
        raise ValidationError(
            N_("{field} must be a whole number from {low} to {high}"),
            field=field,
            params={"field": field, "low": MIN_DISTANCE, "high": f"{MAX_DISTANCE:,}"},
        )
    return value


# --- stores on the cards ------------------------------------------------------------------------


def store_locations(session: Session, brand_id: int) -> list[Location]:
    """The brand's first ten locations with coordinates, oldest first (what the cards carry).

    walletd does not know where a member is, so "nearest" is the brand's own order: the oldest
    shops first. A brand with more than ten shops lists its main ones first.
    """
    return list(
        session.scalars(
            select(Location)
            .where(
                Location.brand_id == brand_id,
                Location.latitude.is_not(None),
                Location.longitude.is_not(None),
            )
            .order_by(Location.id)
            .limit(MAX_STORES)
        ).all()
    )


def stores_of(session: Session, program: Program) -> tuple[tuple[Store, ...], int | None]:
    """The stores a card of the program carries, and the maxDistance in metres (or None)."""
    row = find_discovery(session, program.id)
    text = row.location_relevant_text if row is not None else None
    stores = tuple(
        Store(
            latitude=float(location.latitude),
            longitude=float(location.longitude),
            relevant_text=text or location.name,
        )
        for location in store_locations(session, program.brand_id)
        if location.latitude is not None and location.longitude is not None
    )
    return stores, (row.location_max_distance if row is not None and stores else None)


def refresh_store_cards(session: Session, brand_id: int, ctx: Context) -> int:
    """A store with coordinates changed: every card of the brand shows the new list.

    The Google classes are marked for their next sync (they carry the stores as
    merchantLocations) and every card is pushed through the normal path, as a program settings
    change does; returns how many cards were touched.
    """
    touched = 0
    programs = session.scalars(select(Program).where(Program.brand_id == brand_id)).all()
    for program in programs:
        program.updated_at = ctx.now
        program.google_class_synced_at = None
    session.flush()
    for program_id in [program.id for program in programs]:
        touched += touch_program_cards(session, program_id, ctx)
    return touched


def store_fields_changed(changes: Mapping[str, Any], *, had_coordinates: bool) -> bool:
    """Whether a location change shows on the cards: its coordinates, or the name of a store."""
    if "latitude" in changes or "longitude" in changes:
        return True
    return had_coordinates and "name" in changes


# --- the Google class ---------------------------------------------------------------------------


def class_fields(session: Session, program: Program, *, base_url: str) -> dict[str, Any]:
    """What the program's Google loyalty class carries besides its look: the discoverable
    program (sign-up from Google Wallet) and the stores as merchantLocations."""
    fields: dict[str, Any] = {}
    row = find_discovery(session, program.id)
    if row is not None and row.google_signup_enabled:
        signup: dict[str, Any] = {
            "signupWebsite": {"uri": signup_url(base_url, program.id)},
        }
        shared = _shared_list(row.google_signup_shared_data)
        if shared:
            signup["signupSharedDatas"] = shared
        fields["discoverableProgram"] = {
            "merchantSignupInfo": signup,
            "merchantSigninInfo": {"signinWebsite": {"uri": signin_url(base_url, program.id)}},
            "state": row.google_signup_state,
        }
    elif row is not None:
        # Sign-up was switched off after Google had it: say so instead of leaving it listed.
        fields["discoverableProgram"] = {"state": "DISABLED"}
    stores, _ = stores_of(session, program)
    fields["merchantLocations"] = [
        {"latitude": store.latitude, "longitude": store.longitude} for store in stores
    ]
    return fields


def signup_url(base_url: str, program_id: int) -> str:
    """The join page Google Wallet opens (and posts the shared data to) for sign-up."""
    return f"{base_url}{JOIN_PATH.format(program_id=program_id)}"


def signin_url(base_url: str, program_id: int) -> str:
    """The page Google Wallet opens for an existing member: find a lost card."""
    return f"{base_url}{RECOVER_PATH.format(program_id=program_id)}"
