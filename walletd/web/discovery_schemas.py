"""Request and response models of a program's Google sign-up and store settings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StrictBool, StrictInt, field_validator

from walletd.loyalty import discovery
from walletd.web.schemas import Reply, Request, Text

SharedData = Literal[
    "FIRST_NAME", "LAST_NAME", "STREET_ADDRESS", "ADDRESS_LINE_1", "ADDRESS_LINE_2",
    "ADDRESS_LINE_3", "CITY", "STATE", "ZIPCODE", "COUNTRY", "EMAIL", "PHONE",
]  # fmt: skip
# Google's deprecated lower-case aliases are accepted and stored as the canonical name.
SignupState = Literal["TRUSTED_TESTERS", "LIVE", "DISABLED", "trustedTesters", "live", "disabled"]


class GoogleSignupIn(Request):
    """Sign-up from Google Wallet: the loyalty class offers the join page (Google enabled only)."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool = Field(description="offer sign-up; needs Google Wallet configured")
    shared_data: list[SharedData] = Field(
        default=["FIRST_NAME", "LAST_NAME", "EMAIL", "PHONE"],
        max_length=len(discovery.SHARED_DATA_TYPES),
        description="what Google Wallet shares with the join page (Google's SharedDataType); "
        "walletd prefills FIRST_NAME, LAST_NAME, EMAIL and PHONE",
    )
    state: SignupState = Field(
        default="TRUSTED_TESTERS",
        description="TRUSTED_TESTERS (your testers only), LIVE (after Google's review) or DISABLED",
    )

    @field_validator("shared_data")
    @classmethod
    def _once(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError("a shared data type is listed twice")
        return names


class GoogleSignupOut(Reply):
    """The program's Google Wallet sign-up settings."""

    enabled: bool
    shared_data: list[str]
    state: str


RelevantText = Text(discovery.MAX_RELEVANT_TEXT, 1)
MaxDistance = Annotated[StrictInt, Field(ge=discovery.MIN_DISTANCE, le=discovery.MAX_DISTANCE)]
