"""Settings read once from WALLETD_* environment variables into a frozen object."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from walletd.db import default_pool_size
from walletd.errors import ConfigError
from walletd.passes.certs import production_certificate_problems

# The card designs shipped inside the package; wheels install unzipped, so this is a real folder.
BUNDLED_PASS_TEMPLATES = Path(str(resources.files("walletd").joinpath("pass_templates")))

DEFAULT_DATABASE_URL = "sqlite:///instance/walletd.db"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_APNS_URL = "https://api.push.apple.com"
DEFAULT_GOOGLE_API_URL = "https://walletobjects.googleapis.com/walletobjects/v1"
DEFAULT_GOOGLE_ROOT_KEYS_URL = "https://pay.google.com/gp/m/issuer/keys"
DEV_CERT_DIR = Path("certs/dev")


@dataclass(frozen=True)
class Settings:
    """Everything walletd reads from its environment; built once per process."""

    database_url: str = DEFAULT_DATABASE_URL
    base_url: str = DEFAULT_BASE_URL
    secret_key: str = ""
    # Older keys still accepted when checking sessions, card links and barcodes; never used to sign.
    secret_key_fallbacks: tuple[str, ...] = ()
    env: str = "development"
    apple_pass_type_id: str = ""
    apple_team_id: str = ""
    apple_cert: Path = DEV_CERT_DIR / "pass.pem"
    apple_key: Path = DEV_CERT_DIR / "pass.key"
    apple_key_password: str = ""
    apple_wwdr: Path = DEV_CERT_DIR / "wwdr.pem"
    apns_url: str = DEFAULT_APNS_URL
    apns_ca_file: str = ""
    apns_key_file: str = ""
    apns_key_id: str = ""
    google_issuer_id: str = ""
    google_credentials: str = ""
    google_api_url: str = DEFAULT_GOOGLE_API_URL
    google_root_keys_url: str = DEFAULT_GOOGLE_ROOT_KEYS_URL
    google_rate_per_second: float = 20.0
    worker: str = "off"
    # With a token, /metrics needs `Authorization: Bearer <token>`; without, loopback clients only.
    metrics_token: str = ""
    instance_path: Path = Path("instance")
    pass_templates_path: Path = field(default_factory=lambda: BUNDLED_PASS_TEMPLATES)
    max_body_bytes: int = 64 * 1024
    # Apple registrations kept per card; a new one past the cap evicts the least recently
    # confirmed, so each card change writes at most this many APNs outbox rows.
    max_devices_per_card: int = 10
    # Device log lines (POST /passes/v1/log) kept: the newest rows, none older than the days.
    device_log_max_rows: int = 10_000
    device_log_max_days: int = 14
    # Phones are stored in E.164; a number typed without its country code is read in this region.
    default_phone_region: str = "TW"
    # Rate limits (walletd.web.limits). Counters live in this storage: memory:// is per process,
    # redis://host:port is shared by every process and host.
    ratelimit_enabled: bool = True
    ratelimit_storage_uri: str = "memory://"
    ratelimit_key_prefix: str = "walletd"
    # Proxies in front of walletd whose X-Forwarded-For/-Proto are believed (0 = trust none).
    trusted_proxies: int = 0
    # Limits in the `limits` notation ("5 per 15 minutes; 20 per day"). Login and recovery count
    # failures only; the others count requests.
    ratelimit_login_client: str = "10 per 5 minutes; 100 per day"
    ratelimit_login_account_client: str = "5 per 5 minutes; 20 per day"
    ratelimit_login_account: str = "30 per hour; 200 per day"
    ratelimit_login_device: str = "10 per 5 minutes; 50 per day"
    ratelimit_recover_client: str = "5 per 15 minutes; 20 per day"
    ratelimit_recover_target: str = "5 per 15 minutes; 10 per day"
    ratelimit_join: str = "30 per hour; 200 per day"
    ratelimit_apple_register: str = "60 per minute; 600 per hour"
    ratelimit_apple_log: str = "20 per minute; 200 per hour"
    ratelimit_api: str = "3000 per minute"
    ratelimit_api_auth_failures: str = "30 per minute; 300 per hour"
    # [email] The SMTP relay (smtp:// with STARTTLS when offered, smtps://), a CA file for a relay
    # with a private certificate, the default sender and the relay's pace (messages per second).
    smtp_url: str = field(default="", repr=False)
    smtp_ca_file: str = ""
    email_from: str = ""
    smtp_rate: float = 10.0
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def production(self) -> bool:
        """True when WALLETD_ENV=production: missing secrets are then start-up errors."""
        return self.env == "production"

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """The keys a signature may be checked against: the current one first, then fallbacks."""
        return (self.secret_key, *self.secret_key_fallbacks)

    @property
    def google_enabled(self) -> bool:
        """Google Wallet is on when an issuer id and credentials are both configured."""
        return bool(self.google_issuer_id and self.google_credentials)

    def with_changes(self, **changes: object) -> Settings:
        """A copy with some fields replaced (tests and start-up defaults)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read the contract's WALLETD_* variables; validation happens in `finalise`."""

        def get(name: str, default: str = "") -> str:
            return environ.get(f"WALLETD_{name}", default).strip()

        def path(name: str, default: Path) -> Path:
            value = get(name)
            return Path(value) if value else default

        rate = get("GOOGLE_RATE_PER_SECOND", "20")
        try:
            google_rate = float(rate)
        except ValueError as exc:
            raise ConfigError(f"WALLETD_GOOGLE_RATE_PER_SECOND is not a number: {rate!r}") from exc

        def count(name: str, default: int) -> int:
            value = get(name, str(default))
            # ASCII digits only: int() would also take "²"-like digits, signs and underscores.
            if not (value.isascii() and value.isdigit() and len(value) <= 9) or int(value) < 1:
                raise ConfigError(f"WALLETD_{name} must be a whole number from 1, not {value!r}")
            return int(value)

        try:  # read again where the engine is made (walletd.db); checked here to fail at start
            default_pool_size(environ)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

        return cls(
            database_url=get("DATABASE_URL", DEFAULT_DATABASE_URL),
            base_url=get("BASE_URL", DEFAULT_BASE_URL).rstrip("/"),
            secret_key=get("SECRET_KEY"),
            secret_key_fallbacks=tuple(
                key.strip() for key in get("SECRET_KEY_FALLBACKS").split(",") if key.strip()
            ),
            env=get("ENV", "development"),
            apple_pass_type_id=get("APPLE_PASS_TYPE_ID"),
            apple_team_id=get("APPLE_TEAM_ID"),
            apple_cert=path("APPLE_CERT", DEV_CERT_DIR / "pass.pem"),
            apple_key=path("APPLE_KEY", DEV_CERT_DIR / "pass.key"),
            apple_key_password=get("APPLE_KEY_PASSWORD"),
            apple_wwdr=path("APPLE_WWDR", DEV_CERT_DIR / "wwdr.pem"),
            apns_url=get("APNS_URL", DEFAULT_APNS_URL).rstrip("/"),
            apns_ca_file=get("APNS_CA_FILE"),
            apns_key_file=get("APNS_KEY_FILE"),
            apns_key_id=get("APNS_KEY_ID"),
            google_issuer_id=get("GOOGLE_ISSUER_ID"),
            google_credentials=get("GOOGLE_CREDENTIALS"),
            google_api_url=get("GOOGLE_API_URL", DEFAULT_GOOGLE_API_URL).rstrip("/"),
            google_root_keys_url=get("GOOGLE_ROOT_KEYS_URL", DEFAULT_GOOGLE_ROOT_KEYS_URL),
            google_rate_per_second=google_rate,
            worker=get("WORKER", "off"),
            metrics_token=get("METRICS_TOKEN"),
            instance_path=path("INSTANCE_PATH", Path("instance")),
            pass_templates_path=path("PASS_TEMPLATES", BUNDLED_PASS_TEMPLATES),
            default_phone_region=get("DEFAULT_PHONE_REGION", "TW").upper(),
            ratelimit_enabled=_flag(get("RATELIMIT_ENABLED", "true"), "RATELIMIT_ENABLED"),
            ratelimit_storage_uri=get("RATELIMIT_STORAGE_URI", "memory://"),
            ratelimit_key_prefix=get("RATELIMIT_KEY_PREFIX", "walletd"),
            trusted_proxies=_small_count(get("TRUSTED_PROXIES", "0"), "TRUSTED_PROXIES"),
            **{  # type: ignore[arg-type]
                name: get(name.upper(), str(getattr(cls, name))) for name in RATE_LIMIT_SETTINGS
            },
            max_devices_per_card=count("MAX_DEVICES_PER_CARD", 10),
            device_log_max_rows=count("DEVICE_LOG_MAX_ROWS", 10_000),
            device_log_max_days=count("DEVICE_LOG_MAX_DAYS", 14),
            # [email]
            smtp_url=get("SMTP_URL"),
            smtp_ca_file=get("SMTP_CA_FILE"),
            email_from=get("EMAIL_FROM"),
            smtp_rate=_rate(get("SMTP_RATE", "10"), "SMTP_RATE"),
        )

    def finalise(self) -> Settings:
        """Fill development defaults (secret key file) and refuse unsafe production settings."""
        if self.env not in ("development", "production", "test"):
            raise ConfigError(f"WALLETD_ENV must be development or production, not {self.env!r}")
        if self.worker not in ("off", "embedded"):
            raise ConfigError(f"WALLETD_WORKER must be off or embedded, not {self.worker!r}")
        settings = self
        if not settings.secret_key:
            if settings.production:
                raise ConfigError("WALLETD_SECRET_KEY is required when WALLETD_ENV=production")
            settings = replace(settings, secret_key=_development_secret(settings.instance_path))
        elif len(settings.secret_key) < 32:
            raise ConfigError("WALLETD_SECRET_KEY must be at least 32 characters")
        _check_secret_keys(settings)
        _check_rate_limits(settings)
        _check_email(settings)  # [email]
        if settings.google_enabled and not Path(settings.google_credentials).is_file():
            raise ConfigError(
                f"WALLETD_GOOGLE_CREDENTIALS is not a readable file: {settings.google_credentials}"
            )
        if settings.production:
            if not settings.base_url.startswith("https://"):
                raise ConfigError("WALLETD_BASE_URL must be https:// in production")
            _check_base_url(settings.base_url)
            dev_paths = {DEV_CERT_DIR / "pass.pem", DEV_CERT_DIR / "pass.key"}
            if settings.apple_cert in dev_paths or settings.apple_key in dev_paths:
                raise ConfigError(
                    "WALLETD_APPLE_CERT and WALLETD_APPLE_KEY must point at real Apple "
                    "certificates in production, not certs/dev/"
                )
            if not (settings.apple_pass_type_id and settings.apple_team_id):
                raise ConfigError(
                    "WALLETD_APPLE_PASS_TYPE_ID and WALLETD_APPLE_TEAM_ID are required "
                    "in production"
                )
            problems = production_certificate_problems(settings.apple_cert, settings.apple_wwdr)
            if problems:
                raise ConfigError(
                    "; ".join(f"{variable}: {reason}" for variable, reason in problems)
                )
        return settings


