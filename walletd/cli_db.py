"""`walletd db current|history|downgrade` and `walletd worker-health`: the schema's migration
state and a worker's liveness, for operators and container health checks."""

from __future__ import annotations

import socket
import sys
from datetime import timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select
from sqlalchemy.engine import make_url

from walletd import schema
from walletd.models import WorkerHeartbeat
from walletd.services import Services

db_group = AppGroup("db", help="The database's migrations: where it is, what exists, going back.")


def _services() -> Services:
    return current_app.extensions["walletd"]  # type: ignore[no-any-return]


def _shown_url(url: str) -> str:
    """The database URL without its password, fit to print."""
    return make_url(url).render_as_string(hide_password=True)


@db_group.command("current")
@click.option("--check", is_flag=True, help="exit 1 unless the database is at the newest migration")
def current_command(check: bool) -> None:
    """Print the migration the database is at and the newest one shipped."""
    url = _services().settings.database_url
    head = schema.head_revision()
    current = schema.current_revisions(url)
    if not current:
        click.echo(f"no migration applied (newest is {head}); run `walletd init-db`")
    for revision in current:
        click.echo(f"{revision}{' (head)' if revision == head else f' (newest is {head})'}")
    if check and current != (head,):
        sys.exit(1)


@db_group.command("history")
def history_command() -> None:
    """List the shipped migrations, the newest first, marking the database's current one."""
    current = set(schema.current_revisions(_services().settings.database_url))
    for script in schema.history():
        marks = [
            m for m, on in (("head", script.is_head), ("current", script.revision in current)) if on
        ]
        suffix = f" ({', '.join(marks)})" if marks else ""
        title = next(iter((script.doc or "").strip().splitlines()), "")
        click.echo(f"{script.revision}  {title}{suffix}")


@db_group.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def downgrade_command(revision: str, yes: bool) -> None:
    """Undo migrations down to REVISION (a migration id, or `base` for an empty database)."""
    url = _services().settings.database_url
    try:
        target = schema.resolve_revision(revision)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="REVISION") from exc
    current = schema.current_revisions(url)
    if not current:
        raise click.ClickException("the database has no migration applied: nothing to undo")
    if target in current:
        click.echo(f"the database is already at {target}")
        return
    if target is not None and not any(
        target in {s.revision for s in schema.scripts().iterate_revisions(rev, "base")}
        for rev in current
    ):
        raise click.BadParameter(
            f"{target} is not below the database's current migration ({', '.join(current)})",
            param_hint="REVISION",
        )
    if not yes:
        click.confirm(
            f"Downgrade {_shown_url(url)} from {', '.join(current)} to {target or 'base'}? "
            "Tables and columns added since then are dropped with their data",
            abort=True,
        )
    # Connections of this process would hold SQLite's lock or Postgres's table locks.
    _services().close()
    schema.downgrade(url, target or "base")
    click.echo(f"database is at {target or 'base'}", err=True)


@click.command("worker-health")
@with_appcontext
@click.option("--max-age", default=60, show_default=True, help="seconds a heartbeat stays fresh")
@click.option(
    "--any-host", is_flag=True, help="accept any worker's heartbeat, not only this host's"
)
def worker_health_command(max_age: int, any_host: bool) -> None:
    """Exit 0 when a worker on this host (or any, with --any-host) beat within --max-age seconds."""
    svc = _services()
    query = select(WorkerHeartbeat.seen_at).order_by(WorkerHeartbeat.seen_at.desc()).limit(1)
    hostname = socket.gethostname()
    if not any_host:
        query = query.where(WorkerHeartbeat.hostname == hostname)
    with svc.db.transaction() as session:
        seen_at = session.scalars(query).first()
    where = "any host" if any_host else f"host {hostname}"
    if seen_at is None:
        click.echo(f"unhealthy: no worker heartbeat from {where}")
        sys.exit(1)
    age = svc.clock() - seen_at
    if age > timedelta(seconds=max_age):
        click.echo(
            f"unhealthy: the newest heartbeat from {where} is {age.total_seconds():.0f} s old"
        )
        sys.exit(1)
    click.echo(f"healthy: a worker on {where} beat {max(age.total_seconds(), 0):.0f} s ago")


def init_app(app: Flask) -> None:
    """Register the `db` command group and `worker-health` on the app."""
    app.cli.add_command(db_group)
    app.cli.add_command(worker_health_command)
