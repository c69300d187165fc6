"""Admin API for sources: declare, list, change, pull, runs, delete; credentials never stored."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from feedback.db import session_factory
from feedback.models import Source


@pytest.fixture
def admin(settings):
    """The app with auth switched off (the auth matrix is tested on its own below)."""
    open_settings = settings.model_copy(
        update={"api": settings.api.model_copy(update={"auth_enabled": False})}
    )
    app = create_app(open_settings)
    app.state.tagger_provider = lambda: (_ for _ in ()).throw(AssertionError("no model here"))
    with TestClient(app) as client:
        yield client


def _csv(tmp_path, rows: int = 3):
    path = tmp_path / "survey.csv"
    path.write_text(
        "external_id,text,created_at\n"
        + "".join(f"s{i},Comment {i},2026-09-01\n" for i in range(rows))
    )
    return path


def test_declare_pull_and_see_runs(admin, tmp_path, engine) -> None:
    body = {
        "name": "survey",
        "connector": "file",
        "schedule": "every 15m",
        "audience": "customer",
        "options": {"path": str(_csv(tmp_path))},
        "mapping": {"defaults": {"touchpoint": "checkout"}},
    }
    created = admin.post("/v1/sources", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["origin"] == "api" and created.json()["schedule"] == "every 15m"
    assert admin.post("/v1/sources", json=body).status_code == 409

    pulled = admin.post("/v1/sources/survey/pull", params={"wait": True})
    assert (
        pulled.status_code == 200
        and pulled.json()["new"] == 3
        and pulled.json()["status"] == "succeeded"
    )
    started = admin.post("/v1/sources/survey/pull")  # in the background; nothing changed
    assert started.status_code == 202

    runs = admin.get("/v1/sources/survey/runs").json()
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    assert runs[1]["items_new"] == 3 and runs[1]["finished_at"] is not None
    listed = {s["name"]: s for s in admin.get("/v1/sources").json()}
    assert listed["survey"]["items"] == 3 and listed["survey"]["last_run"]["status"] == "succeeded"
    assert listed["survey"]["cursor"]["file"]["done"] is True


def test_update_and_delete(admin, tmp_path) -> None:
    admin.post(
        "/v1/sources",
        json={"name": "s", "connector": "file", "options": {"path": str(_csv(tmp_path))}},
    )
    patched = admin.patch("/v1/sources/s", json={"schedule": "0 6 * * *", "enabled": False})
    assert patched.status_code == 200 and patched.json()["schedule"] == "0 6 * * *"
    assert patched.json()["enabled"] is False and patched.json()["options"]["path"].endswith(
        "survey.csv"
    )
    assert admin.patch("/v1/sources/s", json={"schedule": "whenever"}).status_code == 422
    admin.post("/v1/sources/s/pull", params={"wait": True})
    refused = admin.delete("/v1/sources/s")
    assert refused.status_code == 409 and "purge_items=true" in refused.json()["detail"]
    assert admin.delete("/v1/sources/s", params={"purge_items": True}).status_code == 204
    assert admin.get("/v1/sources/s").status_code == 404


def test_credentials_are_env_names_never_values(admin, engine, monkeypatch) -> None:
    plain = admin.post(
        "/v1/sources",
        json={
            "name": "zd",
            "connector": "zendesk",
            "options": {"subdomain": "northwind", "token": "abc123"},
        },
    )
    assert plain.status_code == 422 and "credentials_env" in plain.text
    header = admin.post(
        "/v1/sources",
        json={
            "name": "api",
            "connector": "http_json",
            "options": {"url": "http://127.0.0.1:1/x", "headers": {"Authorization": "Bearer abc"}},
        },
    )
    assert header.status_code == 422
    not_a_name = admin.post(
        "/v1/sources",
        json={
            "name": "zd",
            "connector": "zendesk",
            "options": {"subdomain": "northwind"},
            "credentials_env": {"oauth_token": "Bearer abc123!"},
        },
    )
    assert not_a_name.status_code == 422
    monkeypatch.setenv("ZD_OAUTH", "the-real-secret")
    ok = admin.post(
        "/v1/sources",
        json={
            "name": "zd",
            "connector": "zendesk",
            "options": {"subdomain": "northwind"},
            "credentials_env": {"oauth_token": "ZD_OAUTH"},
        },
    )
    assert ok.status_code == 201 and ok.json()["credentials_env"] == {"oauth_token": "ZD_OAUTH"}
    with session_factory(engine)() as session:
        dump = json.dumps([s.config for s in session.scalars(select(Source))])
    assert "the-real-secret" not in dump and "ZD_OAUTH" in dump


def test_config_file_sources_are_listed_but_edited_in_the_file(settings, tmp_path) -> None:
    declared = settings.model_copy(
        update={
            "api": settings.api.model_copy(update={"auth_enabled": False}),
            "sources": [
                {
                    "name": "from-file",
                    "connector": "file",
                    "schedule": "every 1h",
                    "options": {"path": str(_csv(tmp_path))},
                },
                {"name": "broken", "connector": "nope"},
            ],
        }
    )
    with TestClient(create_app(declared)) as client:
        listed = {s["name"]: s for s in client.get("/v1/sources").json()}
        assert listed["from-file"]["origin"] == "config" and "broken" not in listed
        assert client.patch("/v1/sources/from-file", json={"enabled": False}).status_code == 409
        assert client.post("/v1/sources/from-file/pull", params={"wait": True}).json()["new"] == 3


def test_sources_api_needs_an_admin_key(light_client, engine) -> None:
    from feedback.apikeys import create_key

    with session_factory(engine)() as session:
        cx = create_key(session, name="cx", scopes=["cx"]).secret_key
        admin_key = create_key(session, name="admin", scopes=["admin"]).secret_key
        session.commit()
    light_client.headers.pop("Authorization", None)  # the fixture's own admin key
    assert light_client.get("/v1/sources").status_code == 401
    assert (
        light_client.get("/v1/sources", headers={"Authorization": f"Bearer {cx}"}).status_code
        == 403
    )
    assert (
        light_client.get(
            "/v1/sources", headers={"Authorization": f"Bearer {admin_key}"}
        ).status_code
        == 200
    )
