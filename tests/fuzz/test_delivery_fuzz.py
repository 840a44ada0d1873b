"""The delivery report under a larger fuzz budget than the whole-API run gives one operation:
any query (dates, ids, minutes, unknown fields) answers what the document says, never a 500."""

from __future__ import annotations

from typing import Any, cast

import pytest
import schemathesis
from flask import Flask
from schemathesis.generation import GenerationMode

from tests.factories import BrandKeys
from tests.fuzz.fuzzing import _fuzz_operation, _seed
from walletd.passes.certs import DevCertPaths

PATH = "/api/v1/reports/delivery"


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_delivery_report_answers_any_query_as_documented(
    dev_certs: DevCertPaths, app: Flask, brand: BrandKeys, mode: GenerationMode
) -> None:
    _seed(app, brand)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app).include(path=PATH)
    failures: list[str] = []
    operations = [cast(Any, result).ok() for result in schema.get_all_operations()]
    assert len(operations) == 1
    _fuzz_operation(operations[0], brand.admin, mode, failures)
    assert failures == [], "\n\n".join(failures)
