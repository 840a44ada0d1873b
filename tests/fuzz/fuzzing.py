"""Shared by the fuzz tests: seed data, headers per role and one pass over every operation.

The valid-input and invalid-input runs live in two files so that `pytest -n` runs them on two
workers at once."""

from __future__ import annotations

import os
from typing import Any, cast

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import checks
from schemathesis.generation import GenerationMode

from tests.factories import BrandKeys, enroll, scan, services_of
from walletd.models import WorkerHeartbeat

EXAMPLES = int(os.environ.get("WALLETD_FUZZ_EXAMPLES", "6"))
ROLES = ("admin", "cashier", "anonymous")
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def _seed(app: Flask, brand: BrandKeys) -> None:
    """A member with a scan, so that small ids and real barcodes exist to be found, and a live
    worker's heartbeat, so that /readyz answers 200 (its 503 is a server error to the fuzzer)."""
    svc = services_of(app)
    with svc.db.transaction() as session:
        now = svc.clock()
        session.add(
            WorkerHeartbeat(worker_id="fuzz", hostname="fuzz", pid=1, started_at=now, seen_at=now)
        )
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


def fuzz_all(app: Flask, brand: BrandKeys, role: str, mode: GenerationMode) -> list[str]:
    """Run every operation with generated cases; returns the failures found."""
    _seed(app, brand)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    failures: list[str] = []
    for result in schema.get_all_operations():
        _fuzz_operation(cast(Any, result).ok(), _headers(brand, role), mode, failures)
    return failures
