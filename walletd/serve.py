"""`walletd serve`: the web processes under granian, the server BENCHMARKS.md measured fastest.

granian (Rust HTTP, WSGI threads per worker) served the Apple web service 1.3-1.6 times faster
than gunicorn's gthread workers on the same machine (BENCHMARKS.md, "The server"); gunicorn with
gunicorn.conf.py stays supported. The settings mirror gunicorn.conf.py's variables, so a
deployment switches servers without new names: WEB_CONCURRENCY, GUNICORN_THREADS (threads per
worker), GUNICORN_BIND or PORT.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Mapping

# One worker per core with two threads each: on 2 cores this served the Apple web service's
# requests 1.4-1.8 times, scans 1.1-1.2 times and stored passes 1.1 times faster than two
# workers per core with four threads (BENCHMARKS.md, issue 14, third sitting), with a much
# shorter tail (p99); more processes than cores only contend for them. A database across a
# network leaves threads waiting longer: raise GUNICORN_THREADS there.
DEFAULT_THREADS = "2"


def process_model(environ: Mapping[str, str]) -> tuple[str, str]:
    """(workers, threads per worker) from WEB_CONCURRENCY and GUNICORN_THREADS, or the defaults."""
    workers = environ.get("WEB_CONCURRENCY") or str(multiprocessing.cpu_count())
    return workers, environ.get("GUNICORN_THREADS") or DEFAULT_THREADS


def granian_argv(environ: Mapping[str, str]) -> list[str]:
    """The granian command line for these environment variables."""
    bind = environ.get("GUNICORN_BIND") or f"0.0.0.0:{environ.get('PORT', '8000')}"
    host, _, port = bind.rpartition(":")
    workers, threads = process_model(environ)
    kill_after = environ.get("GRANIAN_WORKERS_KILL_TIMEOUT") or "30"
    for name, value in (
        ("WEB_CONCURRENCY", workers),
        ("GUNICORN_THREADS", threads),
        ("port", port),
        ("GRANIAN_WORKERS_KILL_TIMEOUT", kill_after),
    ):
        if not (value.isascii() and value.isdigit() and int(value) > 0):
            raise ValueError(f"{name} must be a positive whole number, not {value!r}")
    return [
        sys.executable, "-m", "granian", "--interface", "wsgi",
        "--host", host.strip("[]") or "0.0.0.0", "--port", port,
        "--workers", workers, "--blocking-threads", threads,
        # HTTP/1.1 behind the proxy, no websockets; a worker that dies is started again.
        "--http", "1", "--no-ws", "--respawn-failed-workers",
        # Like gunicorn.conf.py's max_requests: a worker is replaced after this many requests.
        "--workers-lifetime", environ.get("GRANIAN_WORKERS_LIFETIME", "86400"),
        # A worker that has not stopped this many seconds after SIGTERM is killed. Without it a
        # granian worker was seen to hang on shutdown for good (2.8.9, 2 workers x 2 threads,
        # after a scan load: its Python threads idle, its Rust runtime spinning), and the
        # parent with it, until something sent SIGKILL (granian issue #875 reports the same).
        "--workers-kill-timeout", kill_after,
        "walletd.wsgi:app",
    ]  # fmt: skip


def serve(environ: Mapping[str, str] | None = None) -> None:
    """Replace this process with granian serving walletd.wsgi:app."""
    env = dict(os.environ if environ is None else environ)
    # The worker runs in its own process (`walletd worker`), never inside the web server.
    env.setdefault("WALLETD_WORKER", "off")
    argv = granian_argv(env)
    # The app sizes its connection pool by GUNICORN_THREADS (walletd.db.default_pool_size).
    env["WEB_CONCURRENCY"], env["GUNICORN_THREADS"] = process_model(env)
    directory = env.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        # As gunicorn.conf.py's on_starting does: a restart starts counting from zero.
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.endswith(".db"):
                os.remove(os.path.join(directory, name))
    os.execvpe(argv[0], argv, env)
