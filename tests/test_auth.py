"""API keys: hashed at rest, scopes cx / hr / bi / admin, and the tested matrix of scope x endpoint."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from analytics_data import customer_rows, team_rows, write_rows
from sqlalchemy import select

from feedback.apikeys import create_key, hash_secret, parse_key, revoke_key, verify_secret
from feedback.db import session_scope
from feedback.models import ApiKey

CUSTOMER_PUSH = {"source": "auth-test", "audience": "customer",
                 "items": [{"external_id": "a1", "text": "Parcel came late", "created_at": "2026-06-02T10:00:00Z"}]}
EMPLOYEE_PUSH = {**CUSTOMER_PUSH, "source": "auth-test-pulse", "audience": "employee"}

ALLOW, DENY, HIDDEN, NO_KEY = "allow", "deny", "hidden", "no key"

# (method, path, query or JSON body, who may call it). "hidden": answered 404 (another audience's
# item looks absent). Every endpoint that is not here is covered by test_every_route_needs_a_key.
CASES = [
    ("GET", "/v1/feedback", {"audience": "customer"}, {"cx", "admin"}),
    # Raw employee items (team, tenure, time, score: one person) only for admin; hr reads employee
    # feedback through the privacy rules (test_hr_reads_no_raw_employee_items).
    ("GET", "/v1/feedback", {"audience": "employee"}, {"admin"}),
    ("GET", "/v1/feedback", {}, {"admin"}),
    ("GET", "/v1/feedback/{customer_item}", {}, {"cx", "admin"}),
    ("GET", "/v1/feedback/{employee_item}", {}, {"admin"}),
    ("POST", "/v1/feedback", CUSTOMER_PUSH, {"cx", "admin"}),
    ("POST", "/v1/feedback", EMPLOYEE_PUSH, {"hr", "admin"}),
    ("POST", "/v1/classify", {"texts": ["The app crashes"], "audience": "customer"}, {"cx", "admin"}),
    ("POST", "/v1/classify", {"texts": ["My manager is great"], "audience": "employee"}, {"hr", "admin"}),
    ("GET", "/v1/trends", {}, {"cx", "admin"}),
    ("GET", "/v1/trends", {"audience": "employee", "by": "org_unit"}, {"hr", "admin"}),
    ("GET", "/v1/journey", {}, {"cx", "admin"}),
    ("GET", "/v1/journey", {"audience": "employee"}, {"hr", "admin"}),
    ("GET", "/v1/compare", {"period": "week", "at": "2026-06-10"}, {"cx", "admin"}),
    ("GET", "/v1/compare", {"period": "week", "at": "2026-06-10", "audience": "employee", "by": "org_unit"},
     {"hr", "admin"}),
    ("GET", "/v1/drivers", {}, {"cx", "admin"}),
    ("GET", "/v1/drivers", {"audience": "employee"}, {"hr", "admin"}),
    ("GET", "/v1/quotes", {}, {"cx", "admin"}),
    ("GET", "/v1/quotes", {"audience": "employee"}, {"hr", "admin"}),
    ("GET", "/v1/aggregates", {}, {"cx", "bi", "admin"}),
    ("GET", "/v1/aggregates", {"audience": "employee"}, {"hr", "bi", "admin"}),
    ("GET", "/v1/aggregates", {"format": "csv"}, {"cx", "bi", "admin"}),
    ("GET", "/v1/aggregates/schema", {}, {"cx", "bi", "admin"}),
    ("GET", "/v1/digests", {}, {"cx", "admin"}),
    ("GET", "/v1/digests", {"audience": "employee"}, {"hr", "admin"}),
    ("GET", "/v1/sources", {}, {"admin"}),
]
KEYS = ("cx", "hr", "bi", "admin", "cx+hr")


class _FakeTagger:
    """Only for the matrix: /v1/classify must reach its handler, whatever the model says."""

    name = "fake"
    model_versions: dict[str, str] = {}

    def tag(self, texts, audiences=None):
        return [SimpleNamespace(sentiment="neutral", sentiment_score=0.0, sentiment_probs={}, emotion_labels=[],
                                cx_emotions=[], needs=[], need_scores={}, touchpoint="unknown",
                                touchpoint_confidence=0.0, flags=[]) for _ in texts]


@pytest.fixture
def matrix(light_client, scoped_client, engine):
    light_client.app.state.tagger_provider = _FakeTagger
    ids = write_rows(engine, customer_rows(40, seed=1)[:20] + team_rows("ops", 6, weeks=1))
    clients = {name: scoped_client(*name.split("+")) for name in KEYS}
    clients[NO_KEY] = scoped_client()
    return clients, {"customer_item": ids[0], "employee_item": ids[-1]}


def test_scope_matrix(matrix) -> None:
    """Every (endpoint, audience) of CASES with keys of every scope, and with no key."""
    clients, ids = matrix
    wrong: list[str] = []
    for method, path, params, allowed in CASES:
        url = path.format(**ids)
        for key in (*KEYS, NO_KEY):
            client = clients[key]
            response = client.get(url, params=params) if method == "GET" else client.post(url, json=params)
            status = response.status_code
            may = key in allowed or (key == "cx+hr" and bool(allowed & {"cx", "hr"}))
            if key == NO_KEY:
                ok = status == 401
            elif may:
                ok = status not in (401, 403, 404)
            elif "{" in path and key in ("cx", "hr") and not (key == "hr" and "employee" in path):
                ok = status == 404  # another audience's item looks absent
            else:
                ok = status == 403 and ("scope" in response.text or "reads only" in response.text)
            if not ok:
                wrong.append(f"{method} {url} {params.get('audience', '')} key={key}: {status} {response.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_hr_reads_no_raw_employee_items(light_client, scoped_client, engine) -> None:
    """An employee item with its team, tenure, time and score singles its author out (docs/privacy.md
    rule 5): an hr key gets no list of them and no single one, only the privacy-ruled answers."""
    ids = write_rows(engine, team_rows("ops", 12, weeks=1))
    hr = scoped_client("hr")
    for url, params in (("/v1/feedback", {"audience": "employee"}),
                        ("/v1/feedback", {"audience": "employee", "org_unit": "ops"}),
                        (f"/v1/feedback/{ids[0]}", {})):
        answer = hr.get(url, params=params)
        assert answer.status_code == 403 and "scope admin" in answer.text and "ops" not in answer.text, url
    assert hr.get("/v1/quotes", params={"audience": "employee"}).status_code == 200
    admin = scoped_client("admin").get("/v1/feedback", params={"audience": "employee"})
    assert admin.status_code == 200 and len(admin.json()["items"]) == 12


def _example(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: "2026-W23" if m.group(1) == "week" else "1", path)


def test_every_route_needs_a_key(light_client, scoped_client) -> None:
    """No endpoint but /health and the HMAC-signed webhooks answers without a key (catches a
    router added later without a guard)."""
    anonymous = scoped_client()
    paths = light_client.get("/openapi.json").json()["paths"]
    checked = 0
    for path, operations in paths.items():
        for method in operations:
            if path == "/health" or path.startswith("/v1/webhooks"):
                continue
            response = anonymous.request(method.upper(), _example(path))
            assert response.status_code == 401, (method, path, response.status_code)
            checked += 1
    assert checked >= 20
    assert anonymous.get("/health").status_code == 200
    # a webhook call without a key is judged by its signature, not refused for want of a key
    assert anonymous.post("/v1/webhooks/nothing-here", json={}).status_code != 401


def test_keys_are_hashed_at_rest_and_revocation_is_immediate(light_client, scoped_client, settings, engine) -> None:
    with session_scope(engine) as session:
        key = create_key(session, name="ops", scopes=["cx"])
    prefix, secret = parse_key(key.secret_key)
    with session_scope(engine) as session:
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        assert row.key_hash.startswith("scrypt$") and secret not in row.key_hash and key.secret_key not in row.key_hash
        assert verify_secret(secret, row.key_hash) and not verify_secret(secret + "x", row.key_hash)
    client = scoped_client()
    client.headers["Authorization"] = f"Bearer {key.secret_key}"
    assert client.get("/v1/trends").status_code == 200
    with session_scope(engine) as session:
        assert session.scalar(select(ApiKey.last_used_at).where(ApiKey.prefix == prefix)) is not None
        revoke_key(session, prefix)
    response = client.get("/v1/trends")
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    # a right prefix with a wrong secret, a malformed key, the X-API-Key header
    client.headers["Authorization"] = f"Bearer voc_{prefix}_{'x' * 43}"
    assert client.get("/v1/trends").status_code == 401
    client.headers["Authorization"] = "Bearer not-a-key"
    assert client.get("/v1/trends").status_code == 401
    del client.headers["Authorization"]
    with session_scope(engine) as session:
        other = create_key(session, name="header", scopes=["cx"]).secret_key
    assert client.get("/v1/trends", headers={"X-API-Key": other}).status_code == 200


def test_salted_hashes_differ_for_the_same_secret() -> None:
    assert hash_secret("same") != hash_secret("same")
    assert verify_secret("same", hash_secret("same"))
    assert not verify_secret("same", "md5$whatever")


def test_auth_can_be_disabled_for_local_use(settings, scoped_client) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app

    open_settings = settings.model_copy(update={"api": settings.api.model_copy(update={"auth_enabled": False})})
    client = TestClient(create_app(open_settings))
    response = client.get("/v1/trends", params={"audience": "employee"})
    assert response.status_code == 200, response.text


def test_cli_keys_create_list_revoke(settings, monkeypatch) -> None:
    from typer.testing import CliRunner

    from feedback.config import get_settings
    from jobs.cli import app

    monkeypatch.setenv("VOC_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        created = runner.invoke(app, ["keys", "create", "--name", "powerbi", "--scope", "bi"])
        assert created.exit_code == 0, created.output
        key = re.search(r"voc_[a-z0-9]{8}_\S+", created.output).group(0)
        listed = runner.invoke(app, ["keys", "list", "--json"])
        assert "powerbi" in listed.output and key not in listed.output
        bad = runner.invoke(app, ["keys", "create", "--name", "x", "--scope", "root"])
        assert bad.exit_code == 2 and "unknown scope" in bad.output
        revoked = runner.invoke(app, ["keys", "revoke", parse_key(key)[0]])
        assert revoked.exit_code == 0 and "revoked" in revoked.output
        listed = runner.invoke(app, ["keys", "list", "--json"])
        assert "powerbi" not in listed.output
        assert "powerbi" in runner.invoke(app, ["keys", "list", "--all", "--json"]).output
    finally:
        get_settings.cache_clear()
