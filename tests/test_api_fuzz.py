"""Schemathesis over the whole OpenAPI schema of the real app: no request a client can send gets a
5xx, and every answer matches the schema the app publishes.

The run is bounded and repeatable (derandomized, a fixed number of valid and of invalid requests
per operation), so a failure here is a failure on every run. Excluded: pulls, which make the
service call out to the source's server.

Each operation runs as its own Hypothesis test through `as_strategy()` rather than through
schemathesis' pytest plugin, whose `parametrize()` reaches into pytest internals that pytest 9
no longer has.
"""

from __future__ import annotations

import os
import re
import time

import hypothesis
import pytest
import schemathesis
from conftest import make_api_key
from hypothesis import HealthCheck, given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance

from feedback.db import session_scope
from feedback.models import Topic

# per operation and mode (1,717 requests a backend); 30 keeps the suite within 20 minutes, set more for a deeper run
EXAMPLES = int(os.environ.get("VOC_FUZZ_EXAMPLES", "30"))
CALLS_OUT = re.compile(r"/pull$")  # a pull fetches from the source's own server
ONLY = re.compile(os.environ.get("VOC_FUZZ_ONLY", ""))  # e.g. "GET /v1/trends" to reproduce one


@pytest.mark.slow
def test_no_request_gets_a_server_error_and_answers_match_the_schema(settings, tagger):
    from fastapi.testclient import TestClient

    from api.main import create_app

    app = create_app(settings, tagger=tagger)
    auth = {"Authorization": f"Bearer {make_api_key(settings, 'admin', name='fuzz admin')}"}
    with TestClient(app) as client:  # a few stored items, so that ids and cursors can hit something
        pushed = client.post("/v1/feedback", headers=auth, json={"source": "fuzz", "items": [
            {"external_id": f"f{i}", "text": f"Delivery was late, the courier lost parcel {i}", "nps": i % 11}
            for i in range(5)]})
        assert pushed.status_code == 200, pushed.text
    with session_scope(app.state.session_factory) as session:
        session.add_all([Topic(audience="customer", label="Late delivery", keywords=["late", "courier"]),
                         Topic(audience="customer", label="Lost parcels", keywords=["lost", "parcel"])])
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)

    operations = [result.ok() for result in schema.get_all_operations()]
    fuzzed = [op for op in operations if not CALLS_OUT.search(op.path) and ONLY.search(op.label)]
    assert len(fuzzed) >= (20 if not ONLY.pattern else 1), [op.label for op in operations]
    failures: list[str] = []
    calls = 0
    started = time.monotonic()
    for operation in fuzzed:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis.settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def run(case) -> None:
                nonlocal calls
                calls += 1
                case.call_and_validate(headers=auth, checks=[not_a_server_error, response_schema_conformance])

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                continue  # nothing in this operation can be sent wrong (no parameters, no body)
            except (Exception, FailureGroup) as exc:  # every operation's failures are reported together
                notes = "\n".join(getattr(exc, "__notes__", ()))  # Hypothesis' falsifying example
                failures.append(f"{operation.label} ({mode.value}): {exc!r}\n{notes}")
    print(f"fuzzed {len(fuzzed)} operations ({len(operations) - len(fuzzed)} excluded), {calls} requests, "
          f"{len(failures)} failures, {time.monotonic() - started:.1f} s")
    assert not failures, "\n\n".join(failures)
