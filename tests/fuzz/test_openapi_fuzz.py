"""schemathesis fuzzes every operation of the generated /openapi.json as an admin key, a cashier key
and an anonymous caller: no answer may be a server error, and every answer must be what the document
says (status, content type, body schema). `make test` runs a small budget per operation;
`make fuzz` a large one (WALLETD_FUZZ_EXAMPLES)."""

from __future__ import annotations

import pytest
from flask import Flask
from schemathesis.generation import GenerationMode

from tests.factories import BrandKeys
from tests.fuzz.fuzzing import ROLES, fuzz_all
from walletd.passes.certs import DevCertPaths


@pytest.mark.parametrize("role", ROLES)
def test_fuzzer_finds_no_server_error_and_no_undocumented_answer(
    dev_certs: DevCertPaths, app: Flask, brand: BrandKeys, role: str
) -> None:
    failures = fuzz_all(app, brand, role, GenerationMode.POSITIVE)
    assert failures == [], "\n\n".join(failures)
