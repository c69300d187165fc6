"""API latency on a large SQLite database: generate, build the rollups, measure the real endpoints.

    .venv/bin/python bench/api_latency.py                 # 1,000,000 customer items, 12 months
    .venv/bin/python bench/api_latency.py --items 200000  # smaller, faster

Items, tags and labels are written straight into a fresh, migrated SQLite file (bulk inserts,
not through the tagger: this measures reads). The rollups are then built once, as the tagging
job keeps them, and every endpoint is called through the real ASGI app (TestClient, with an API
key, so authentication is part of the measured time). Prints p50/p95/max per request.

Targets (issue 6): p95 <= 50 ms for a 12-month weekly trend by touchpoint, <= 200 ms for a page
of aggregates.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("VOC_CONFIG", "/nonexistent/voc.toml")

from feedback.config import Settings  # noqa: E402
from feedback.db import make_engine, session_scope  # noqa: E402
from feedback.migrate import upgrade  # noqa: E402

TOUCHPOINTS = ("website", "app", "checkout", "delivery", "returns", "support", "store", "unknown")
STAGES = {"website": "discover", "app": "discover", "checkout": "purchase", "delivery": "receive",
          "returns": "service", "support": "service", "store": "purchase", "unknown": None}
CHANNELS = ("survey", "review", "app_review", "ticket", "chat", "social", "email")
SEGMENTS = ("new", "returning", "loyal", "business")
LANGUAGES = ("en", "en", "en", "de", "fr", "es")
NEEDS = ("price", "speed", "reliability", "help", "choice", "ease", "trust", "quality")
EMOTIONS = ("joy", "anger", "disappointment", "gratitude", "confusion", "annoyance", "neutral")
TEAMS = 40
END = datetime(2026, 11, 30, tzinfo=UTC)  # a Monday
START = END - timedelta(days=364)  # 52 weeks, a Monday


def _stamp(seconds: np.ndarray) -> list[str]:
    base = START.replace(tzinfo=None)
    return [(base + timedelta(seconds=float(s))).strftime("%Y-%m-%d %H:%M:%S.%f") for s in seconds]


def generate(path: Path, items: int, employees: int, seed: int = 7) -> None:
    """A migrated SQLite file with `items` customer and `employees` employee items, tagged."""
    upgrade(f"sqlite:///{path}")
    rng = np.random.default_rng(seed)
    engine = make_engine(f"sqlite:///{path}")
    raw = engine.raw_connection()
    cur = raw.cursor()
    cur.execute("PRAGMA synchronous=OFF")
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    cur.execute("INSERT INTO sources (id, name, connector, audience, config, enabled, created_at, updated_at) "
                "VALUES (1, 'bench-customer', 'bench', 'customer', '{}', 1, ?, ?), "
                "(2, 'bench-pulse', 'bench', 'employee', '{}', 1, ?, ?)", (now, now, now, now))
    cur.executemany("INSERT INTO topics (id, audience, label, keywords, status, pinned, size, extra, updated_at) "
                    "VALUES (?, 'customer', ?, '[]', 'active', 0, 0, '{}', ?)",
                    [(i, f"topic {i}", now) for i in range(1, 31)])
    total = items + employees
    chunk = 100_000
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
        stamps = _stamp(seconds)
        item_rows, tag_rows, label_rows = [], [], []
        for i in range(n):
            item_id = int(ids[i])
            emp = bool(employee[i])
            tp = TOUCHPOINTS[touch[i]] if not emp else ("manager", "tools", "pay_benefits", "day_to_day")[touch[i] % 4]
            item_rows.append((
                item_id, 2 if emp else 1, f"b{item_id}", "h", "employee" if emp else "customer",
                "pulse" if emp else CHANNELS[channel[i]], None if tp == "unknown" else tp,
                None if emp else STAGES[tp], None if emp else SEGMENTS[segment[i]],
                f"team-{team[i]:02d}" if emp else None, LANGUAGES[language[i]],
                f"Feedback {item_id} about the {tp}: it was {'good' if score[i] > 0 else 'not good'}.",
                int(nps[i]) if has_nps[i] else None, int(csat[i]) if has_csat[i] and not emp else None,
                float(stars[i]) if has_stars[i] and not emp else None,
                f"p-{team[i]}-{person[i]}" if emp else None, stamps[i], stamps[i], stamps[i], "{}"))
            s = float(score[i])
            sentiment = "positive" if s > 0.2 else "negative" if s < -0.2 else "neutral"
            tag_rows.append((item_id, "bench", "0", "{}", sentiment, s, "{}", "[]", "{}", "[]", "[]", "{}",
                             "unknown" if tp == "unknown" else None,
                             int(topic[i]) if has_topic[i] and not emp else None, "[]", now))
            for j in np.flatnonzero(rng.random(len(NEEDS)) < 0.12):
                label_rows.append((item_id, "need", NEEDS[j], 0.9))
            label_rows.append((item_id, "emotion", EMOTIONS[(touch[i] + (s < 0)) % len(EMOTIONS)], 0.8))
        cur.executemany("INSERT INTO feedback_items (id, source_id, external_id, content_hash, audience, channel, "
                        "touchpoint, journey_stage, segment, org_unit, language, text, nps, csat, stars, author, "
                        "created_at, ingested_at, updated_at, extra) VALUES "
                        "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", item_rows)
        cur.executemany("INSERT INTO tags (item_id, model, model_version, model_versions, sentiment, "
                        "sentiment_score, sentiment_probs, emotions, emotion_scores, cx_emotions, needs, "
                        "need_scores, touchpoint, topic_id, flags, tagged_at) VALUES "
                        "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", tag_rows)
        cur.executemany("INSERT INTO tag_labels (item_id, kind, label, score) VALUES (?,?,?,?)", label_rows)
        raw.commit()
        print(f"  generated {start + n:,} / {total:,}", flush=True)
    cur.execute("ANALYZE")
    raw.commit()
    raw.close()
    engine.dispose()


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000, help="customer items (default 1,000,000)")
    parser.add_argument("--employees", type=int, default=20_000, help="employee items (default 20,000)")
    parser.add_argument("--repeat", type=int, default=60, help="requests per endpoint")
    parser.add_argument("--db", type=Path, default=None, help="reuse or keep this SQLite file")
    args = parser.parse_args(argv)

    from fastapi.testclient import TestClient

    from api.main import create_app
    from feedback.analytics.rollups import rebuild_rollups
    from feedback.apikeys import create_key

    tmp = None
    path = args.db
    if path is None:
        tmp = tempfile.TemporaryDirectory(prefix="voc-bench-")
        path = Path(tmp.name) / "bench.db"
    settings = Settings(database_url=f"sqlite:///{path}", _env_file=None)
    if not path.exists():
        started = time.perf_counter()
        generate(path, args.items, args.employees)
        print(f"generated {args.items:,} customer + {args.employees:,} employee items in "
              f"{time.perf_counter() - started:.0f}s ({path.stat().st_size / 2**20:.0f} MiB)")
        engine = make_engine(settings.database_url)
        started = time.perf_counter()
        with session_scope(engine) as session:
            result = rebuild_rollups(session)
        print(f"built rollups for {result.days} days ({result.rows_written:,} rows) in "
              f"{time.perf_counter() - started:.0f}s")
        engine.dispose()
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        key = create_key(session, name="bench", scopes=["admin"]).secret_key
    engine.dispose()

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
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        # a full page further in, reached through the cursor
        cursor = client.get("/v1/aggregates", params={"interval": "week", "limit": 1000}).json()["next_cursor"]
        cursor = client.get("/v1/aggregates", params={"interval": "week", "limit": 1000,
                                                       "cursor": cursor}).json()["next_cursor"]
        cases.insert(5, ("aggregates: 3rd page via cursor (1000 rows, JSON)", "/v1/aggregates",
                         {"interval": "week", "limit": 1000, "cursor": cursor}))
        print(f"\n{args.items:,} customer items, SQLite, through the ASGI app with an API key "
              f"({args.repeat} requests each)")
        print(f"{'request':<52} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        for label, path_, params in cases:
            m = measure(client, path_, params, args.repeat)
            print(f"{label:<52} {m['p50']:>8.1f} {m['p95']:>8.1f} {m['max']:>8.1f}", flush=True)
        print("not in the targets (computed from the items):")
        for label, path_, params in slow_cases:
            m = measure(client, path_, params, 3)
            print(f"{label:<52} {m['p50']:>8.1f} {m['p95']:>8.1f} {m['max']:>8.1f}", flush=True)
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
