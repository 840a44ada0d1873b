"""gunicorn reads this file; the settings live in walletd/gunicorn_conf.py."""

from walletd.gunicorn_conf import *  # noqa: F403
