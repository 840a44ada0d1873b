"""WSGI entry point of the installed package, for `walletd serve` (granian) and gunicorn."""

import gc

from walletd import create_app
from walletd.observability.logs import configure_logging

# granian's workers import this module and nothing else of ours first: logging (and
# WALLETD_LOG_FORMAT) is set up here. Under gunicorn this repeats gunicorn_conf's on_starting,
# which configure_logging allows (it replaces its own handler).
configure_logging()
app = create_app()
# What exists now (modules, the app, SQLAlchemy's mappers and metadata) lives as long as the
# process: out of the cyclic collector's sight, a full collection no longer walks it. Measured
# (bench/hotpath_profile.py with gc callbacks): full collections paused a process 90-130 ms
# each, stalling every request thread in it; after gc.freeze() 4-7 ms.
gc.freeze()
