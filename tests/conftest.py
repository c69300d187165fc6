"""Shared fixtures: a migrated database per test (SQLite, and PostgreSQL for the modules in
BOTH_BACKENDS), the real app (with an admin API key), the real tagger."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

# Tests never read a developer's voc.toml or .env.
os.environ["VOC_CONFIG"] = "/nonexistent/voc.toml"
os.environ.setdefault("VOC_TORCH_THREADS", "2")

from feedback.config import Settings  # noqa: E402
from feedback.db import make_engine  # noqa: E402
from feedback.migrate import upgrade  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("VOC_DATA_DIR", REPO.parent / "shared" / "data"))


# Test modules whose every database test runs on SQLite and on a real PostgreSQL server
# (parametrised through `db_backend`; their ids end in [sqlite] / [postgres]).
BOTH_BACKENDS = frozenset({
    "test_api", "test_api_edges", "test_ingest", "test_sources_api", "test_sources_files",
    "test_sources_config", "test_analytics", "test_shares", "test_bi_export", "test_topics_service",
    "test_topics_taxonomy", "test_digest", "test_alerts", "test_privacy_groups", "test_migrations",
    "test_crash_resume", "test_concurrency", "test_auth", "test_webhooks", "test_end_to_end",
    "test_workers", "test_backfill", "test_postgres", "test_api_fuzz", "test_feedback_search", "test_ingest_bulk",
    "test_corrections", "test_analytics_fast_paths", "test_custom_categories", "test_employee_tables_identical",
})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rpartition(".")[2]
    if "db_backend" in metafunc.fixturenames and module in BOTH_BACKENDS:
        marks = {"sqlite": (), "postgres": (pytest.mark.postgres,)}
        marker = metafunc.definition.get_closest_marker("backends")  # @pytest.mark.backends("sqlite")
        backends = marker.args if marker else ("sqlite", "postgres")
        metafunc.parametrize("db_backend", [pytest.param(b, marks=marks[b], id=b) for b in backends],
                             indirect=True)


@pytest.fixture
def db_backend(request: pytest.FixtureRequest) -> str:
    """The database engine this test runs on: "sqlite" unless its module is in BOTH_BACKENDS."""
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server for the session (tests/pg.py); skips when none can be started."""
    from pg import PgServer

    try:
        server = PgServer.start()
    except Exception as exc:  # noqa: BLE001 (no server: the PostgreSQL half is skipped, with the reason)
        if os.environ.get("VOC_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"no PostgreSQL server: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_migrated_template(pg_server) -> str:
    """A PostgreSQL database migrated once per session; tests clone it (CREATE DATABASE ... TEMPLATE)."""
    url = pg_server.create_database(prefix="template")
    upgrade(url)
    return url


def _pg_clone(pg_server, template_url: str) -> str:
    from sqlalchemy.engine import make_url

    return pg_server.create_database(template=make_url(template_url).database)


@pytest.fixture
def database_url(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of this test's backend."""
    if db_backend == "postgres":
        server = request.getfixturevalue("pg_server")
        url = _pg_clone(server, request.getfixturevalue("pg_migrated_template"))
        yield url
        server.drop_database(url)
        return
    db = tmp_path / "voc.db"
    shutil.copy(request.getfixturevalue("migrated_template"), db)
    yield f"sqlite:///{db}"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database migrated once per session; each test gets a copy (fast, fully migrated)."""
    path = tmp_path_factory.mktemp("template") / "voc.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(database_url=database_url, var_dir=tmp_path / "var", data_dir=DATA_DIR, _env_file=None)


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


def bench_module(name: str) -> ModuleType:
    """The script bench/NAME.py as a module (bench/ on sys.path while it imports, for its own
    imports of its neighbours)."""
    bench = str(REPO / "bench")
    sys.path.insert(0, bench)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(bench)


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


@pytest.fixture(scope="session")
def pg_tagged_demo_template(pg_server, tagged_demo_template: dict) -> str:
    """The tagged demo database copied into PostgreSQL once per session (`voc db copy`'s code)."""
    return pg_server.copy_of(f"sqlite:///{tagged_demo_template['db']}", prefix="template")


@pytest.fixture
def tagged_demo(tmp_path: Path, tagged_demo_template: dict, db_backend: str,
                request: pytest.FixtureRequest) -> dict:
    """A private copy of the tagged demo database (of this test's backend), with settings and an engine."""
    server = None
    if db_backend == "postgres":
        server = request.getfixturevalue("pg_server")
        url = _pg_clone(server, request.getfixturevalue("pg_tagged_demo_template"))
    else:
        db = tmp_path / "demo.db"
        shutil.copy(tagged_demo_template["db"], db)
        url = f"sqlite:///{db}"
    settings = Settings(database_url=url, var_dir=tmp_path / "var", data_dir=DATA_DIR, _env_file=None)
    engine = make_engine(settings.database_url)
    yield {**tagged_demo_template, "settings": settings, "engine": engine}
    engine.dispose()
    if server is not None:
        server.drop_database(url)
