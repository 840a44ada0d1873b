"""WSGI entry point of the installed package, for `walletd serve` (granian) and gunicorn."""

from walletd import create_app
from walletd.observability.logs import configure_logging

# granian's workers import this module and nothing else of ours first: logging (and
# WALLETD_LOG_FORMAT) is set up here. Under gunicorn this repeats gunicorn_conf's on_starting,
# which configure_logging allows (it replaces its own handler).
configure_logging()
app = create_app()
