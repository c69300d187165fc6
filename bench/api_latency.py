"""API latency on a large database, SQLite and PostgreSQL: generate, build the rollups, measure.

    .venv/bin/python bench/api_latency.py                                # 1,000,000 customer items, SQLite
    .venv/bin/python bench/api_latency.py --backends sqlite,postgres     # the same data in both, one run
    .venv/bin/python bench/api_latency.py --items 200000                 # smaller, faster
    ... --db bench.db --keep, then --db bench.db --postgres-db URL       # measure again, same data

Items, tags, labels and embeddings are written straight into fresh, migrated databases (bulk
inserts on SQLite, COPY on PostgreSQL; not through the tagger: this measures reads), each
generated chunk into every backend, so both hold the same rows. Texts are about 150
characters and tags carry what the tagger stores (every emotion's score, the model versions, a
384-dimension float16 embedding near its touchpoint's), so the database sizes printed are those
of real data. Customer items carry the built-in taxonomy's touchpoints and journey stages and
30 keyword-named topics; employee items 40 teams, six themes with their stages, and tenure: what
the web app's pages show (bench/web_pages.py measures them on a database kept with --db).
PostgreSQL is then vacuumed and analysed, as autovacuum would do after a load. The rollups are
built once, as the tagging job keeps them, and every endpoint is called through the real ASGI
app (TestClient, with an API key, so authentication is part of the measured time), with the
response cache off (api.cache_seconds=0: each request computes its answer; `--cache` keeps it).
Prints p50/p95/max per request and backend, and each backend's size per item.

Targets (issue 6): p95 <= 50 ms for a 12-month weekly trend by touchpoint, <= 200 ms for a page
of aggregates. Without `--database-url` a throwaway durable PostgreSQL server is started
(bench/postgres.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("VOC_CONFIG", "/nonexistent/voc.toml")

from classifiers.config import DEFAULT_TOUCHPOINTS  # noqa: E402
from classifiers.labels import GOEMOTIONS_LABELS, NEED_LABELS  # noqa: E402
from feedback.config import ApiSettings, Settings  # noqa: E402
from feedback.db import make_engine, session_scope  # noqa: E402
from feedback.migrate import upgrade  # noqa: E402

TOUCHPOINTS = ("website", "app", "checkout", "delivery", "returns", "support", "store", "unknown")
# Journey stages as the built-in taxonomy configures them (classifiers/config.py), as a source would send them.
STAGES = {t.name: t.journey_stage for t in DEFAULT_TOUCHPOINTS}
# Employee themes, drawn from the same 8-way pick as the customer touchpoints (everyday work and
# managers most often), and tenure bands as the demo's pulse survey has them.
EMPLOYEE_TOUCHPOINTS = ("day_to_day", "manager", "tools", "pay_benefits", "career", "onboarding", "day_to_day",
                        "manager")
TENURES = ("<1y", "1-3y", "3y+", "1-3y")
CHANNELS = ("survey", "review", "app_review", "ticket", "chat", "social", "email")
SEGMENTS = ("new", "returning", "loyal", "business")
LANGUAGES = ("en", "en", "en", "de", "fr", "es")
NEEDS = ("price", "speed", "reliability", "help", "choice", "ease", "trust", "quality")
EMOTIONS = ("joy", "anger", "disappointment", "gratitude", "confusion", "annoyance", "neutral")
FILLERS = ("The parcel came two days late and nobody told me.", "Staff were friendly and quick.",
           "I had to call three times before anyone answered.", "Great value for the price.",
           "The app crashed when I tried to pay.", "Would recommend to friends.", "Returns were painless.",
           "Assembly instructions were confusing.", "Delivery slot was respected, thanks.", "")
TEAMS = 40
EMBEDDING_BYTES = 384 * 2  # all-MiniLM-L6-v2's dimension, float16, as the tagger stores it
END = datetime(2026, 11, 30, tzinfo=UTC)  # a Monday
START = END - timedelta(days=364)  # 52 weeks, a Monday
MODEL_VERSIONS = json.dumps({"tagger": "voc-tagger.v5", "encoder": "mt-full.v5", "sentiment": "sentiment.v5",
                             "emotions": "emotions.v5", "needs": "needs.v5", "touchpoint": "touchpoints.retail.v1"})

ITEM_COLUMNS = ("id", "source_id", "external_id", "content_hash", "audience", "channel", "touchpoint",
                "journey_stage", "segment", "org_unit", "language", "text", "nps", "csat", "stars", "author",
                "created_at", "ingested_at", "updated_at", "extra")
TAG_COLUMNS = ("item_id", "model", "model_version", "model_versions", "sentiment", "sentiment_score",
               "sentiment_probs", "p_negative", "emotions", "emotion_scores", "cx_emotions", "needs",
               "need_scores", "touchpoint", "topic_id", "flags", "tagged_at")
LABEL_COLUMNS = ("item_id", "kind", "label", "score")
EMBEDDING_COLUMNS = ("item_id", "model", "dim", "vector")


def _stamp(seconds: np.ndarray) -> list[str]:
    base = START.replace(tzinfo=None)
    return [(base + timedelta(seconds=float(s))).strftime("%Y-%m-%d %H:%M:%S.%f") for s in seconds]


def _score_pool(rng: np.random.Generator, labels: tuple[str, ...], size: int = 512) -> list[str]:
    """JSON score dicts like the tagger's (every label, 4 decimals), to pick from per item."""
    return [json.dumps({label: round(float(v), 4) for label, v in zip(labels, rng.random(len(labels)), strict=True)})
            for _ in range(size)]


