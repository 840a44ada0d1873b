"""`walletd serve` starts granian, which answers on the configured port and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_walletd_serve_answers_livez_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "2",
        "WALLETD_DATABASE_URL": f"sqlite:///{tmp_path / 'walletd.db'}",
        "WALLETD_SECRET_KEY": "serve-test-secret-key-0123456789abcdef",
        "WALLETD_INSTANCE_PATH": str(tmp_path / "instance"),
        "WALLETD_BASE_URL": f"http://127.0.0.1:{port}",
    }
    command = [sys.executable, "-c", "from walletd.console import main; main()", "serve"]
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline, answer = time.monotonic() + 30, None
        while time.monotonic() < deadline and answer is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=2) as reply:
                    answer = reply.status
            except OSError:
                assert server.poll() is None, log.read_text(errors="replace")
                time.sleep(0.3)
        assert answer == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert server.returncode == 0
