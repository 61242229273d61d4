"""Fuzz the live API from its own OpenAPI schema (schemathesis), bounded.

The schema is fetched from the running server at ``/otp/schema``, exactly as a
client generator would, and each operation gets generated requests that fit
the schema (positive) and requests that break it (negative), all with valid
client credentials so they get past authentication. Every answer must be no
5xx, carry a documented status, content type and headers, match the body
schema documented for its status, and negative requests must be refused.
"""

from __future__ import annotations

import collections
import json
import urllib.request

import pytest

from tests.support.servers import require_module

from .conftest import OTPClient

pytestmark = pytest.mark.integration

EXAMPLES = 40  # per operation and mode: about 160 requests in all


def test_schema_is_served_as_openapi_3(shared_stack):
    with urllib.request.urlopen(shared_stack.web.url + "/otp/schema?format=json") as response:  # noqa: S310
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/vnd.oai.openapi+json")
        document = json.load(response)
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {"/otp/send", "/otp/verify"}
    assert document["components"]["securitySchemes"]["clientBasic"]["scheme"] == "basic"


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("path", ["/otp/send", "/otp/verify"])
def test_fuzzing_finds_no_5xx_and_no_schema_violation(shared_stack, make_client, path, mode):
    require_module("schemathesis")
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    client: OTPClient = make_client(sms_quota=100_000)
    base_url = shared_stack.web.url
    schema = schemathesis.openapi.from_url(base_url + "/otp/schema?format=json")
    operation = schema[path]["POST"]
    headers = {"Authorization": client.authorization}
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    if mode == "negative":
        checks.append(negative_data_rejection)  # data that breaks the schema is refused
    seen: collections.Counter[int] = collections.Counter()

    @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # report a failure as found, unshrunk
        suppress_health_check=list(HealthCheck),
    )
    def run(case):  # type: ignore[no-untyped-def]
        response = case.call(base_url=base_url, headers=headers, timeout=10)
        seen[response.status_code] += 1
        case.validate_response(response, checks=checks, headers=headers)

    run()
    print(f"\n{mode} {path}: answers by status {dict(seen)}")
    assert sum(seen.values()) >= EXAMPLES // 2
