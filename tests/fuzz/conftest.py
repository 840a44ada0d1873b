"""Fuzzing fixtures: the suite's app with real (development) signing certificates."""

from __future__ import annotations

import pytest

from tests.integration.apple.conftest import dev_cert_template, dev_certs
from walletd.config import Settings

__all__ = ["dev_cert_template", "dev_certs"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Request rate limits off: the fuzzer sends far more requests than any one client should."""
    return settings.with_changes(ratelimit_enabled=False)
