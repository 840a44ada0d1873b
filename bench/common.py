"""Shared pieces of the benchmarks: a private Postgres database, a gunicorn process, wrk."""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECRET = "bench-secret-key-that-is-long-enough-0123456789"


def machine() -> str:
    """One line describing the machine the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


@contextmanager
def private_database(url: str = DEFAULT_PG) -> Iterator[str]:
    """A throwaway Postgres database on the server of `url`."""
    base = make_url(url)
    name = f"walletd_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def worker_env(url: str, workdir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `walletd worker` a benchmark starts: its database, dev certificates
    written under `workdir`, an instance folder there, plus `extra` variables."""
    from walletd.passes.certs import write_dev_certs

    certs = write_dev_certs(workdir / "certs")
    return {
        **os.environ,
        "WALLETD_DATABASE_URL": url,
        "WALLETD_SECRET_KEY": SECRET,
        "WALLETD_INSTANCE_PATH": str(workdir / "instance"),
        "WALLETD_APPLE_CERT": str(certs.cert_path),
        "WALLETD_APPLE_KEY": str(certs.key_path),
        "WALLETD_APPLE_WWDR": str(certs.wwdr_path),
        **extra,
    }


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(
    server: str, *, port: int, workers: int, threads: int, app: str = "wsgi:app"
) -> list[str]:
    """The command that serves `app` with `server` (gunicorn with gunicorn.conf.py, granian)."""
    if server == "gunicorn":
        return [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", app]
    if server == "granian":
        return [
            sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--blocking-threads", str(threads),
            "--no-ws", "--workers-kill-timeout", "5", app,
        ]  # fmt: skip
    raise ValueError(f"unknown server {server!r}")


@contextmanager
def gunicorn(
    database_url: str,
    *,
    workers: int,
    threads: int,
    worker_class: str = "gthread",
    server: str = "gunicorn",
    env: dict[str, str] | None = None,
    app: str = "wsgi:app",
) -> Iterator[str]:
    """Serve `app` (gunicorn.conf.py or granian) with this process model; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    instance = tempfile.mkdtemp(prefix="walletd-bench-")
    environ = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_THREADS": str(threads),
        "WALLETD_DATABASE_URL": database_url,
        "WALLETD_BASE_URL": url,
        "WALLETD_SECRET_KEY": SECRET,
        "WALLETD_INSTANCE_PATH": instance,
        "WALLETD_WORKER": "off",
        # One key sends the whole load: keep the limiter's cost in the figures but not its 429s.
        "WALLETD_RATELIMIT_API": os.environ.get("WALLETD_RATELIMIT_API", "100000000 per minute"),
        # Every device of a benchmark registers from 127.0.0.1.
        "WALLETD_RATELIMIT_APPLE_REGISTER": "100000000 per minute",
        **(env or {}),
    }
    command = serve_command(server, port=port, workers=workers, threads=threads, app=app)
    if server == "gunicorn" and worker_class != "gthread":
        command[-1:-1] = ["--worker-class", worker_class]
    process = subprocess.Popen(
        command, cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{server} did not start")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(instance, ignore_errors=True)


WRK_DONE = """
done = function(summary, latency, requests)
  io.write(string.format('WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d,'
    .. ' "p99_us": %d, "non_2xx": %d, "socket_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
end
"""


def wrk(url: str, *, connections: int, seconds: int, script: str = "") -> dict[str, Any]:
    """Run wrk with a Lua script and return requests/s and latency percentiles."""
    if shutil.which("wrk") is None:
        raise SystemExit("bench needs wrk (apt-get install wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script + WRK_DONE)
        path = handle.name
    try:
        output = subprocess.run(
            ["wrk", "-t", str(min(connections, 2)), "-c", str(connections), "-d", f"{seconds}s",
             "--latency", "-s", path, url],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(path)
    line = next(x for x in output.splitlines() if x.startswith("WRKJSON "))
    data: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    data["p50_ms"] = data["p50_us"] / 1000
    data["p99_ms"] = data["p99_us"] / 1000
    return data