# Secrets that appear in walletd's own tests, benchmarks and docs: anyone can read them.
_PUBLIC_SECRETS = frozenset(
    {
        "test-secret-key-that-is-long-enough-0123456789",
        "bench-secret-key-that-is-long-enough-0123456789",
        "unit-test-secret-key-0123456789abcdef",
        "another-secret-key-0123456789abcdef!",
    }
)
# Words a person types into a placeholder; a random key holds none of them.
_PLACEHOLDER_WORDS = (
    "changeme",
    "change-me",
    "change_me",
    "placeholder",
    "example",
    "secretkey",
    "secret-key",
    "secret_key",
)


RATE_LIMIT_SETTINGS = (
    "ratelimit_login_client",
    "ratelimit_login_account_client",
    "ratelimit_login_account",
    "ratelimit_login_device",
    "ratelimit_recover_client",
    "ratelimit_recover_target",
    "ratelimit_join",
    "ratelimit_apple_register",
    "ratelimit_apple_log",
    "ratelimit_api",
    "ratelimit_api_auth_failures",
)


def _flag(value: str, name: str) -> bool:
    """A yes/no variable."""
    folded = value.lower()
    if folded in ("1", "true", "yes", "on"):
        return True
    if folded in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"WALLETD_{name} must be true or false, not {value!r}")


