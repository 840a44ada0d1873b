"""A webhook receiver on loopback: records every request and answers the statuses it is told."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body decoded."""
        return json.loads(self.body)


class WebhookReceiver:
    """Answers queued statuses first (e.g. 500, 500), then `default_status`; keeps requests."""

    def __init__(self, default_status: int = 204) -> None:
        self.default_status = default_status
        self.statuses: deque[int] = deque()
        self.requests: list[Received] = []
        self.redirect_to = "http://127.0.0.1:9/elsewhere"
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(
                        Received(
                            "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                        )
                    )
                    status = (
                        receiver.statuses.popleft()
                        if receiver.statuses
                        else receiver.default_status
                    )
                answer = b"" if status == 204 else b'{"ok": false, "note": "from the fake"}'
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # quiet test output

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        """The base URL the receiver listens on."""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, in order."""
        with self._lock:
            self.statuses.extend(statuses)

    def start(self) -> None:
        """Serve on a background thread."""
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def webhook_receiver(default_status: int = 204) -> Iterator[WebhookReceiver]:
    """A running receiver, stopped afterwards."""
    receiver = WebhookReceiver(default_status)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
