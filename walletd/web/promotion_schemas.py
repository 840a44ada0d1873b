"""Request and response models of the promotion and stamp-card routes."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StrictBool, StrictInt, WithJsonSchema

from walletd.web.schemas import Amount, Id, IsoDate, Reply, Request, Text


def _multiplier(value: object) -> object:
    """A decimal as a JSON number or string; its range is the service's to judge."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError("must be a decimal number or a decimal string")
    if isinstance(value, str) and len(value) > 32:
        raise ValueError("must be a decimal such as 2 or 1.5")
    return value


Multiplier = Annotated[
    Any,
    BeforeValidator(_multiplier),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": 32, "pattern": "^[0-9]{1,2}(\\.[0-9]{1,4})?$"},
                {"type": "number", "exclusiveMinimum": 1, "maximum": 10},
            ],
            "description": "more than 1, at most 10, at most 4 decimals (e.g. 2 or 1.5)",
        },
        mode="validation",
    ),
]
Weekday = Annotated[StrictInt, Field(ge=1, le=7)]


class PromotionCreate(Request):
    """A promotion: a multiplier of earning, limited to days, weekdays, tiers and locations."""

    program_id: Id | None = Field(default=None, description="the brand's first program if absent")
    name: Text(200, 1)  # type: ignore[valid-type]
    multiplier: Multiplier
    starts_on: IsoDate | None = Field(default=None, description="first day, program's time zone")
    ends_on: IsoDate | None = Field(default=None, description="last day (inclusive)")
    weekdays: list[Weekday] | None = Field(
        default=None, max_length=7, description="ISO weekdays, 1 = Monday ... 7 = Sunday"
    )
    tiers: list[Text(64, 1)] | None = Field(  # type: ignore[valid-type]
        default=None, max_length=20, description="tier names of the program; empty = every tier"
    )
    location_ids: list[Id] | None = Field(
        default=None, max_length=100, description="the brand's locations; empty = everywhere"
    )
    active: StrictBool | None = None


class PromotionUpdate(PromotionCreate):
    """Some fields of a promotion; null clears a date or a restriction."""

    name: Text(200, 1) | None = None  # type: ignore[valid-type]
    multiplier: Multiplier | None = None


class PromotionOut(Reply):
    """A promotion of the brand."""

    id: int
    program_id: int
    name: str
    multiplier: str
    starts_on: IsoDate | None
    ends_on: IsoDate | None
    weekdays: list[int]
    tiers: list[str]
    location_ids: list[int]
    active: bool


class PromotionList(Reply):
    """The brand's promotions."""

    promotions: list[PromotionOut]


class StampsUpdate(Request):
    """A program's stamp card: N stamps (one per qualifying visit) issue the offer."""

    enabled: StrictBool
    stamps_per_reward: Annotated[StrictInt, Field(ge=2, le=50)]
    min_spend: Amount | None = None
    offer_id: Id | None = None


class StampsOut(Reply):
    """A program's stamp card settings."""

    program_id: int
    enabled: bool
    stamps_per_reward: int
    min_spend: str | None
    offer_id: int | None
