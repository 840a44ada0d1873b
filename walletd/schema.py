"""Running the Alembic migrations shipped in `walletd/migrations/` against a database URL."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError

from walletd.db import make_engine

MIGRATIONS = resources.files("walletd").joinpath("migrations")


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration for our migrations folder, without an alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to a revision (all of them by default)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    """Undo migrations down to a revision (everything by default)."""
    command.downgrade(alembic_config(database_url), revision)


def scripts() -> ScriptDirectory:
    """The migration scripts shipped in the package."""
    return ScriptDirectory.from_config(alembic_config(""))


def head_revision() -> str:
    """The newest migration shipped in the package."""
    head = scripts().get_current_head()
    if head is None:
        raise RuntimeError("no migrations are shipped in walletd/migrations")
    return head


def current_revisions(database_url: str) -> tuple[str, ...]:
    """The migrations the database is at (empty when none was ever applied)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return tuple(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()


def history() -> list[Script]:
    """Every shipped migration, the newest first."""
    return list(scripts().walk_revisions())


def resolve_revision(revision: str) -> str | None:
    """The full id of a revision named by id, unique prefix or `base`; ValueError when unknown."""
    if revision == "base":
        return None
    try:
        script = scripts().get_revision(revision)
    except CommandError as exc:
        raise ValueError(str(exc)) from exc
    if script is None:
        raise ValueError(f"no migration {revision!r}")
    return script.revision
