"""gunicorn settings for `gunicorn wsgi:app`; see BENCHMARKS.md for how they were chosen."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# Threads hide database round trips; processes use the cores. Measured in bench/scan.py.
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", str(multiprocessing.cpu_count() * 2)))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# The worker runs in its own process (`flask --app walletd worker`), never inside gunicorn.
raw_env = ["WALLETD_WORKER=off"]
timeout = 30
graceful_timeout = 30
keepalive = 5
max_requests = 10000
max_requests_jitter = 1000
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
