"""Domain exceptions; the web layer maps them to HTTP statuses in one table."""

from __future__ import annotations

from collections.abc import Mapping


class WalletdError(Exception):
    """Base of every domain error; `code` is the snake_case error code shown to clients.

    The message is a template with named brace placeholders and their values:
    `ValidationError("must be at most {max}", field="amount", params={"max": 1000})`.
    `.message` is the English text (the API's JSON `message`); pages translate `.template` through
    the catalogs and fill it with `.params` (walletd.web.pages.render.error_text). API clients
    should rely on `code` and `field`, which are stable; `message` is English prose.
    """

    code = "error"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        params: Mapping[str, object] | None = None,
    ) -> None:
        self.template = message
        self.params: dict[str, object] = dict(params or {})
        self.message = message.format(**self.params) if self.params else message
        super().__init__(self.message)
        self.field = field

    def details(self) -> dict[str, object]:
        """Extra members of the error envelope beside code, message and field (documented ones)."""
        return {}


class ConfigError(WalletdError):
    """The environment describes an impossible or unsafe configuration."""

    code = "config_error"


class ValidationError(WalletdError):
    """Input is well-formed but a value is not acceptable."""

    code = "validation_error"


class NotFoundError(WalletdError):
    """A thing does not exist (or belongs to another brand, which looks the same)."""

    code = "not_found"


class UnknownCardError(NotFoundError):
    """A barcode that is not one of ours: forged, guessed, altered or revoked."""

    code = "unknown_card"


class ConflictError(WalletdError):
    """The request conflicts with the current state."""

    code = "conflict"


class MemberExistsError(ConflictError):
    """Another member of the program already has this e-mail or phone."""

    code = "member_exists"

    def __init__(
        self,
        message: str,
        *,
        field: str,
        existing_member_id: int,
        params: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message, field=field, params=params)
        self.existing_member_id = existing_member_id

    def details(self) -> dict[str, object]:
        """The envelope names the member who has the contact, so the caller can use them."""
        return {"existing_member_id": self.existing_member_id}


class IdempotencyConflictError(ConflictError):
    """An idempotency key was reused with a different request."""

    code = "idempotency_key_reused"


class InsufficientPointsError(ConflictError):
    """A redemption asks for more points than the member has."""

    code = "insufficient_points"


class AlreadyReversedError(ConflictError):
    """A scan was already reversed."""

    code = "already_reversed"


class AuthenticationError(WalletdError):
    """No credentials, or credentials that are not valid."""

    code = "unauthorized"


class PermissionDeniedError(WalletdError):
    """Valid credentials whose role may not do this."""

    code = "forbidden"


class UnknownCouponError(NotFoundError):
    """A coupon barcode that is not one of this brand's: forged, guessed or another brand's."""

    code = "unknown_coupon"


class CouponRedeemedError(ConflictError):
    """The coupon was already redeemed (with another Idempotency-Key or another scan)."""

    code = "coupon_redeemed"


class CouponExpiredError(ConflictError):
    """The coupon is past its expiry: it gives nothing any more."""

    code = "coupon_expired"


class BelowMinSpendError(ValidationError):
    """The purchase is below the offer's minimum spend."""

    code = "below_min_spend"


class CouponVoidError(ConflictError):
    """The brand voided the coupon: it gives nothing."""

    code = "coupon_void"


class CouponNotYetValidError(ConflictError):
    """The offer's validity window has not started yet."""

    code = "coupon_not_yet_valid"


def N_(text: str) -> str:  # noqa: N802 (the gettext convention's name)
    """Mark a text for the translation catalogs without translating it here (gettext_noop)."""
    return text