def _small_count(value: str, name: str) -> int:
    """A whole number from 0 to 10 (ASCII digits only)."""
    if not (value.isascii() and value.isdigit() and int(value) <= 10):
        raise ConfigError(f"WALLETD_{name} must be a whole number from 0 to 10, not {value!r}")
    return int(value)


def _rate(value: str, name: str) -> float:
    """A positive number of events per second."""
    try:
        rate = float(value)
    except ValueError as exc:
        raise ConfigError(f"WALLETD_{name} is not a number: {value!r}") from exc
    if not 0 < rate <= 10_000:
        raise ConfigError(f"WALLETD_{name} must be above 0 and at most 10000, not {value!r}")
    return rate


def _check_email(settings: Settings) -> None:
    """[email] A relay URL that parses, a readable CA file and a sender when e-mail is on."""
    if not settings.smtp_url:
        return
    from walletd.email.relay import parse_relay_url, relay_problem

    problem = relay_problem(settings.smtp_url)
    if problem:
        raise ConfigError(f"WALLETD_SMTP_URL {problem}")
    parse_relay_url(settings.smtp_url)
    if settings.smtp_ca_file and not Path(settings.smtp_ca_file).is_file():
        raise ConfigError(f"WALLETD_SMTP_CA_FILE is not a readable file: {settings.smtp_ca_file}")
    if not settings.email_from:
        raise ConfigError("WALLETD_EMAIL_FROM is required when WALLETD_SMTP_URL is set")
    from walletd.email.message import parse_from

    try:
        parse_from(settings.email_from)
    except ValueError as exc:
        raise ConfigError("WALLETD_EMAIL_FROM must be an address or Name <address>") from exc


