"""[email-links] The recovery-link and forgotten-password pages, with e-mail on, under a larger
fuzz budget: any token, program id or form answers what the document says, never a 500."""

from __future__ import annotations

from typing import Any, cast

import pytest
import schemathesis
from flask import Flask
from schemathesis.generation import GenerationMode

from tests.factories import BrandKeys
from tests.fuzz.fuzzing import _fuzz_operation, _seed
from walletd.config import Settings
from walletd.passes.certs import DevCertPaths

PATHS = r"^/(join/\{program_id\}/recover|dashboard/forgot-password)"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """E-mail on: e-mails are only queued here, so the relay is never reached."""
    return settings.with_changes(smtp_url="smtp://127.0.0.1:9", email_from="shop@acme.test")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_email_link_pages_answer_anything_as_documented(
    dev_certs: DevCertPaths, app: Flask, brand: BrandKeys, mode: GenerationMode
) -> None:
    _seed(app, brand)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app).include(path_regex=PATHS)
    operations = [cast(Any, result).ok() for result in schema.get_all_operations()]
    assert len(operations) == 6
    failures: list[str] = []
    for operation in operations:
        _fuzz_operation(operation, {}, mode, failures)
    assert failures == [], "\n\n".join(failures)
