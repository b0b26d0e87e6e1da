"""Issue 9 proof: schemathesis against the app (auth on, an admin token, a registered dataset so bodies can reach
deep into the handlers): no response >= 500, and every response's status, content type, headers and body
conform to the OpenAPI document. Bounded: 25 examples per operation, no stateful phase, no deadline, no
example database; about a minute on one core.

Not fuzzed, for a stated reason (covered by its own tests):
* ``GET /jobs/{job_id}/events`` is an endless stream by design while a job is unfinished, and every job the fuzzer
  creates stays queued (no worker here); its 404/422 answers are in tests/api/test_api_security.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install -e '.[test]' (schemathesis)")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis import checks as generic_checks  # noqa: E402
from schemathesis.specs.openapi import checks as openapi_checks  # noqa: E402

NOT_FUZZED = {("GET", "/jobs/{job_id}/events")}
EXAMPLES = 25
CHECKS = [generic_checks.not_a_server_error, openapi_checks.status_code_conformance,
          openapi_checks.content_type_conformance, openapi_checks.response_headers_conformance,
          openapi_checks.response_schema_conformance, openapi_checks.ignored_auth]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from persistence import repo
    from persistence.session import make_engine, make_sessionmaker
    from service_helpers import make_settings

    settings = make_settings(tmp_path_factory.mktemp("fuzz") / "var", auth="on")
    with make_sessionmaker(make_engine(settings.database_url)).begin() as s:
        token = repo.create_token(s, name="fuzz", scope="admin")[1]
    app = create_app(settings)
    with TestClient(app) as c:  # a real dataset (id 1) so job and experiment bodies can be accepted
        from ml.synthetic import generate_dataset

        root = settings.data_roots[0] / "fuzz-set"
        generate_dataset(root, classes=2, videos_per_class=2, frames=40, width=32, height=32)
        r = c.post("/datasets", json={"path": str(root), "min_frames": 8}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201 and r.json()["id"] == 1, r.text
        yield app, token


@pytest.fixture(scope="module")
def api_schema(served: Any) -> Any:
    app, _ = served
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    for method, path in NOT_FUZZED:
        assert schema[path][method] is not None  # fail loudly if an exclusion no longer names an operation
    return schema.exclude(func=lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in NOT_FUZZED)


def _fuzz(operation: Any, mode: Any, token: str, failures: list[str], calls: list[int]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        calls[0] += 1
        try:
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
        except Exception as exc:  # noqa: BLE001 - collected: every failing operation is reported, not just the first
            failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {str(exc)[:1500]}")

    try:
        run()
    except Unsatisfiable:  # negative mode on an operation without parameters or body: nothing can be invalid
        assert mode == GenerationMode.NEGATIVE and not operation.path_parameters and not operation.query \
            and not operation.body, f"{operation.method} {operation.path}: no example could be generated"


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_api_conforms_to_its_openapi(api_schema: Any, served: Any, mode: str) -> None:
    _, token = served
    failures: list[str] = []
    calls = [0]
    for result in api_schema.get_all_operations():
        operation = result.ok()
        before = len(failures)
        _fuzz(operation, GenerationMode(mode), token, failures, calls)
        del failures[before + 3:]  # three examples of a failing operation are enough to read
    assert calls[0] >= 100
    assert not failures, f"{len(failures)} failing examples:\n\n" + "\n\n".join(failures)


def test_the_exclusions_are_only_these(api_schema: Any) -> None:
    fuzzed = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert len(fuzzed) >= 20 and not fuzzed & NOT_FUZZED
