"""The APNs channel: one push per distinct token, and token clean-up after 410s."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial

from sqlalchemy.orm import Session

from walletd.db import Database, utcnow
from walletd.delivery.recording import record_refusal
from walletd.push.apns import ApnsResult, PushSender
from walletd.push.dispatcher import ChannelPausedError, ClaimedRow, Delivery
from walletd.push.outbox import APNS
from walletd.push.registrations import forget_token

log = logging.getLogger(__name__)

# Reasons that mean the certificate, key or topic is wrong for every token: stop and shout.
_ACCOUNT_REASONS = frozenset(
    {
        "BadCertificate",
        "BadCertificateEnvironment",
        "Forbidden",
        "InvalidProviderToken",
        "MissingProviderToken",
        "TopicDisallowed",
        "BadTopic",
        "MissingTopic",
        "UnrelatedKeyIdInToken",
        "ExpiredProviderToken",
    }
)
# What ApnsClient reports when TLS fails on a certificate (APNs's or ours): no token can get
# through either, so it pauses the channel like BadCertificate instead of failing every row.
_TLS_CERTIFICATE_REASON = "TlsCertificateError"
PAUSE_SECONDS = 300.0
# When no token of a batch got an HTTP answer, APNs is unreachable (or refuses our TLS
# client certificate, which shows up as a broken connection): wait instead of burning attempts.
UNREACHABLE_PAUSE_SECONDS = 60.0


def _is_account_error(result: ApnsResult) -> bool:
    reason = result.reason or ""
    return result.outcome == "fatal" and (
        reason in _ACCOUNT_REASONS or reason.startswith(_TLS_CERTIFICATE_REASON)
    )


def _refused(
    token: str, result: ApnsResult, campaign_id: int | None, now: datetime, session: Session
) -> None:
    # [delivery] Kept per card (the token's registrations), before a 410 removes them.
    record_refusal(
        session, token, status=result.status, reason=result.reason, campaign_id=campaign_id, now=now
    )


def _forget(
    token: str,
    result: ApnsResult,
    session: Session,
    campaign_id: int | None = None,
    now: datetime | None = None,
) -> None:
    if now is not None:
        _refused(token, result, campaign_id, now, session)  # [delivery]
    removed = forget_token(session, token, gone_at=result.gone_at)
    log.info(
        "APNs says token %s… is %s: removed %d registration(s)", token[:8], result.reason, removed
    )


class ApnsChannel:
    """Delivers `apns` outbox rows through a PushSender kept open for the worker's life.

    With `presign`, the passes a push announces are signed and stored first, batch by batch, so
    the fetch each push causes reads stored bytes instead of signing on the web's request path.
    Campaigns too: a batch of 500 is signed in about 0.3 s, and signed in the worker a pass costs
    a fraction of what the web spends signing one on demand (bench/campaign.py --fetch: 30,000
    devices held their campaign's pass after 175 s signed on demand, sooner presigned; the
    figures are in BENCHMARKS.md).
    """

    kinds: tuple[str, ...] = (APNS,)

    def __init__(
        self,
        sender: PushSender,
        clock: Callable[[], datetime] = utcnow,
        presign: Callable[[Sequence[str]], int] | None = None,
    ) -> None:
        self.sender = sender
        self.clock = clock  # [delivery] dates the refusals it records
        self.presign = presign

    def deliver(self, rows: Sequence[ClaimedRow], db: Database) -> list[Delivery]:
        """Push each row's token once and map APNs's answers to outcomes."""
        tokens = [str(row.payload.get("token", "")) for row in rows]
        if self.presign is not None and tokens:
            try:
                self.presign(tokens)
            except Exception:  # a pass that cannot be signed now is signed by its fetch
                log.exception("signing passes before their push failed")
        results = {r.token: r for r in self.sender.push(sorted(set(tokens)))}
        account_errors = {
            (r.reason or "").split(":")[0] for r in results.values() if _is_account_error(r)
        }
        if account_errors and all(r.outcome in ("fatal", "retry") for r in results.values()):
            raise ChannelPausedError(
                f"APNs refuses our credentials ({', '.join(sorted(account_errors))}); check "
                "WALLETD_APPLE_CERT/KEY, the pass type id and `flask --app walletd check-certs`",
                seconds=PAUSE_SECONDS,
            )
        if results and all(r.outcome == "retry" and r.status is None for r in results.values()):
            reasons = sorted({r.reason or "no answer" for r in results.values()})
            raise ChannelPausedError(
                f"APNs did not answer ({', '.join(reasons)})", seconds=UNREACHABLE_PAUSE_SECONDS
            )
        deliveries = []
        for row, token in zip(rows, tokens, strict=True):
            result = results[token]
            error = f"{result.status} {result.reason}" if result.reason else None
            if result.outcome == "sent":
                deliveries.append(Delivery(row.id, "sent"))
            elif result.outcome in ("gone", "bad_token"):
                forget = partial(
                    _forget, token, result, campaign_id=row.campaign_id, now=self.clock()
                )
                deliveries.append(Delivery(row.id, "gone", error, after=forget))
            elif result.outcome == "retry":
                deliveries.append(Delivery(row.id, "retry", error, retry_after=result.retry_after))
            else:
                log.error("APNs refused token %s…: %s", token[:8], error)
                refused = partial(_refused, token, result, row.campaign_id, self.clock())
                deliveries.append(Delivery(row.id, "failed", error, after=refused))
        return deliveries
