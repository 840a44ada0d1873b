"""gunicorn settings for `gunicorn wsgi:app` (via the root gunicorn.conf.py); see BENCHMARKS.md."""

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


def on_starting(server: object) -> None:
    """Logging for the master and (inherited by fork) every worker: WALLETD_LOG_FORMAT=json|text.

    With PROMETHEUS_MULTIPROC_DIR set, empties that directory so a restart starts counting from
    zero; `walletd worker` must get the same directory (and start after gunicorn) for /metrics to
    show its counters.
    """
    from walletd.observability.logs import configure_logging

    configure_logging()
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.endswith(".db"):
                os.remove(os.path.join(directory, name))


def child_exit(server: object, worker: object) -> None:
    """A dead worker's live gauges leave the multiprocess directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined,no-untyped-call]
