"""Running the Alembic migrations shipped in `walletd/migrations/` against a database URL."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config

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
