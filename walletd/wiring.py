"""Building the adapters a process needs from its Settings (one instance of each per process)."""

from __future__ import annotations

import logging

from walletd.config import DEFAULT_APNS_URL, Settings
from walletd.passes.apple import ApplePasses, PassCache
from walletd.passes.certs import is_dev_certificate
from walletd.passes.signing import PassSigner
from walletd.push.apns import (
    ApnsClient,
    ApnsSender,
    CertificateAuth,
    NullPushSender,
    PushSender,
    TokenAuth,
)
from walletd.services import Services

log = logging.getLogger(__name__)


def web_service_url(settings: Settings) -> str:
    """The webServiceURL written into passes: devices append /v1/… to it."""
    return f"{settings.base_url}/passes/"


def pass_signer(settings: Settings) -> PassSigner:
    """The signer built from the configured certificate, key and WWDR (read once)."""
    return PassSigner.from_files(
        cert_path=settings.apple_cert,
        key_path=settings.apple_key,
        key_password=settings.apple_key_password or None,
        wwdr_path=settings.apple_wwdr,
    )


def apple_passes(settings: Settings) -> ApplePasses:
    """The Apple pass builder with its cache."""
    return ApplePasses(
        signer=pass_signer(settings),
        templates_root=settings.pass_templates_path,
        web_service_url=web_service_url(settings),
        cache=PassCache(),
    )


def shared_apple_passes(svc: Services) -> ApplePasses:
    """The process's one Apple pass builder, made on first use (web views, the Apple fast path
    and the worker share it); raises PassSignerError, and keeps nothing, while the signing
    material cannot be loaded, so a later call tries again."""
    return svc.adapter("apple_passes", lambda: apple_passes(svc.settings))  # type: ignore[no-any-return]


def push_sender(settings: Settings, signer: PassSigner) -> PushSender:
    """An APNs sender, or a null one where pushes could never be delivered."""
    if settings.apns_url == DEFAULT_APNS_URL and is_dev_certificate(signer.certificate):
        log.warning(
            "development certificates: Apple would refuse pushes signed with them, so APNs "
            "pushes are skipped (set real WALLETD_APPLE_CERT/KEY, or WALLETD_APNS_URL for a test "
            "endpoint)"
        )
        return NullPushSender()
    auth: CertificateAuth | TokenAuth
    if settings.apns_key_file:
        auth = TokenAuth(
            key_file=settings.apns_key_file,
            key_id=settings.apns_key_id,
            team_id=settings.apple_team_id or signer.team_id,
        )
    else:
        auth = CertificateAuth(
            cert_file=str(settings.apple_cert),
            key_file=str(settings.apple_key),
            key_password=settings.apple_key_password or None,
        )
    client = ApnsClient(
        settings.apns_url,
        signer.pass_type_id,
        auth,
        ca_file=settings.apns_ca_file or None,
        connections=2,
    )
    return ApnsSender(client)
