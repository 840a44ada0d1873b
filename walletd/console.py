"""The `walletd` command: the Flask CLI with the app preset (`flask --app walletd` works too)."""

from __future__ import annotations

from flask.cli import FlaskGroup

from walletd import create_app

cli = FlaskGroup(
    name="walletd",
    create_app=lambda: create_app(),
    # Settings come from the environment only; a stray .env in the working directory is not read.
    load_dotenv=False,
    help="walletd, the self-hosted loyalty-card server. Settings are WALLETD_* variables.",
)


def main() -> None:
    """Run the `walletd` command line, with logging configured first (an entry point's job)."""
    from walletd.observability.logs import configure_logging

    configure_logging()
    cli.main(prog_name="walletd")
