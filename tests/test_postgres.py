"""The same data gives the same answers on SQLite and PostgreSQL, and `voc db copy` moves a
database from one to the other.

The tagged demo database (SQLite) is copied into PostgreSQL once per session (the
`pg_tagged_demo_template` fixture uses `feedback.dbcopy`, the code behind `voc db copy`); here the
real app serves each, and every analytics answer must be the same on both engines.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from conftest import DATA_DIR, make_api_key
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from api.main import create_app
from feedback.config import Settings
from feedback.db import make_engine, session_factory
from feedback.models import FeedbackItem, Tag

pytestmark = pytest.mark.postgres

ENDPOINTS = [
    "/v1/trends?by=touchpoint&interval=week",
    "/v1/trends?by=channel&interval=month&audience=customer",
    "/v1/trends?by=org_unit&interval=month&audience=employee",
    "/v1/journey",
    "/v1/journey?audience=employee",
    "/v1/compare?period=week&at=2026-10-07",
    "/v1/drivers?outcome=nps",
    "/v1/aggregates?format=json&interval=week",
    "/v1/feedback?limit=50&touchpoint=delivery",
    "/v1/feedback?limit=20&q=refund",
]


def _client(url: str, tmp_path: Path) -> TestClient:
    settings = Settings(database_url=url, var_dir=tmp_path / "var", data_dir=DATA_DIR, _env_file=None)
    app = create_app(settings)

    def no_model():
        raise AssertionError("no model here")

    app.state.tagger_provider = no_model
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {make_api_key(settings, 'admin')}"
    return client


def _same(a, b, path: str, where: str = "") -> None:
    """Equal JSON, floats to 1e-9 relative (the engines sum in different orders)."""
    if isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), \
            f"{path}{where}: {a} != {b}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{path}{where}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            if key not in ("generated_at", "cached"):
                _same(a[key], b[key], path, f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}{where}: {len(a)} rows != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, path, f"{where}[{i}]")
    else:
        assert a == b, f"{path}{where}: {a!r} != {b!r}"


def test_every_answer_is_the_same_on_sqlite_and_postgresql(tagged_demo_template, pg_server,
                                                           pg_tagged_demo_template, tmp_path: Path) -> None:
    lite_db = tmp_path / "demo.db"
    shutil.copy(tagged_demo_template["db"], lite_db)
    pg_url = pg_server.create_database(template=pg_tagged_demo_template.rsplit("/", 1)[1])
    try:
        with _client(f"sqlite:///{lite_db}", tmp_path / "lite") as lite, _client(pg_url, tmp_path / "pg") as pg:
            for path in ENDPOINTS:
                a, b = lite.get(path), pg.get(path)
                assert a.status_code == b.status_code == 200, (path, a.text[:300], b.text[:300])
                _same(a.json(), b.json(), path)
            csv_a = lite.get("/v1/aggregates?format=csv&interval=month").text
            csv_b = pg.get("/v1/aggregates?format=csv&interval=month").text
            assert csv_a.splitlines()[0] == csv_b.splitlines()[0] and len(csv_a.splitlines()) == len(csv_b.splitlines())
    finally:
        pg_server.drop_database(pg_url)


def test_voc_db_copy_moves_a_database_and_refuses_a_full_target(tagged_demo_template, pg_server,
                                                                tmp_path: Path) -> None:
    from jobs.cli import app

    lite_db = tmp_path / "demo.db"
    shutil.copy(tagged_demo_template["db"], lite_db)
    target = pg_server.create_database(prefix="copy")  # empty: `voc db copy` migrates it first
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["db", "copy", "--from", f"sqlite:///{lite_db}", "--to", target])
        assert result.exit_code == 0, result.output
        counts = {}
        for url in (f"sqlite:///{lite_db}", target):
            engine = make_engine(url)
            with session_factory(engine)() as session:
                counts[url] = (session.scalar(select(func.count()).select_from(FeedbackItem)),
                               session.scalar(select(func.count()).select_from(Tag)),
                               session.scalar(select(func.max(FeedbackItem.id))))
            engine.dispose()
        assert counts[target] == counts[f"sqlite:///{lite_db}"] and counts[target][0] > 5000
        engine = make_engine(target)
        with engine.begin() as connection:  # new rows get new ids after the copied ones
            next_id = connection.scalar(text("SELECT nextval('feedback_items_id_seq')"))
        engine.dispose()
        assert next_id == counts[target][2] + 1
        again = runner.invoke(app, ["db", "copy", "--from", f"sqlite:///{lite_db}", "--to", target])
        assert again.exit_code == 1 and "not empty" in again.output
    finally:
        pg_server.drop_database(target)
