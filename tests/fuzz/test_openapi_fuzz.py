"""schemathesis fuzzes every operation of the generated /openapi.json as an admin key, a cashier key
and an anonymous caller: no answer may be a server error, and every answer must be what the document
says (status, content type, body schema). `make test` runs a small budget per operation;
`make fuzz` a large one (WALLETD_FUZZ_EXAMPLES)."""

from __future__ import annotations

import os
from typing import Any, cast

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import checks
from schemathesis.generation import GenerationMode

from tests.factories import BrandKeys, enroll, scan
from walletd.passes.certs import DevCertPaths

EXAMPLES = int(os.environ.get("WALLETD_FUZZ_EXAMPLES", "6"))
ROLES = ("admin", "cashier", "anonymous")
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def _seed(app: Flask, brand: BrandKeys) -> None:
    """A member with a scan, so that small ids and real barcodes exist to be found."""
    client = app.test_client()
    member = enroll(client, brand, email="ada@example.com", marketing_consent=True)
    scan(client, brand, member["card"]["barcode"], "12.50", "fuzz-seed")


def _headers(brand: BrandKeys, role: str) -> dict[str, str]:
    if role == "admin":
        return brand.admin
    if role == "cashier":
        return brand.cashier
    return {}


def _fuzz_operation(
    operation: Any, headers: dict[str, str], mode: GenerationMode, failures: list[str]
) -> None:
    """Generated cases against one operation; the first failure found is recorded."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        merged = {**(case.headers or {})}
        if headers and "Authorization" not in merged:
            merged.update(headers)
        case.headers = merged
        response = case.call()
        try:
            case.validate_response(response, checks=CHECKS)
        except AssertionError as exc:  # schemathesis raises a FailureGroup (an AssertionError)
            failures.append(f"{operation.label}: {exc}")
            raise

    try:
        run()
    except AssertionError:
        pass
    except Unsatisfiable:
        # Nothing of this operation can be made invalid (no parameters, no body).
        assert mode is GenerationMode.NEGATIVE, operation.label


def _fuzz(app: Flask, brand: BrandKeys, role: str, mode: GenerationMode) -> list[str]:
    """Run every operation with generated cases; returns the failures found."""
    _seed(app, brand)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    failures: list[str] = []
    for result in schema.get_all_operations():
        _fuzz_operation(cast(Any, result).ok(), _headers(brand, role), mode, failures)
    return failures


@pytest.mark.parametrize("role", ROLES)
def test_fuzzer_finds_no_server_error_and_no_undocumented_answer(
    dev_certs: DevCertPaths, app: Flask, brand: BrandKeys, role: str
) -> None:
    failures = _fuzz(app, brand, role, GenerationMode.POSITIVE)
    assert failures == [], "\n\n".join(failures)


@pytest.mark.parametrize("role", ROLES)
def test_fuzzer_with_invalid_inputs_finds_no_server_error(
    dev_certs: DevCertPaths, app: Flask, brand: BrandKeys, role: str
) -> None:
    failures = _fuzz(app, brand, role, GenerationMode.NEGATIVE)
    assert failures == [], "\n\n".join(failures)
