"""WSGI entry point: `gunicorn wsgi:app`."""

from walletd import create_app

app = create_app()
