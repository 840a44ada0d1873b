"""schemathesis with invalid inputs (see test_openapi_fuzz.py): no answer may be a server error."""

from __future__ import annotations

import pytest
from flask import Flask
from schemathesis.generation import GenerationMode

from tests.factories import BrandKeys
from tests.fuzz.fuzzing import ROLES, fuzz_all
from walletd.passes.certs import DevCertPaths


@pytest.mark.parametrize("role", ROLES)
def test_fuzzer_with_invalid_inputs_finds_no_server_error(
    dev_certs: DevCertPaths, app: Flask, brand: BrandKeys, role: str
) -> None:
    failures = fuzz_all(app, brand, role, GenerationMode.NEGATIVE)
    assert failures == [], "\n\n".join(failures)
