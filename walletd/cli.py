"""The `flask --app walletd …` commands of the contract."""

from __future__ import annotations

import json
import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from walletd.errors import AuthenticationError
from walletd.loyalty import ledger
from walletd.loyalty.brands import authenticate, create_brand
from walletd.loyalty.context import Context
from walletd.schema import upgrade
from walletd.services import Services


def _services() -> Services:
    return current_app.extensions["walletd"]  # type: ignore[no-any-return]


def _context(svc: Services) -> Context:
    return Context(
        now=svc.clock(),
        secret_key=svc.settings.secret_key,
        google_enabled=svc.settings.google_enabled,
    )


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Apply all migrations to WALLETD_DATABASE_URL."""
    upgrade(_services().settings.database_url)
    click.echo("database is at the latest migration", err=True)


@click.command("create-brand")
@with_appcontext
@click.argument("name")
@click.option("--currency", default="USD", show_default=True, help="ISO 4217 code")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object and nothing else")
def create_brand_command(name: str, currency: str, as_json: bool) -> None:
    """Create a brand with a default loyalty program and its first API keys."""
    svc = _services()
    with svc.db.transaction() as session:
        creds = create_brand(session, name, now=svc.clock(), currency=currency.upper())
    data = {
        "brand_id": creds.brand_id,
        "program_id": creds.program_id,
        "admin_key": creds.admin_key,
        "cashier_key": creds.cashier_key,
    }
    if as_json:
        click.echo(json.dumps(data))
        return
    click.echo(f"brand {creds.brand_id} created with program {creds.program_id}")
    click.echo(f"admin key:   {creds.admin_key}")
    click.echo(f"cashier key: {creds.cashier_key}")
    click.echo("These keys are shown once; store them now.")


@click.command("verify-ledger")
@with_appcontext
def verify_ledger_command() -> None:
    """Recompute every balance from the ledger; exit 1 when a cached balance is wrong."""
    svc = _services()
    with svc.db.transaction() as session:
        mismatches = ledger.verify_ledger(session)
    for m in mismatches:
        click.echo(f"member {m.member_id}: cached {m.cached}, ledger says {m.ledger}")
    if mismatches:
        click.echo(f"{len(mismatches)} balance(s) disagree with the ledger", err=True)
        sys.exit(1)
    click.echo("every balance matches the ledger")


@click.command("expire-points")
@with_appcontext
def expire_points_command() -> None:
    """Expire due point lots now (the worker also does this nightly)."""
    svc = _services()
    total = 0
    while True:
        with svc.db.transaction() as session:
            changed = ledger.expire_due_lots(session, _context(svc))
        total += changed
        if changed == 0:
            break
    click.echo(f"expired points of {total} member(s)")


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Make sure a demo brand exists and print its keys, URLs and curl lines (development only)."""
    svc = _services()
    settings = svc.settings
    if settings.production:
        raise click.ClickException("the demo brand is for development, not production")
    path = settings.instance_path / "demo.json"
    creds: dict[str, object] | None = None
    if path.exists():
        creds = json.loads(path.read_text())
        with svc.db.transaction() as session:
            try:
                authenticate(session, str(creds["admin_key"]))
            except AuthenticationError:
                creds = None  # the database was reset: make a new demo brand
    if creds is None:
        with svc.db.transaction() as session:
            made = create_brand(session, "Demo Coffee", now=svc.clock())
        creds = {
            "brand_id": made.brand_id,
            "program_id": made.program_id,
            "admin_key": made.admin_key,
            "cashier_key": made.cashier_key,
        }
        settings.instance_path.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(creds, indent=2) + "\n")
        path.chmod(0o600)
    base = settings.base_url
    admin, cashier = creds["admin_key"], creds["cashier_key"]
    click.echo(
        f"""
walletd demo brand "Demo Coffee" (brand {creds["brand_id"]}, program {creds["program_id"]})
  server        {base}
  API docs      {base}/openapi.json
  admin key     {admin}
  cashier key   {cashier}
  (kept in {path} for development only)

Enroll a member:
  curl -s -X POST {base}/api/v1/members -H 'Authorization: Bearer {admin}' \\
       -H 'Content-Type: application/json' \\
       -d '{{"name": "Ada Lovelace", "email": "ada@example.com"}}'

Scan their card (use the "barcode" from the answer above):
  curl -s -X POST {base}/api/v1/scans -H 'Authorization: Bearer {cashier}' \\
       -H 'Content-Type: application/json' -H "Idempotency-Key: $(date +%s%N)" \\
       -d '{{"barcode": "<barcode>", "amount": "12.50"}}'
"""
    )


def init_app(app: Flask) -> None:
    """Register the commands on the app."""
    for command in (
        init_db_command,
        create_brand_command,
        verify_ledger_command,
        expire_points_command,
        demo_command,
    ):
        app.cli.add_command(command)
