"""[email-campaigns] The one-click unsubscribe page under a larger fuzz budget: any member id,
signature or form answers what the document says (a page or a 4xx), never a 500."""

from __future__ import annotations

from typing import Any, cast

import pytest
import schemathesis
from flask import Flask
from schemathesis.generation import GenerationMode

from tests.factories import BrandKeys
from tests.fuzz.fuzzing import _fuzz_operation, _seed
from walletd.passes.certs import DevCertPaths


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_unsubscribe_page_answers_anything_as_documented(
    dev_certs: DevCertPaths, app: Flask, brand: BrandKeys, mode: GenerationMode
) -> None:
    _seed(app, brand)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app).include(
        path_regex="^/unsubscribe"
    )
    operations = [cast(Any, result).ok() for result in schema.get_all_operations()]
    assert len(operations) == 2
    failures: list[str] = []
    for operation in operations:
        _fuzz_operation(operation, {}, mode, failures)
    assert failures == [], "\n\n".join(failures)
