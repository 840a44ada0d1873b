"""The migrations build exactly the models' schema, and go down and up again keeping every row."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import create_engine, text

from tests.factories import BrandKeys, enroll, scan
from walletd.db import Base
from walletd.schema import downgrade, upgrade


def test_the_migrated_database_matches_the_models(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diffs = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diffs == []


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in ("members", "cards", "ledger_entries", "programs", "tiers")
            }
    finally:
        engine.dispose()


def test_offers_migration_goes_down_and_up_keeping_members_and_cards(
    app: Flask, brand: BrandKeys, database_url: str
) -> None:
    client = app.test_client()
    member = enroll(client, brand)
    assert scan(client, brand, member["card"]["barcode"], "12.50", "m-1").status_code == 201
    before = _counts(database_url)
    assert before["members"] == 1 and before["cards"] == 1
    app.extensions["walletd"].close()
    downgrade(database_url, "0006")
    assert _counts(database_url) == before
    upgrade(database_url)
    assert _counts(database_url) == before
