"""The `flask --app walletd …` commands of the contract."""

from __future__ import annotations

import json
import signal
import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from walletd import jobs
from walletd.errors import AuthenticationError
from walletd.loyalty import ledger
from walletd.loyalty.brands import authenticate, create_brand
from walletd.passes.certs import check_certs, ensure_dev_certs, read_dev_identity, write_dev_certs
from walletd.schema import upgrade
from walletd.services import Services


def _services() -> Services:
    return current_app.extensions["walletd"]  # type: ignore[no-any-return]


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
    total = jobs.expire_points(_services())
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


@click.command("dev-certs")
@with_appcontext
@click.option("--if-missing", is_flag=True, help="keep existing certificates that still work")
def dev_certs_command(if_missing: bool) -> None:
    """Write a development CA, WWDR-like intermediate and Pass Type ID certificate."""
    directory = _services().settings.apple_cert.parent
    writer = ensure_dev_certs if if_missing else write_dev_certs
    paths = writer(directory)
    click.echo(
        f"development certificates in {paths.directory} (pass type id {paths.pass_type_id}, "
        f"team {paths.team_id}).\nPasses signed with them will NOT install on a real iPhone; "
        "configure real Apple certificates for that (see README).",
        err=True,
    )


@click.command("check-certs")
@with_appcontext
@click.option("--warn-days", default=30, show_default=True, help="warn this long before expiry")
def check_certs_command(warn_days: int) -> None:
    """Validate the Apple certificate chain, identifiers and expiry; exit 1 on a problem."""
    settings = _services().settings
    identity = read_dev_identity(settings.apple_cert.parent) or ("", "")
    findings = check_certs(
        cert_path=settings.apple_cert,
        key_path=settings.apple_key,
        key_password=settings.apple_key_password or None,
        wwdr_path=settings.apple_wwdr,
        pass_type_id=settings.apple_pass_type_id or identity[0],
        team_id=settings.apple_team_id or identity[1],
        now=_services().clock(),
        warn_days=warn_days,
    )
    for finding in findings:
        click.echo(f"{finding.level.upper()}: {finding.message}")
    errors = [f for f in findings if f.level == "error"]
    if errors:
        sys.exit(1)
    click.echo("certificates OK" + (" (with warnings)" if findings else ""))


@click.command("worker")
@click.option(
    "--no-scheduler",
    is_flag=True,
    help="Deliver only (outbox, campaigns, offer issues, imports); run no scheduled jobs.",
)
@with_appcontext
def worker_command(no_scheduler: bool) -> None:
    """Run the push dispatcher and the scheduler until SIGTERM (in-flight work finishes)."""
    from walletd.observability.logs import configure_logging
    from walletd.worker import Worker

    configure_logging()

    worker = Worker(_services(), schedule=not no_scheduler)

    def stop(signum: int, frame: object) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run()


@click.command("drain-outbox")
@with_appcontext
def drain_outbox_command() -> None:
    """Deliver everything due in the outbox once, then exit."""
    from walletd.worker import build_dispatcher

    handled = build_dispatcher(_services()).drain()
    click.echo(f"delivered {handled} outbox row(s)")


@click.command("serve")
def serve_command() -> None:
    """Serve the web app with granian (WEB_CONCURRENCY, GUNICORN_THREADS, GUNICORN_BIND or PORT)."""
    from walletd.serve import serve

    try:
        serve()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


def init_app(app: Flask) -> None:
    """Register the commands on the app."""
    for command in (
        serve_command,
        init_db_command,
        create_brand_command,
        verify_ledger_command,
        expire_points_command,
        demo_command,
        dev_certs_command,
        check_certs_command,
        worker_command,
        drain_outbox_command,
        create_staff_command,
        google_sync_command,
    ):
        app.cli.add_command(command)
    # issue 13 [package]: `walletd db current|history|downgrade` (walletd/cli_db.py).
    from walletd import cli_db

    cli_db.init_app(app)


@click.command("google-sync")
@with_appcontext
def google_sync_command() -> None:
    """Push stale Google classes now, queue cards Google never got, prune old bookkeeping."""
    from walletd.push import google_sync
    from walletd.push.google_channel import google_channel

    svc = _services()
    if not svc.settings.google_enabled:
        raise click.ClickException(
            "Google Wallet is not configured (WALLETD_GOOGLE_ISSUER_ID, WALLETD_GOOGLE_CREDENTIALS)"
        )
    channel = svc.adapter("google_channel", lambda: google_channel(svc))
    classes = channel.sync_classes(svc.db)
    now = svc.clock()
    with svc.db.transaction() as session:
        queued = google_sync.queue_unsynced_cards(session, now=now)
        pruned = google_sync.prune_bookkeeping(session, now=now)
    click.echo(
        f"{classes} Google class(es) synced, {queued} card(s) queued for their first sync, "
        f"{pruned} old record(s) pruned; the worker delivers the queued cards"
    )


@click.command("create-staff")
@with_appcontext
@click.argument("email")
@click.option("--brand-id", type=int, required=True, help="the brand the account belongs to")
@click.option("--role", type=click.Choice(["admin", "cashier"]), default="admin", show_default=True)
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    envvar="WALLETD_STAFF_PASSWORD",
    help="read from WALLETD_STAFF_PASSWORD or asked for; never pass it on the command line",
)
def create_staff_command(email: str, brand_id: int, role: str, password: str) -> None:
    """Create a staff account for the dashboard (admin) or the cashier page (cashier)."""
    from walletd.errors import WalletdError
    from walletd.loyalty.staff import create_staff

    svc = _services()
    try:
        with svc.db.transaction() as session:
            user = create_staff(session, brand_id, email, password, role, now=svc.clock())
            staff_id, address = user.id, user.email
    except WalletdError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"staff account {staff_id} ({address}, {role}) created for brand {brand_id}")
