"""The program's `email` setting as the API reads and shows it."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from walletd.web.schemas import Reply, Request, Text


class EmailSenderIn(Request):
    """Who the program's e-mails come from (the whole setting: it replaces the previous one)."""

    model_config = ConfigDict(extra="forbid")

    from_name: Text(200) | None = Field(  # type: ignore[valid-type]
        default=None, description="the display name; null: WALLETD_EMAIL_FROM's"
    )
    from_address: Text(320) | None = Field(  # type: ignore[valid-type]
        default=None,
        description="the sender address (the relay must be allowed to send for its domain: "
        "SPF/DKIM); null: WALLETD_EMAIL_FROM",
    )
    reply_to: Text(320) | None = Field(  # type: ignore[valid-type]
        default=None, description="where replies go; null: to the sender"
    )


class EmailSenderOut(Reply):
    """The program's sender; null fields use WALLETD_EMAIL_FROM."""

    from_name: str | None
    from_address: str | None
    reply_to: str | None