def chunks(items: int, employees: int, seed: int = 7, chunk: int = 50_000):
    """The rows to store, `chunk` items at a time: (items, tags, labels, embeddings) tuples."""
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    emotion_pool = _score_pool(rng, GOEMOTIONS_LABELS)
    need_pool = _score_pool(rng, NEED_LABELS)
    prototypes = np.random.default_rng(seed + 1).standard_normal((len(TOUCHPOINTS), 384)).astype(np.float32) * 2
    total = items + employees
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        ids = np.arange(start + 1, start + n + 1)
        employee = ids > items
        seconds = np.sort(rng.integers(0, 364 * 86400, n))
        touch = rng.integers(0, len(TOUCHPOINTS), n)
        score = np.clip(rng.normal(np.where(touch == 3, -0.3, 0.25), 0.45), -1, 1).round(3)
        has_nps = rng.random(n) < 0.4
        nps = np.clip(np.round(7 + 4 * score + rng.normal(0, 1.5, n)), 0, 10).astype(int)
        csat = rng.integers(1, 6, n)
        has_csat = rng.random(n) < 0.3
        stars = rng.integers(1, 6, n)
        has_stars = rng.random(n) < 0.3
        topic = rng.integers(1, 31, n)
        has_topic = rng.random(n) < 0.85
        channel = rng.integers(0, len(CHANNELS), n)
        segment = rng.integers(0, len(SEGMENTS), n)
        language = rng.integers(0, len(LANGUAGES), n)
        team = rng.integers(0, TEAMS, n)
        person = rng.integers(0, 25, n)
        filler = rng.integers(0, len(FILLERS), (n, 2))
        pick = rng.integers(0, 512, (n, 2))
        # unit-free float16 vectors near their touchpoint's prototype, as sentence embeddings cluster
        # (random bytes would hold NaNs and infinities: float16 with every exponent bit set)
        vectors = (prototypes[touch] + rng.standard_normal((n, 384), dtype=np.float32)).astype("<f2").tobytes()
        stamps = _stamp(seconds)
        item_rows, tag_rows, label_rows, embedding_rows = [], [], [], []
        for i in range(n):
            item_id = int(ids[i])
            emp = bool(employee[i])
            tp = TOUCHPOINTS[touch[i]] if not emp else EMPLOYEE_TOUCHPOINTS[touch[i]]
            s = float(score[i])
            text = (f"Feedback {item_id} about the {tp}: it was {'good' if s > 0 else 'not good'}. "
                    f"{FILLERS[filler[i, 0]]} {FILLERS[filler[i, 1]]}").strip()
            item_rows.append((
                item_id, 2 if emp else 1, f"b{item_id}", f"{item_id:040x}", "employee" if emp else "customer",
                "pulse" if emp else CHANNELS[channel[i]], None if tp == "unknown" else tp,
                STAGES.get(tp), TENURES[segment[i]] if emp else SEGMENTS[segment[i]],
                f"team-{team[i]:02d}" if emp else None, LANGUAGES[language[i]], text,
                int(nps[i]) if has_nps[i] else None, int(csat[i]) if has_csat[i] and not emp else None,
                float(stars[i]) if has_stars[i] and not emp else None,
                f"p-{team[i]}-{person[i]}" if emp else None, stamps[i], stamps[i], stamps[i], "{}"))
            sentiment = "positive" if s > 0.2 else "negative" if s < -0.2 else "neutral"
            p_negative = round(min(1.0, max(0.0, 0.5 - s / 2)), 4)
            probs = json.dumps({"negative": p_negative, "neutral": round(1 - p_negative, 4) / 2,
                                "positive": round(1 - p_negative, 4) / 2})
            emotion = EMOTIONS[(touch[i] + (s < 0)) % len(EMOTIONS)]
            needs = [NEEDS[j] for j in np.flatnonzero(rng.random(len(NEEDS)) < 0.12)]
            tag_rows.append((item_id, "bench", "5", MODEL_VERSIONS, sentiment, s, probs, p_negative,
                             json.dumps([emotion]), emotion_pool[pick[i, 0]], "[]", json.dumps(needs),
                             need_pool[pick[i, 1]], "unknown" if tp == "unknown" else None,
                             int(topic[i]) if has_topic[i] and not emp else None, "[]", now))
            for need in needs:
                label_rows.append((item_id, "need", need, 0.9))
            label_rows.append((item_id, "emotion", emotion, 0.8))
            embedding_rows.append((item_id, "mt-full.v5", 384,
                                   vectors[i * EMBEDDING_BYTES:(i + 1) * EMBEDDING_BYTES]))
        yield start + n, total, item_rows, tag_rows, label_rows, embedding_rows


