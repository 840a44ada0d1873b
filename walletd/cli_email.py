"""`walletd check-email --to ADDRESS`: send a test message now and print what the relay said."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from walletd.email.check import EmailOffError, check_email
from walletd.services import Services


@click.command("check-email")
@with_appcontext
@click.option("--to", "to", required=True, help="the address the test message goes to")
def check_email_command(to: str) -> None:
    """Send a test message through WALLETD_SMTP_URL; exit 1 unless the relay accepted it."""
    svc: Services = current_app.extensions["walletd"]
    try:
        answer = check_email(svc.settings, to, now=svc.clock(), say=click.echo)
    except EmailOffError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    except ValueError as exc:
        click.echo(f"--to: {exc}", err=True)
        sys.exit(2)
    code = answer.code if answer.code is not None else "no answer"
    if answer.ok:
        click.echo(f"accepted: {code} {answer.text}")
        return
    click.echo(f"refused: {code} {answer.text}", err=True)
    sys.exit(1)


def init_app(app: Flask) -> None:
    """Register the e-mail commands."""
    app.cli.add_command(check_email_command)
