"""The SMTP relay: its URL, and one connection that sends messages and reports each answer."""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class RelayConfig:
    """Where and how to reach the relay; the password is never shown."""

    host: str
    port: int
    implicit_tls: bool
    starttls: str  # "auto" (when offered), "required" or "never"
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """The relay's name for its shared pace (no credentials)."""
        return f"smtp:{self.host}:{self.port}"


def relay_problem(url: str) -> str | None:
    """Why the URL cannot describe a relay (without quoting it: it may hold a password)."""
    try:
        parse_relay_url(url)
    except ValueError as exc:
        return str(exc)
    return None


def parse_relay_url(url: str) -> RelayConfig:
    """smtp://user:pass@host:port[?starttls=required|never] or smtps://user:pass@host:port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError("is not a URL with a valid port") from exc
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("has no host")
    query = parse_qs(parts.query)
    unknown = set(query) - {"starttls"}
    if unknown:
        raise ValueError("takes only the starttls option")
    starttls = query.get("starttls", ["auto"])[-1]
    if starttls not in ("auto", "required", "never"):
        raise ValueError("starttls must be auto, required or never")
    implicit = parts.scheme == "smtps"
    if implicit and "starttls" in query:
        raise ValueError("smtps:// is TLS from the start: starttls does not apply")
    return RelayConfig(
        host=parts.hostname,
        port=port or (465 if implicit else 25),
        implicit_tls=implicit,
        starttls="never" if implicit else starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


@dataclass(frozen=True)
class Answer:
    """What the relay said to one message (or to the connection): code and text."""

    code: int | None  # None: no answer (connection refused, timed out, TLS failed)
    text: str
    # Where it was said: "rcpt" (the recipient), "mail" (the sender), "data" (the message) or
    # "session" (connecting, TLS, AUTH). Only a 5xx to the recipient makes an address bounce.
    stage: str = "rcpt"

    @property
    def ok(self) -> bool:
        """Accepted for delivery."""
        return self.code is not None and 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        """A 5xx: the same message to the same address will be refused again."""
        return self.code is not None and 500 <= self.code < 600

    @property
    def bounces(self) -> bool:
        """A 5xx to the recipient: the address is not deliverable."""
        return self.permanent and self.stage == "rcpt"


class RelayError(Exception):
    """The relay cannot be used at all right now (connection, TLS, AUTH): try again later."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.text)
        self.answer = answer


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verified TLS against the system's CAs, or only the given CA file."""
    return ssl.create_default_context(cafile=ca_file or None)


def _text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return " ".join(text.split())[:400]


class RelayConnection:
    """One SMTP session to the relay, reused for a batch of messages."""

    def __init__(
        self, config: RelayConfig, *, ca_file: str | None = None,
        timeout: float = TIMEOUT_SECONDS, local_hostname: str | None = None,
    ) -> None:  # fmt: skip
        self.config = config
        self.ca_file = ca_file
        self.timeout = timeout
        self.local_hostname = local_hostname
        self.smtp: smtplib.SMTP | None = None
        self.greeting = Answer(None, "", "session")
        self.tls = False

    def open(self) -> Answer:
        """Connect, EHLO, STARTTLS and AUTH as configured; RelayError when that fails."""
        config = self.config
        context = tls_context(self.ca_file)
        try:
            if config.implicit_tls:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    config.host, config.port, local_hostname=self.local_hostname,
                    timeout=self.timeout, context=context,
                )  # fmt: skip
            else:
                smtp = smtplib.SMTP(
                    config.host, config.port, local_hostname=self.local_hostname,
                    timeout=self.timeout,
                )  # fmt: skip
            self.smtp = smtp
            self.tls = config.implicit_tls
            code, text = smtp.ehlo()
            if code != 250:
                raise RelayError(Answer(code, f"EHLO refused: {_text(text)}", "session"))
            if not config.implicit_tls and config.starttls != "never":
                if smtp.has_extn("starttls"):
                    code, text = smtp.starttls(context=context)
                    self.tls = True
                    smtp.ehlo()
                elif config.starttls == "required":
                    raise RelayError(Answer(None, "the relay does not offer STARTTLS", "session"))
            if config.username is not None:
                code, text = smtp.login(config.username, config.password or "")
            self.greeting = Answer(code, _text(text), "session")
            return self.greeting
        except RelayError:
            self.close()
            raise
        except smtplib.SMTPAuthenticationError as exc:
            self.close()
            answer = Answer(exc.smtp_code, f"AUTH refused: {_text(exc.smtp_error)}", "session")
            raise RelayError(answer) from None
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise RelayError(Answer(exc.smtp_code, _text(exc.smtp_error), "session")) from None
        except (OSError, smtplib.SMTPException, ssl.SSLError, UnicodeError) as exc:
            self.close()
            raise RelayError(Answer(None, _describe(exc), "session")) from None

    def send(self, message: EmailMessage, *, sender: str, recipient: str) -> Answer:
        """Send one message to one recipient; the relay's last answer (code and text)."""
        if self.smtp is None:
            self.open()
        smtp = self.smtp
        assert smtp is not None
        try:
            code, text = smtp.mail(sender)
            if code != 250:
                self._reset()
                return Answer(code, _text(text), "mail")
            code, text = smtp.rcpt(recipient)
            if code not in (250, 251):
                self._reset()
                return Answer(code, _text(text), "rcpt")
            code, text = smtp.data(message.as_bytes())
            if code != 250:
                self._reset()
            return Answer(code, _text(text), "data")
        except smtplib.SMTPResponseException as exc:
            self._reset()
            return Answer(exc.smtp_code, _text(exc.smtp_error), "session")
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            return Answer(None, _describe(exc), "session")

    def _reset(self) -> None:
        """After a refused message, RSET so the next one starts clean (or reconnect later)."""
        if self.smtp is None:
            return
        try:
            self.smtp.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def close(self) -> None:
        """QUIT (politely, when still connected)."""
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            try:
                smtp.close()
            except OSError:
                pass

    def __enter__(self) -> RelayConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe(exc: BaseException) -> str:
    """An error without the configuration's secrets (they never appear in socket errors)."""
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"[:400] if str(exc) else type(exc).__name__