def _check_rate_limits(settings: Settings) -> None:
    """Refuse limits, storages and phone regions that would only fail at the first request."""
    import phonenumbers
    from limits import parse_many

    if settings.default_phone_region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(
            "WALLETD_DEFAULT_PHONE_REGION must be a two-letter region such as TW, "
            f"not {settings.default_phone_region!r}"
        )
    if not 0 <= settings.trusted_proxies <= 10:
        raise ConfigError("WALLETD_TRUSTED_PROXIES must be a whole number from 0 to 10")
    if not settings.ratelimit_storage_uri.startswith(("memory://", "redis://", "rediss://")):
        raise ConfigError("WALLETD_RATELIMIT_STORAGE_URI must be memory:// or a redis:// URI")
    for name in RATE_LIMIT_SETTINGS:
        value = getattr(settings, name)
        try:
            parsed = parse_many(value)
        except ValueError as exc:
            raise ConfigError(f"WALLETD_{name.upper()} is not a rate limit: {value!r}") from exc
        if not parsed:
            raise ConfigError(f"WALLETD_{name.upper()} is empty")


def _check_secret_keys(settings: Settings) -> None:
    """Refuse keys that cannot be used to sign and, in production, keys that are not secret."""
    count = len(settings.secret_key_fallbacks)
    named = [("WALLETD_SECRET_KEY", settings.secret_key)] + [
        (f"WALLETD_SECRET_KEY_FALLBACKS (key {n} of {count})", key)
        for n, key in enumerate(settings.secret_key_fallbacks, start=1)
    ]
    for variable, key in named:
        try:
            key.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ConfigError(f"{variable} holds bytes that are not UTF-8 text") from exc
        if not settings.production:
            continue
        if len(key) < 32:
            raise ConfigError(f"{variable} must be at least 32 characters in production")
        reason = _weak_secret_reason(key, settings.instance_path)
        if reason:
            raise ConfigError(f"{variable} {reason}; make one with `openssl rand -base64 48`")


def _weak_secret_reason(key: str, instance_path: Path) -> str | None:
    """Why a key is known or guessable, never quoting the key itself."""
    if key in _PUBLIC_SECRETS:
        return "is a key published in walletd's tests or benchmarks"
    development = instance_path / "secret_key"
    try:
        if development.is_file() and development.read_text().strip() == key:
            return f"is the development key generated into {development}"
    except OSError:
        pass  # an unreadable development key cannot be the one configured
    folded = key.lower()
    if any(word in folded for word in _PLACEHOLDER_WORDS):
        return "looks like a placeholder, not a random key"
    if len(set(key)) < 8:
        return "repeats too few characters to be a random key"
    return None


def _check_base_url(base_url: str) -> None:
    """The public origin devices and browsers are sent to must be a plain https:// URL."""
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 - parsing the port is the check: "https://host:x" raises here
    except ValueError as exc:
        raise ConfigError(f"WALLETD_BASE_URL is not a URL: {exc}") from exc
    if not parts.hostname or parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(
            "WALLETD_BASE_URL must be https://HOST[:PORT][/PATH] in production, "
            "without user, query or fragment"
        )
    if any(ch.isspace() for ch in base_url):
        raise ConfigError("WALLETD_BASE_URL must not contain spaces")


def _development_secret(instance_path: Path) -> str:
    """Generate the development secret once and keep it so cards survive a restart."""
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return secret
