"""An SMTP relay on loopback (aiosmtpd): EHLO, STARTTLS or implicit TLS, AUTH PLAIN/LOGIN, and
per-recipient answers (451, 550…); records every accepted message."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Received:
    """One message as the relay accepted it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    helo: str | None
    tls: bool
    login: str | None

    def parsed(self) -> EmailMessage:
        """The message parsed back with the standard parser."""
        message = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(message, EmailMessage)
        return message


def make_certificate(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for `host` (its own CA), written as PEM: (cert, key)."""
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class FakeRelay:
    """The handler: answers queued codes per recipient first, then 250; keeps messages."""

    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.users = users or {}
        self.messages: list[Received] = []
        self.answers: dict[str, deque[str]] = defaultdict(deque)
        self.always: dict[str, str] = {}
        self.sessions = 0
        self.lock = threading.Lock()
        self.count_only = False
        self.count = 0

    def answer(self, address: str, *replies: str) -> None:
        """Answer RCPT TO `address` with these replies, one per attempt ("451 4.7.1 later")."""
        self.answers[address.lower()].extend(replies)

    def refuse(self, address: str, reply: str = "550 5.1.1 no such user") -> None:
        """Answer RCPT TO `address` with `reply` every time."""
        self.always[address.lower()] = reply

    def to(self, address: str) -> list[Received]:
        """Messages accepted for an address."""
        return [m for m in self.messages if address.lower() in (r.lower() for r in m.rcpt_tos)]

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook names
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
        return responses

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        folded = address.lower()
        with self.lock:
            queued = self.answers.get(folded)
            if queued:
                return queued.popleft()
        if folded in self.always:
            return self.always[folded]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.count_only:
            with self.lock:
                self.count += 1
            return "250 Message accepted"
        login = session.auth_data.login.decode() if session.auth_data else None
        received = Received(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=envelope.original_content or envelope.content,
            helo=session.host_name,
            tls=session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            login=login,
        )
        with self.lock:
            self.messages.append(received)
            self.count += 1
        return "250 Message accepted"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        expected = self.users.get(auth_data.login.decode())
        ok = expected is not None and expected == auth_data.password.decode()
        # handled=False: aiosmtpd answers the failure (535) itself.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningRelay:
    """A started fake relay and the URL walletd reaches it by."""

    relay: FakeRelay
    port: int
    url: str
    ca_file: str | None


@contextmanager
def running_relay(
    *,
    users: dict[str, str] | None = None,
    tls: str = "none",  # "none", "starttls" (offered; required for AUTH) or "implicit"
    cert_dir: Path | None = None,
    url_options: str = "",
) -> Iterator[RunningRelay]:
    """Serve a FakeRelay on loopback for the length of the block."""
    relay = FakeRelay(users)
    port = free_port()
    kwargs: dict[str, Any] = {}
    ca_file: str | None = None
    if tls != "none":
        assert cert_dir is not None, "TLS needs a folder for the certificate"
        cert, key = make_certificate(cert_dir)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        ca_file = str(cert)
        if tls == "starttls":
            kwargs["tls_context"] = context
        else:
            kwargs["ssl_context"] = context
    if users is not None:
        kwargs.update(
            authenticator=relay.authenticate,
            auth_required=True,
            auth_require_tls=tls != "none",
        )
    controller = Controller(relay, hostname="127.0.0.1", port=port,
                            server_hostname="127.0.0.1", **kwargs)  # fmt: skip
    controller.start()
    scheme = "smtps" if tls == "implicit" else "smtp"
    credentials = ""
    if users:
        from urllib.parse import quote

        login, password = next(iter(users.items()))
        credentials = f"{quote(login, safe='')}:{quote(password, safe='')}@"
    url = f"{scheme}://{credentials}127.0.0.1:{port}{url_options}"
    try:
        yield RunningRelay(relay, port, url, ca_file)
    finally:
        controller.stop()
