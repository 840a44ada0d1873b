"""`walletd db …`: the schema's migration state (issue 13, part package fills this in)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the `db` command group on the app."""
