"""WSGI entry point of the installed package: `gunicorn walletd.wsgi:app`."""

from walletd import create_app

app = create_app()
