"""Shared fixtures: a migrated SQLite database per test, the real app (with an admin API key), the real tagger."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

# Tests never read a developer's voc.toml or .env.
os.environ["VOC_CONFIG"] = "/nonexistent/voc.toml"
os.environ.setdefault("VOC_TORCH_THREADS", "2")

from feedback.config import Settings  # noqa: E402
from feedback.db import make_engine  # noqa: E402
from feedback.migrate import upgrade  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("VOC_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database migrated once per session; each test gets a copy (fast, fully migrated)."""
    path = tmp_path_factory.mktemp("template") / "voc.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def settings(tmp_path: Path, migrated_template: Path) -> Settings:
    db = tmp_path / "voc.db"
    shutil.copy(migrated_template, db)
    return Settings(database_url=f"sqlite:///{db}", var_dir=tmp_path / "var", data_dir=DATA_DIR,
                    _env_file=None)


@pytest.fixture
def engine(settings: Settings) -> Iterator:
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def tagger():
    """The real tagger on the real small encoder, loaded once for the session."""
    from jobs.tasks import load_service_tagger

    return load_service_tagger(Settings(_env_file=None))


def make_api_key(settings: Settings, *scopes: str, name: str = "test") -> str:
    """A stored API key with `scopes`, returned in full (as `voc keys create` prints it)."""
    from feedback.apikeys import create_key
    from feedback.db import session_scope

    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            return create_key(session, name=name, scopes=scopes).secret_key
    finally:
        engine.dispose()


@pytest.fixture
def client(settings: Settings, tagger):
    """The app with the real tagger; requests carry an admin API key."""
    from fastapi.testclient import TestClient

    from api.main import create_app

    with TestClient(create_app(settings, tagger=tagger)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {make_api_key(settings, 'admin', name='test admin')}"
        yield test_client


@pytest.fixture
def light_client(settings: Settings):
    """The app without a loaded tagger, for endpoints that need no model."""
    from fastapi.testclient import TestClient

    from api.main import create_app

    def _no_model():
        raise AssertionError("this test must not load a model")

    app = create_app(settings)
    app.state.tagger_provider = _no_model
    with TestClient(app) as test_client:
        test_client.headers["Authorization"] = f"Bearer {make_api_key(settings, 'admin', name='test admin')}"
        yield test_client


@pytest.fixture
def scoped_client(light_client, settings: Settings):
    """Make clients of the light app whose key has the given scopes: `scoped_client("cx", "bi")`.

    No scopes: a client that sends no key at all.
    """
    from fastapi.testclient import TestClient

    def make(*scopes: str) -> TestClient:
        test_client = TestClient(light_client.app)
        if scopes:
            key = make_api_key(settings, *scopes, name="+".join(scopes))
            test_client.headers["Authorization"] = f"Bearer {key}"
        return test_client

    return make


@pytest.fixture(scope="session")
def tagged_demo_template(tmp_path_factory: pytest.TempPathFactory, migrated_template: Path, tagger) -> dict:
    """The demo data generated, ingested and tagged by the real models once per test session.

    Tagging ~6,900 items is the slowest step of the suite, so tests copy this database
    (`tagged_demo`) instead of tagging again.
    """
    from feedback.demo.generator import write_csv
    from feedback.ingest.files import ingest_file
    from jobs.tasks import tag_pending

    root = tmp_path_factory.mktemp("tagged_demo")
    db = root / "voc.db"
    shutil.copy(migrated_template, db)
    settings = Settings(database_url=f"sqlite:///{db}", var_dir=root / "var", data_dir=DATA_DIR, _env_file=None)
    engine = make_engine(settings.database_url)
    csv_path = root / "northwind.csv"
    rows = write_csv(csv_path, seed=7)
    stats, _ = ingest_file(engine, csv_path, settings=settings, source_name="demo:northwind")
    tagged = tag_pending(engine, tagger, batch_size=512)
    engine.dispose()
    return {"db": db, "rows": rows, "ingest": stats, "tagged": tagged, "csv": csv_path}


@pytest.fixture
def tagged_demo(tmp_path: Path, tagged_demo_template: dict) -> dict:
    """A private copy of the tagged demo database, with settings and an engine for it."""
    db = tmp_path / "demo.db"
    shutil.copy(tagged_demo_template["db"], db)
    settings = Settings(database_url=f"sqlite:///{db}", var_dir=tmp_path / "var", data_dir=DATA_DIR,
                        _env_file=None)
    engine = make_engine(settings.database_url)
    yield {**tagged_demo_template, "settings": settings, "engine": engine}
    engine.dispose()
