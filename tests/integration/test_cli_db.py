"""`walletd db current|history|downgrade`, `walletd worker-health` and the `walletd` command."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask

from tests.conftest import SECRET
from tests.factories import FrozenClock, services_of
from walletd import schema
from walletd.console import cli
from walletd.models import WorkerHeartbeat

HEAD = schema.head_revision()
BELOW_HEAD = schema.history()[1].revision


def _invoke(app: Flask, *args: str, answer: str | None = None) -> Result:
    return app.test_cli_runner().invoke(args=list(args), input=answer)


@pytest.fixture
def restored(app: Flask, database_url: str) -> Iterator[Flask]:
    """The app, with its database migrated back to the newest revision after the test."""
    yield app
    services_of(app).close()
    schema.upgrade(database_url)


def test_db_current_names_the_newest_migration_on_a_migrated_database(app: Flask) -> None:
    result = _invoke(app, "db", "current", "--check")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{HEAD} (head)\n"


def test_db_history_lists_every_migration_newest_first_marking_the_current_one(
    app: Flask,
) -> None:
    result = _invoke(app, "db", "history")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [s.revision for s in schema.history()]
    assert lines[0].endswith("(head, current)")
    assert lines[-1].startswith("0001  ")


def test_db_downgrade_asks_first_and_a_no_changes_nothing(app: Flask, database_url: str) -> None:
    result = _invoke(app, "db", "downgrade", BELOW_HEAD, answer="n\n")
    assert result.exit_code == 1
    assert "Tables and columns added since then are dropped" in result.output
    assert "Aborted" in result.output
    assert schema.current_revisions(database_url) == (HEAD,)


def test_db_downgrade_confirmed_goes_down_and_current_check_then_fails(
    restored: Flask, database_url: str
) -> None:
    result = _invoke(restored, "db", "downgrade", BELOW_HEAD, answer="y\n")
    assert result.exit_code == 0, result.output
    assert schema.current_revisions(database_url) == (BELOW_HEAD,)
    behind = _invoke(restored, "db", "current", "--check")
    assert behind.exit_code == 1
    assert behind.stdout == f"{BELOW_HEAD} (newest is {HEAD})\n"
    assert _invoke(restored, "init-db").exit_code == 0
    assert schema.current_revisions(database_url) == (HEAD,)


def test_db_downgrade_with_yes_does_not_ask(restored: Flask, database_url: str) -> None:
    result = _invoke(restored, "db", "downgrade", BELOW_HEAD, "--yes")
    assert result.exit_code == 0, result.output
    assert "?" not in result.stdout
    assert schema.current_revisions(database_url) == (BELOW_HEAD,)


@pytest.mark.parametrize(
    ("revision", "message"),
    [("9999", "Can't locate revision"), ("nonsense", "Can't locate revision")],
)
def test_db_downgrade_to_an_unknown_revision_is_a_usage_error_naming_it(
    app: Flask, database_url: str, revision: str, message: str
) -> None:
    result = _invoke(app, "db", "downgrade", revision, "--yes")
    assert result.exit_code == 2
    assert "REVISION" in result.output and message in result.output
    assert schema.current_revisions(database_url) == (HEAD,)


def test_db_downgrade_needs_a_revision(app: Flask) -> None:
    result = _invoke(app, "db", "downgrade", "--yes")
    assert result.exit_code == 2
    assert "Missing argument 'REVISION'" in result.output


def test_db_downgrade_to_the_current_revision_changes_nothing(
    app: Flask, database_url: str
) -> None:
    result = _invoke(app, "db", "downgrade", HEAD, "--yes")
    assert result.exit_code == 0, result.output
    assert f"already at {HEAD}" in result.stdout
    assert schema.current_revisions(database_url) == (HEAD,)


def test_db_downgrade_refuses_a_revision_above_the_current_one(
    restored: Flask, database_url: str
) -> None:
    assert _invoke(restored, "db", "downgrade", BELOW_HEAD, "--yes").exit_code == 0
    result = _invoke(restored, "db", "downgrade", HEAD, "--yes")
    assert result.exit_code == 2
    assert "is not below the database's current migration" in result.output
    assert schema.current_revisions(database_url) == (BELOW_HEAD,)


def _beat(app: Flask, hostname: str, age: timedelta) -> None:
    svc = services_of(app)
    now = svc.clock()
    with svc.db.transaction() as session:
        session.add(
            WorkerHeartbeat(
                worker_id=f"{hostname}:1",
                hostname=hostname,
                pid=1,
                scheduler=True,
                started_at=now - age,
                seen_at=now - age,
            )
        )


def test_worker_health_fails_without_a_heartbeat(app: Flask) -> None:
    result = _invoke(app, "worker-health")
    assert result.exit_code == 1
    assert result.stdout.startswith("unhealthy: no worker heartbeat from host ")


def test_worker_health_passes_with_a_fresh_heartbeat_of_this_host(app: Flask) -> None:
    _beat(app, socket.gethostname(), timedelta(seconds=5))
    result = _invoke(app, "worker-health")
    assert result.exit_code == 0, result.output
    assert "beat 5 s ago" in result.stdout


def test_worker_health_fails_when_the_heartbeat_is_older_than_max_age(
    app: Flask, clock: FrozenClock
) -> None:
    _beat(app, socket.gethostname(), timedelta(seconds=5))
    clock.advance(seconds=60)
    result = _invoke(app, "worker-health")
    assert result.exit_code == 1
    assert "is 65 s old" in result.stdout
    assert _invoke(app, "worker-health", "--max-age", "120").exit_code == 0


def test_worker_health_reads_only_this_hosts_worker_unless_any_host(app: Flask) -> None:
    _beat(app, "some-other-host", timedelta(seconds=1))
    assert _invoke(app, "worker-health").exit_code == 1
    assert _invoke(app, "worker-health", "--any-host").exit_code == 0


def test_the_walletd_command_builds_the_app_from_the_environment(tmp_path: Path) -> None:
    database = tmp_path / "db" / "walletd.db"
    env = {
        "WALLETD_DATABASE_URL": f"sqlite:///{database}",
        "WALLETD_SECRET_KEY": SECRET,
        "WALLETD_INSTANCE_PATH": str(tmp_path / "instance"),
        "WALLETD_WORKER": "off",
    }
    runner = CliRunner()
    before = runner.invoke(cli, ["db", "current"], env=env, prog_name="walletd")
    assert before.exit_code == 0, before.output
    assert "no migration applied" in before.stdout
    assert runner.invoke(cli, ["init-db"], env=env).exit_code == 0
    after = runner.invoke(cli, ["db", "current", "--check"], env=env)
    assert after.exit_code == 0, after.output
    assert after.stdout == f"{HEAD} (head)\n"
    listed = runner.invoke(cli, ["--help"], env=env)
    for command in ("init-db", "worker", "create-brand", "run", "db", "worker-health"):
        assert f"  {command} " in listed.stdout