# The 30 customer topics items are spread over, named by their keywords as a fitted topic model names them.
TOPIC_KEYWORDS = tuple(tuple(t.split()) for t in (
    "late parcel courier", "refund waiting weeks", "rude staff manager", "app crash login", "checkout card declined",
    "discount code expired", "size chart wrong", "queue till slow", "damaged box packaging", "tracking not updated",
    "helpful friendly staff", "fast delivery next_day", "return label printer", "out of stock", "price too high",
    "great value price", "chat agent helpful", "phone hold hour", "website slow search", "missing item order",
    "wrong colour product", "easy returns exchange", "loyalty points card", "store clean tidy", "delivery slot missed",
    "assembly instructions confusing", "quality poor broke", "gift wrap service", "email spam newsletter",
    "click collect ready"))


def _fixed_rows(items_per_topic: int = 0) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    sources = [(1, "bench-customer", "bench", "customer", "{}", True, now, now),
               (2, "bench-pulse", "bench", "employee", "{}", True, now, now)]
    topics = [(i, "customer", " / ".join(words[:2]), json.dumps(list(words)), "active", False, items_per_topic,
               "{}", now) for i, words in enumerate(TOPIC_KEYWORDS, start=1)]
    return sources, topics


SOURCE_COLUMNS = ("id", "name", "connector", "audience", "config", "enabled", "created_at", "updated_at")
TOPIC_COLUMNS = ("id", "audience", "label", "keywords", "status", "pinned", "size", "extra", "updated_at")


class SqliteWriter:
    """Writes the generated rows into a migrated SQLite file with executemany."""

    def __init__(self, url: str, topic_size: int = 0) -> None:
        self.engine = make_engine(url)
        self.raw = self.engine.raw_connection()
        self.cursor = self.raw.cursor()
        self.cursor.execute("PRAGMA synchronous=OFF")
        sources, topics = _fixed_rows(topic_size)
        self._insert("sources", SOURCE_COLUMNS, sources)
        self._insert("topics", TOPIC_COLUMNS, topics)

    def _insert(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        self.cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                f"({', '.join('?' * len(columns))})", rows)

    def write(self, items: list, tags: list, labels: list, embeddings: list) -> None:
        self._insert("feedback_items", ITEM_COLUMNS, items)
        self._insert("tags", TAG_COLUMNS, tags)
        self._insert("tag_labels", LABEL_COLUMNS, labels)
        self._insert("item_embeddings", EMBEDDING_COLUMNS, embeddings)
        self.raw.commit()

    def finish(self) -> None:
        self.cursor.execute("ANALYZE")
        self.raw.commit()
        self.raw.close()
        self.engine.dispose()


