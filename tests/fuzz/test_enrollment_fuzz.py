"""The enrollment routes under their own fuzz budget: the pass download, Apple's personalize
call and the program settings that carry apple_enrollment answer as documented, never a 500."""

from __future__ import annotations

from typing import Any, cast

import pytest
import schemathesis
from flask import Flask
from schemathesis.generation import GenerationMode

from tests.factories import BrandKeys
from tests.fuzz.fuzzing import _fuzz_operation, _seed
from tests.integration.enrollment_device import enrollment_setting, set_enrollment
from walletd.passes.certs import DevCertPaths

PATHS = (
    "/join/{program_id}/enrollment.pkpass",
    "/passes/v1/passes/{pass_type_id}/{serial}/personalize",
    "/api/v1/programs/{program_id}",
)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_enrollment_routes_answer_any_input_as_documented(
    dev_certs: DevCertPaths, app: Flask, brand: BrandKeys, mode: GenerationMode
) -> None:
    _seed(app, brand)
    assert set_enrollment(app.test_client(), brand, enrollment_setting()).status_code == 200
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [
        cast(Any, result).ok()
        for result in schema.get_all_operations()
        if cast(Any, result).ok().path in PATHS
    ]
    assert len(operations) == 4  # GET and PATCH of the program, the download, personalize
    failures: list[str] = []
    for operation in operations:
        _fuzz_operation(operation, brand.admin, mode, failures)
    assert failures == [], "\n\n".join(failures)
