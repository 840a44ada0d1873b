"""Google Wallet's sign-up page and the program settings that hold google_signup and the store
settings, under a larger fuzz budget than the whole-API run: never a 500, always as documented."""

from __future__ import annotations

from typing import Any, cast

import pytest
import schemathesis
from flask import Flask
from schemathesis.generation import GenerationMode

from tests.factories import BrandKeys
from tests.fuzz.fuzzing import _fuzz_operation, _seed
from walletd.passes.certs import DevCertPaths

PATHS = ("/join/{program_id}/google", "/api/v1/programs/{program_id}")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_signup_page_and_program_settings_answer_any_input_as_documented(
    dev_certs: DevCertPaths, app: Flask, brand: BrandKeys, mode: GenerationMode
) -> None:
    _seed(app, brand)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    failures: list[str] = []
    operations = [
        operation
        for operation in (cast(Any, result).ok() for result in schema.get_all_operations())
        if operation.path in PATHS
    ]
    assert {(op.method.upper(), op.path) for op in operations} >= {
        ("GET", PATHS[0]),
        ("POST", PATHS[0]),
        ("PATCH", PATHS[1]),
    }
    for operation in operations:
        _fuzz_operation(operation, brand.admin, mode, failures)
    assert failures == [], "\n\n".join(failures)