class PostgresWriter:
    """Writes the generated rows into a migrated PostgreSQL database with COPY."""

    def __init__(self, url: str, topic_size: int = 0) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.raw = self.engine.raw_connection()
        self.connection = self.raw.driver_connection
        self.connection.execute("SET TIME ZONE 'UTC'")  # the generated moments are UTC, written without a zone
        sources, topics = _fixed_rows(topic_size)
        self._copy("sources", SOURCE_COLUMNS, sources)
        self._copy("topics", TOPIC_COLUMNS, topics)

    def _copy(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        with self.connection.cursor() as cursor, \
                cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def write(self, items: list, tags: list, labels: list, embeddings: list) -> None:
        self._copy("feedback_items", ITEM_COLUMNS, items)
        self._copy("tags", TAG_COLUMNS, tags)
        self._copy("tag_labels", LABEL_COLUMNS, labels)
        self._copy("item_embeddings", EMBEDDING_COLUMNS, embeddings)
        self.raw.commit()

    def finish(self) -> None:
        with self.connection.cursor() as cursor:  # ids were given: move the sequences past them
            for table in ("sources", "topics", "feedback_items"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT MAX(id) FROM {table}))")
        self.raw.commit()
        self.raw.close()
        self.engine.dispose()
        from bench.postgres import vacuum_analyze

        vacuum_analyze(self.url)


def generate(urls: dict[str, str], items: int, employees: int, seed: int = 7) -> None:
    """Migrated databases at `urls` (backend: URL) holding the same `items` customer and
    `employees` employee items, tagged."""
    writers: list[SqliteWriter | PostgresWriter] = []
    for backend, url in urls.items():
        upgrade(url)
        topic_size = round(items * 0.85 / len(TOPIC_KEYWORDS))  # 85% of the customer items carry a topic
        writers.append(SqliteWriter(url, topic_size) if backend == "sqlite" else PostgresWriter(url, topic_size))
    spent = dict.fromkeys(urls, 0.0)
    for done, total, *rows in chunks(items, employees, seed):
        for backend, writer in zip(urls, writers, strict=True):
            started = time.perf_counter()
            writer.write(*rows)
            spent[backend] += time.perf_counter() - started
        print(f"  generated {done:,} / {total:,}", flush=True)
    for backend, writer in zip(urls, writers, strict=True):
        started = time.perf_counter()
        writer.finish()
        spent[backend] += time.perf_counter() - started
        print(f"  {backend}: {items + employees:,} items stored in {spent[backend]:.0f}s "
              f"(inserts{' and VACUUM ANALYZE' if backend == 'postgres' else ' and ANALYZE'})", flush=True)


def measure(client, path: str, params: dict, repeat: int) -> dict[str, float]:
    client.get(path, params=params).raise_for_status()  # warm
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path, params=params)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    times.sort()
    return {"p50": statistics.median(times), "p95": times[max(0, int(round(0.95 * len(times))) - 1)],
            "max": times[-1], "n": len(times)}


def cases_for() -> tuple[list[tuple[str, str, dict[str, Any]]], list[tuple[str, str, dict[str, Any]]]]:
    """The measured requests (with targets), and slower ones computed from the items."""
    year = {"start": START.date().isoformat(), "end": END.date().isoformat()}
    cases = [
        ("trends: 12 months weekly by touchpoint", "/v1/trends", {"by": "touchpoint", "interval": "week", **year}),
        ("trends: same, no date bounds", "/v1/trends", {"by": "touchpoint", "interval": "week"}),
        ("trends: 12 months monthly by topic", "/v1/trends", {"by": "topic", "interval": "month", **year}),
        ("trends: 12 months weekly by need", "/v1/trends", {"by": "need", "interval": "week", **year}),
        ("trends: 12 months weekly by touchpoint, with mixes", "/v1/trends",
         {"by": "touchpoint", "interval": "week", "mixes": "true", **year}),
        ("aggregates: first page (1000 rows, JSON)", "/v1/aggregates", {"interval": "week", "limit": 1000}),
        ("aggregates: first page (1000 rows, CSV)", "/v1/aggregates",
         {"interval": "week", "limit": 1000, "format": "csv"}),
        ("aggregates: first page (1000 rows, Parquet)", "/v1/aggregates",
         {"interval": "week", "limit": 1000, "format": "parquet"}),
        ("journey: 12 months", "/v1/journey", year),
    ]
    slow_cases = [
        ("trends: by need with need/emotion mixes, from items", "/v1/trends",
         {"by": "need", "interval": "month", "mixes": "true", **year}),
        ("trends: filtered (channel=survey), from items", "/v1/trends",
         {"by": "touchpoint", "interval": "week", "channel": "survey", **year}),
        ("compare: last week vs the week before", "/v1/compare",
         {"period": "week", "at": (END - timedelta(days=3)).date().isoformat(), "metric": "nps"}),
        ("drivers: NPS over the last 90 days", "/v1/drivers",
         {"outcome": "nps", "start": (END - timedelta(days=90)).date().isoformat(), "end": year["end"]}),
        ("employee trends: monthly by org_unit", "/v1/trends",
         {"by": "org_unit", "interval": "month", "audience": "employee", **year}),
    ]
    return cases, slow_cases


