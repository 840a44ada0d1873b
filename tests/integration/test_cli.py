"""The `flask --app walletd …` commands of the contract."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import Result
from flask import Flask
from flask.cli import FlaskGroup
from sqlalchemy import create_engine, inspect, text

from tests.conftest import SECRET
from tests.factories import BrandKeys, FrozenClock, enroll, scan, services_of
from walletd import create_app
from walletd.config import Settings


def _invoke(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=list(args))


def test_create_brand_json_prints_exactly_one_object_with_working_keys(app: Flask) -> None:
    result = _invoke(app, "create-brand", "Acme Coffee", "--json")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()) == 1
    data = json.loads(result.stdout)
    assert set(data) == {"brand_id", "program_id", "admin_key", "cashier_key"}
    assert isinstance(data["brand_id"], int) and isinstance(data["program_id"], int)

    client = app.test_client()
    admin = {"Authorization": f"Bearer {data['admin_key']}"}
    cashier = {"Authorization": f"Bearer {data['cashier_key']}"}
    created = client.post("/api/v1/members", json={"name": "Ada"}, headers=admin)
    assert created.status_code == 201
    member = created.get_json()
    assert member["program_id"] == data["program_id"]
    assert client.post("/api/v1/members", json={"name": "Ada"}, headers=cashier).status_code == 403
    scanned = client.post(
        "/api/v1/scans",
        json={"barcode": member["card"]["barcode"], "amount": "5.00"},
        headers={**cashier, "Idempotency-Key": "k1"},
    )
    assert scanned.status_code == 201


def test_create_brand_without_json_prints_the_keys_for_people(app: Flask) -> None:
    result = _invoke(app, "create-brand", "Acme Coffee")
    assert result.exit_code == 0, result.output
    assert "admin key:" in result.stdout
    assert "cashier key:" in result.stdout


def test_create_brand_with_a_currency_uses_its_exponent(app: Flask) -> None:
    result = _invoke(app, "create-brand", "Sushi Bar", "--currency", "jpy", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    client = app.test_client()
    admin = {"Authorization": f"Bearer {data['admin_key']}"}
    barcode = client.post("/api/v1/members", json={"name": "Ada"}, headers=admin).get_json()[
        "card"
    ]["barcode"]
    response = client.post(
        "/api/v1/scans",
        json={"barcode": barcode, "amount": "1500"},
        headers={**admin, "Idempotency-Key": "k1"},
    )
    assert response.status_code == 201
    assert response.get_json()["amount"] == "1500"
    assert response.get_json()["currency"] == "JPY"


def test_verify_ledger_exits_1_after_a_balance_is_corrupted(app: Flask, brand: BrandKeys) -> None:
    client = app.test_client()
    member = enroll(client, brand)
    assert scan(client, brand, member["card"]["barcode"], "10.00", "k1").status_code == 201
    clean = _invoke(app, "verify-ledger")
    assert clean.exit_code == 0, clean.output

    with services_of(app).db.transaction() as session:
        session.execute(text("UPDATE members SET points = 1 WHERE id = :id"), {"id": member["id"]})
    corrupted = _invoke(app, "verify-ledger")
    assert corrupted.exit_code == 1
    assert f"member {member['id']}" in corrupted.stdout


def test_expire_points_expires_due_lots(app: Flask, brand: BrandKeys, clock: FrozenClock) -> None:
    client = app.test_client()
    member = enroll(client, brand)
    assert _invoke(app, "expire-points").exit_code == 0
    assert (
        client.get(f"/api/v1/members/{member['id']}", headers=brand.admin).get_json()["points"]
        == 50
    )
    clock.advance(days=400)
    result = _invoke(app, "expire-points")
    assert result.exit_code == 0, result.output
    assert (
        client.get(f"/api/v1/members/{member['id']}", headers=brand.admin).get_json()["points"] == 0
    )


def test_init_db_creates_the_tables_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    database = tmp_path / "fresh" / "walletd.db"
    url = f"sqlite:///{database}"
    settings = Settings(
        database_url=url,
        base_url="http://walletd.test",
        secret_key=SECRET,
        env="test",
        instance_path=tmp_path / "instance",
    )
    fresh = create_app(settings, clock=FrozenClock())
    try:
        result = _invoke(fresh, "init-db")
        assert result.exit_code == 0, result.output
        engine = create_engine(url)
        try:
            tables = set(inspect(engine).get_table_names())
        finally:
            engine.dispose()
        assert {"alembic_version", "brands", "api_keys", "members", "cards"} <= tables
        assert {"ledger_entries", "programs", "tiers", "rewards", "outbox"} <= tables

        assert _invoke(fresh, "init-db").exit_code == 0  # a second run changes nothing
        created = _invoke(fresh, "create-brand", "Acme Coffee", "--json")
        assert created.exit_code == 0, created.output
        assert json.loads(created.stdout)["brand_id"] == 1
    finally:
        services_of(fresh).close()


def test_commands_run_through_the_flask_group_as_on_the_command_line(app: Flask) -> None:
    # `flask --app walletd …` reaches the commands through FlaskGroup, not app.cli directly.
    runner = app.test_cli_runner()
    result = runner.invoke(FlaskGroup(load_dotenv=False), args=["create-brand", "Acme", "--json"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) == {"brand_id", "program_id", "admin_key", "cashier_key"}
    result = runner.invoke(FlaskGroup(load_dotenv=False), args=["verify-ledger"])
    assert result.exit_code == 0, result.output