def measure_backend(settings: Settings, *, repeat: int) -> dict[str, dict[str, float]]:
    """Build the rollups (if not yet built), then time every case through the app."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from feedback.analytics.rollups import rebuild_rollups
    from feedback.apikeys import create_key
    from feedback.models import RollupState

    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        if session.get(RollupState, "customer") is None:
            started = time.perf_counter()
            result = rebuild_rollups(session)
            print(f"  built rollups for {result.days} days ({result.rows_written:,} rows) in "
                  f"{time.perf_counter() - started:.0f}s", flush=True)
        key = create_key(session, name="bench", scopes=["admin"]).secret_key
    engine.dispose()
    cases, slow_cases = cases_for()
    figures: dict[str, dict[str, float]] = {}
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        # a full page further in, reached through the cursor
        cursor = client.get("/v1/aggregates", params={"interval": "week", "limit": 1000}).json()["next_cursor"]
        cursor = client.get("/v1/aggregates", params={"interval": "week", "limit": 1000,
                                                       "cursor": cursor}).json()["next_cursor"]
        cases.insert(5, ("aggregates: 3rd page via cursor (1000 rows, JSON)", "/v1/aggregates",
                         {"interval": "week", "limit": 1000, "cursor": cursor}))
        print(f"{'request':<52} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        for label, path_, params in cases:
            figures[label] = m = measure(client, path_, params, repeat)
            print(f"{label:<52} {m['p50']:>8.1f} {m['p95']:>8.1f} {m['max']:>8.1f}", flush=True)
        print("not in the targets (computed from the items):")
        for label, path_, params in slow_cases:
            figures[label] = m = measure(client, path_, params, 3)
            print(f"{label:<52} {m['p50']:>8.1f} {m['p95']:>8.1f} {m['max']:>8.1f}", flush=True)
    return figures


def sizes(backend: str, url: str, items: int) -> dict[str, float]:
    """Bytes on disk per stored item: the whole database and its largest tables."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if backend == "sqlite":
                page = connection.scalar(text("PRAGMA page_size"))
                total = page * connection.scalar(text("PRAGMA page_count"))
                try:
                    rows = connection.execute(text(
                        "SELECT COALESCE(m.tbl_name, d.name), SUM(d.pgsize) FROM dbstat d "
                        "LEFT JOIN sqlite_master m ON m.name = d.name GROUP BY 1")).all()
                except Exception:  # noqa: BLE001 (SQLite built without dbstat: the total only)
                    rows = []
            else:
                total = connection.scalar(text("SELECT pg_database_size(current_database())"))
                rows = connection.execute(text(
                    "SELECT relname, pg_total_relation_size(oid) FROM pg_class "
                    "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace")).all()
    finally:
        engine.dispose()
    per_item = {"database": total / items}
    per_item.update({name: size / items for name, size in rows if size / items >= 1})
    return per_item


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000, help="customer items (default 1,000,000)")
    parser.add_argument("--employees", type=int, default=20_000, help="employee items (default 20,000)")
    parser.add_argument("--repeat", type=int, default=60, help="requests per endpoint")
    parser.add_argument("--backends", default="sqlite", help="sqlite, postgres, or sqlite,postgres (same data)")
    parser.add_argument("--db", type=Path, default=None, help="reuse or keep this SQLite file")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL server to use (a superuser URL: the bench creates and drops its own "
                             "database); default: a throwaway durable server (bench/postgres.py)")
    parser.add_argument("--cache", action="store_true", help="keep the response cache (api.cache_seconds)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the PostgreSQL database (and a throwaway server running) to measure again")
    parser.add_argument("--postgres-db", default=None,
                        help="measure this PostgreSQL database, generated by an earlier run with --keep")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or not set(backends) <= {"sqlite", "postgres"}:
        parser.error(f"--backends: sqlite and/or postgres, not {args.backends!r}")

    tmp = tempfile.TemporaryDirectory(prefix="voc-bench-")
    urls: dict[str, str] = {}
    fresh: dict[str, str] = {}
    pg = None
    if "sqlite" in backends:
        path = args.db or Path(tmp.name) / "bench.db"
        urls["sqlite"] = f"sqlite:///{path}"
        if not path.exists():
            fresh["sqlite"] = urls["sqlite"]
    if "postgres" in backends:
        from bench import postgres

        if args.postgres_db:  # generated by an earlier run with --keep
            urls["postgres"] = args.postgres_db
        else:
            pg = postgres.server(args.database_url)
            urls["postgres"] = fresh["postgres"] = pg.create_database(prefix="bench")
    total = args.items + args.employees
    api = ApiSettings() if args.cache else ApiSettings(cache_seconds=0)
    figures: dict[str, dict[str, dict[str, float]]] = {}
    per_item: dict[str, dict[str, float]] = {}
    try:
        if fresh:
            started = time.perf_counter()
            generate(fresh, args.items, args.employees)
            print(f"generated {args.items:,} customer + {args.employees:,} employee items into "
                  f"{', '.join(fresh)} in {time.perf_counter() - started:.0f}s")
        for backend, url in urls.items():
            name = "SQLite" if backend == "sqlite" else f"PostgreSQL {postgres.version(url)}"
            print(f"\n{args.items:,} customer items, {name}, through the ASGI app with an API key "
                  f"({args.repeat} requests each, response cache {'on' if args.cache else 'off'})", flush=True)
            settings = Settings(database_url=url, api=api, _env_file=None)
            figures[backend] = measure_backend(settings, repeat=args.repeat)
            per_item[backend] = sizes(backend, url, total)
    finally:
        if pg is not None and args.keep:
            print(f"kept the PostgreSQL database: --postgres-db {urls['postgres']}"
                  + ("" if args.database_url else f" (server data in {pg.root}; stop it with pg.stop())"))
        elif pg is not None:
            pg.drop_database(urls["postgres"])
            if not args.database_url:
                pg.stop()
        tmp.cleanup()

    targets = {"trends: 12 months weekly by touchpoint": 50.0, "aggregates: first page (1000 rows, JSON)": 200.0,
               "aggregates: 3rd page via cursor (1000 rows, JSON)": 200.0,
               "aggregates: first page (1000 rows, CSV)": 200.0,
               "aggregates: first page (1000 rows, Parquet)": 200.0}
    if len(figures) > 1:
        print(f"\np95 ms, same data, same run{' (response cache off)' if not args.cache else ''}")
        print(f"{'request':<52} " + " ".join(f"{b:>9}" for b in figures) + f" {'target':>7}")
        for label in next(iter(figures.values())):
            target = targets.get(label)
            row = " ".join(f"{figures[b][label]['p95']:>9.1f}" for b in figures)
            print(f"{label:<52} {row} {f'{target:.0f}' if target else '':>7}")
    for backend in figures:
        missed = [label for label, target in targets.items() if figures[backend][label]["p95"] > target]
        print(f"{backend}: targets {'met' if not missed else 'MISSED: ' + '; '.join(missed)}")
    for backend, sizes_ in per_item.items():
        parts = ", ".join(f"{name} {size:,.0f}" for name, size in sorted(sizes_.items(), key=lambda kv: -kv[1])
                          if name != "database")
        print(f"{backend}: {sizes_['database']:,.0f} bytes per item on disk, "
              f"{sizes_['database'] * 1e6 / 2**30:.2f} GiB per million items ({parts})")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"cpu cores: {os.cpu_count()}; load average {load:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
