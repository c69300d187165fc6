"""Load: many clients against a real server while the tagging job writes to the same SQLite file.

    .venv/bin/python bench/load.py                          # 50 clients, 60 s, `voc tag` alongside
    .venv/bin/python bench/load.py --clients 5 --duration 5 # a short smoke run
    .venv/bin/python bench/load.py --no-tagger              # the API alone
    .venv/bin/python bench/load.py --database postgres      # the same on a PostgreSQL server

Set-up (not measured): a temporary SQLite database gets the demo generator's data (about 6,000
items over 16 weeks), all but the newest `--backlog-days` are tagged here, a customer topic model
is fitted, the rollups built and a digest stored, so every read has something to read. Then a
real server (`uvicorn api.main:create_app`, one process, on 127.0.0.1 only) serves it while the
tagging job runs in its own processes on the same database (`voc tag` with one torch thread,
leaving the other core to the API, started again a second after each run ends, as the
scheduler's tag job would: the backlog first, then what the clients push), and `--clients`
clients send requests back to back for `--duration` seconds: 70% reads (trends, journey, a
feedback page, topics, the latest digest, the CSV aggregates export), 30% pushes of 5 new items
with unique ids and an Idempotency-Key. A push answered 503 (saturated), 409 "in progress" or
not at all is sent again with the same key, as a client should. `--workdir DIR` keeps the
seeded database for later runs (each run works on a fresh copy). With `--database postgres` each
run copies the seeded SQLite database into a fresh database on a throwaway PostgreSQL server
(tests/pg.py: Debian's binaries, on loopback) and everything runs against that.

Prints errors (any answer but 2xx and the 503s, and transport errors), the 503s, p50/p95/p99 of
reads and of writes (each HTTP request), requests per second, what the tagger did, the server's
logged errors, and the lost/duplicated count: every acknowledged pushed item must be stored
exactly once at the end. Targets (issue 20), 2 cores, SQLite: 0 errors, read p99 <= 1 s,
write p99 <= 2 s, 0 lost, 0 duplicated. Everything is bounded: each request by `--timeout`,
the run by `--duration`, and the processes it starts are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VOC_CONFIG", "/nonexistent/voc.toml")

from feedback.config import Settings  # noqa: E402
from feedback.db import make_engine, session_factory, session_scope  # noqa: E402

PUSH_SOURCE = "load:push"
READS = (
    "/v1/trends?by=touchpoint&interval=week",
    "/v1/journey",
    "/v1/feedback?audience=customer&limit=50",  # a cursor is added per request
    "/v1/topics?audience=customer",
    "/v1/digests/latest?audience=customer",
    "/v1/aggregates?format=csv",
)
PUSH_ATTEMPTS = 6


@dataclass
class Tally:
    """What the clients saw."""

    read_s: list[float] = field(default_factory=list)
    write_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    turned_away: int = 0  # 503s (and 409 "in progress"), each retried after Retry-After
    acknowledged: list[str] = field(default_factory=list)  # external ids answered 200
    pushes_given_up: int = 0
    read_s_by_path: dict[str, list[float]] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(settings: Settings, *, customers_per_week: int, backlog_days: float, topics: bool) -> dict[str, Any]:
    """Demo data in a fresh database, partly tagged, with a topic model and a digest."""
    from feedback.analytics.rollups import refresh_rollups
    from feedback.apikeys import create_key
    from feedback.demo.generator import write_csv
    from feedback.ingest.files import ingest_file
    from feedback.migrate import upgrade
    from feedback.models import FeedbackItem, Tag
    from jobs.tasks import load_service_tagger, tag_pending

    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    csv_path = settings.var_dir / "demo.csv"
    rows = write_csv(csv_path, seed=7, customers_per_week=customers_per_week)
    stats, _ = ingest_file(engine, csv_path, settings=settings, source_name="demo:northwind")
    started = time.perf_counter()
    with session_factory(engine)() as session:
        from sqlalchemy import func, select

        newest_item = session.scalar(select(func.max(FeedbackItem.created_at)))
        assert newest_item is not None
        # The ids follow the file, which is in time order: tag all but the newest days.
        pretag = session.scalar(select(func.count()).select_from(FeedbackItem).where(
            FeedbackItem.created_at < newest_item - timedelta(days=backlog_days))) or 0
    tagger = load_service_tagger(settings)
    tagged = tag_pending(engine, tagger, limit=pretag).tagged
    print(f"seed: {rows} demo rows, {stats.new} items; {tagged} tagged here in "
          f"{time.perf_counter() - started:.0f} s, {stats.new - tagged} left for the tagger", flush=True)
    if topics:
        from feedback.topics.service import refit
        from jobs.cli_topics import phrase_embedder_for

        with session_scope(engine) as session:
            report = refit(session, var_dir=settings.var_dir, audience="customer",
                           phrase_embedder=phrase_embedder_for)
        with session_scope(engine) as session:  # the refit moved items between topics: rebuild
            refresh_rollups(session)
        print(f"seed: customer topics fitted ({report.n_topics} topics), rollups rebuilt", flush=True)
    with session_factory(engine)() as session:
        from sqlalchemy import func, select

        newest: datetime | None = session.scalar(
            select(func.max(FeedbackItem.created_at)).join(Tag, Tag.item_id == FeedbackItem.id))
        max_id = session.scalar(select(func.max(FeedbackItem.id))) or 1
    if newest is not None:
        from jobs.digests import run_digests

        year, week, _ = newest.isocalendar()
        detail = run_digests(settings, week=f"{year}-W{week:02d}", audiences=("customer",), send=False)
        print(f"seed: digest for {detail['week']}", flush=True)
    with session_scope(engine) as session:
        key = create_key(session, name="load", scopes=("admin",)).secret_key
    engine.dispose()
    return {"key": key, "max_id": max_id}


def _settings(folder: Path) -> Settings:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "var").mkdir(exist_ok=True)
    return Settings(database_url=f"sqlite:///{folder / 'voc.db'}", var_dir=folder / "var", _env_file=None)


def _on_postgres(settings: Settings) -> tuple[Settings, Any]:
    """A fresh database on a throwaway PostgreSQL server holding a copy of the seeded SQLite one."""
    sys.path.insert(0, str(ROOT / "tests"))
    from pg import PgServer

    server = PgServer.start()
    atexit.register(server.stop)  # also when the run fails
    url = server.copy_of(settings.database_url, prefix="load")
    print(f"postgres: seed copied into {url}", flush=True)
    return settings.model_copy(update={"database_url": url}), server


def count_tags(settings: Settings) -> int:
    from sqlalchemy import func, select

    from feedback.models import Tag

    engine = make_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            return session.scalar(select(func.count()).select_from(Tag)) or 0
    finally:
        engine.dispose()


async def client(n: int, base: str, key: str, until: float, tally: Tally, *, read_share: float,
                 max_id: int, timeout: float, rng: random.Random) -> None:
    """One client: requests back to back until `until`."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=timeout) as http:
        pushes = 0
        while time.monotonic() < until:
            if rng.random() < read_share:
                path = rng.choice(READS)
                if path.startswith("/v1/feedback"):
                    path += f"&cursor={rng.randrange(max_id)}"
                await _read(http, path, tally)
            else:
                pushes += 1
                await _push(http, f"c{n}-{pushes}", tally)


async def _read(http: httpx.AsyncClient, path: str, tally: Tally) -> None:
    started = time.perf_counter()
    try:
        answer = await http.get(path)
    except httpx.HTTPError as exc:
        tally.errors[f"read {type(exc).__name__}"] += 1
        return
    seconds = time.perf_counter() - started
    tally.read_s.append(seconds)
    tally.read_s_by_path.setdefault(path.split("?")[0], []).append(seconds)
    if answer.status_code == 503:
        tally.turned_away += 1
        await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))
    elif answer.status_code >= 300:
        tally.errors[f"read {answer.status_code} {path.split('?')[0]}"] += 1


async def _push(http: httpx.AsyncClient, name: str, tally: Tally) -> None:
    ids = [f"load-{name}-{i}" for i in range(5)]
    body = {"source": PUSH_SOURCE, "items": [
        {"external_id": external_id, "text": f"Order {external_id}: the parcel came two days late",
         "channel": "survey"} for external_id in ids]}
    for _ in range(PUSH_ATTEMPTS):  # the same Idempotency-Key every time: never stored twice
        started = time.perf_counter()
        try:
            answer = await http.post("/v1/feedback", json=body, headers={"Idempotency-Key": f"load-{name}"})
        except httpx.HTTPError as exc:
            tally.errors[f"push {type(exc).__name__}"] += 1
            continue
        tally.write_s.append(time.perf_counter() - started)
        if answer.status_code == 200:
            tally.acknowledged.extend(ids)
            return
        if answer.status_code in (409, 503) and "Retry-After" in answer.headers:
            tally.turned_away += 1
            await asyncio.sleep(float(answer.headers["Retry-After"]))
            continue
        tally.errors[f"push {answer.status_code}: {answer.text[:80]}"] += 1
        return
    tally.pushes_given_up += 1


def lost_and_duplicated(settings: Settings, acknowledged: list[str]) -> tuple[int, int]:
    """Acknowledged ids stored not at all, and stored more than once."""
    from sqlalchemy import func, select

    from feedback.models import FeedbackItem

    engine = make_engine(settings.database_url)
    with session_factory(engine)() as session:
        stored = Counter(dict(session.execute(
            select(FeedbackItem.external_id, func.count()).where(FeedbackItem.external_id.like("load-%"))
            .group_by(FeedbackItem.external_id)).all()))
    engine.dispose()
    lost = sum(1 for external_id in acknowledged if stored[external_id] == 0)
    duplicated = sum(1 for count in stored.values() if count > 1)
    return lost, duplicated


def _percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    p50, p95, p99 = np.percentile(np.asarray(values) * 1000, [50, 95, 99])
    return f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms, max {max(values) * 1000:.0f} ms (n={len(values)})"


def _stop(process: subprocess.Popen[bytes], grace_s: float = 20.0) -> int | None:
    """Stop a process this script started (SIGINT, then SIGKILL); its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--read-share", type=float, default=0.7)
    parser.add_argument("--tagger", action=argparse.BooleanOptionalAction, default=True,
                        help="run `voc tag` on the same database during the load")
    parser.add_argument("--customers-per-week", type=int, default=300,
                        help="demo data size: 16 weeks of this many customer and 80 employee items")
    parser.add_argument("--tagger-threads", type=int, default=1,
                        help="torch threads of the tagger (VOC_TORCH_THREADS; 1 leaves the other core to "
                             "the API); 0: torch's own choice (every core)")
    parser.add_argument("--backlog-days", type=float, default=2.0,
                        help="the newest days of the demo data are left for the tagger")
    parser.add_argument("--topics", action=argparse.BooleanOptionalAction, default=True,
                        help="fit a customer topic model before the load")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a client waits for an answer")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite",
                        help="postgres: run on a throwaway PostgreSQL server, seeded from the SQLite seed")
    parser.add_argument("--server-processes", type=int, default=1,
                        help="uvicorn worker processes of the API (each with its own limits and pool)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the seeded database here and reuse it in later runs (default: a "
                             "temporary folder, removed)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="voc-load-") as tmp:
        seeded_dir = (args.workdir or Path(tmp)) / "seed"
        if not (seeded_dir / "seed.json").is_file():
            seed_settings = _settings(seeded_dir)
            seeded = seed(seed_settings, customers_per_week=args.customers_per_week, backlog_days=args.backlog_days,
                          topics=args.topics)
            (seeded_dir / "seed.json").write_text(json.dumps(seeded))
        else:
            print(f"seed: reusing {seeded_dir}", flush=True)
            seeded = json.loads((seeded_dir / "seed.json").read_text())
        work = (args.workdir or Path(tmp)) / "run"  # a fresh copy per run: the seed stays as it was
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(seeded_dir, work)
        settings = _settings(work)
        pg_server = None
        if args.database == "postgres":
            settings, pg_server = _on_postgres(settings)
        env = {**os.environ, "VOC_DATABASE_URL": settings.database_url, "VOC_VAR_DIR": str(settings.var_dir),
               "VOC_CONFIG": "/nonexistent/voc.toml"}
        port = _free_port()
        server_log = work / "server.log"
        with open(server_log, "wb") as log_file, open(work / "tagger.log", "wb") as tagger_log:
            server = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", "--host", "127.0.0.1",
                 "--port", str(port), "--log-level", "warning", "--no-access-log",
                 "--workers", str(args.server_processes)],
                cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
            tagging: TaggingLoop | None = None
            try:
                base = f"http://127.0.0.1:{port}"
                _wait_ready(base, server)
                _warm_up(base, seeded["key"])
                tags_before = count_tags(settings)
                if args.tagger:
                    tagger_env = {**env, "VOC_TORCH_THREADS": str(args.tagger_threads)} if args.tagger_threads else env
                    tagging = TaggingLoop(tagger_env, tagger_log)
                    tagging.start()
                    _wait_tagging(settings, tags_before, tagging)
                tally = Tally()
                rng = random.Random(args.seed)
                started = time.monotonic()
                until = started + args.duration
                print(f"load: {args.clients} clients for {args.duration:.0f} s on {base}"
                      f"{', `voc tag` alongside' if tagging else ''}", flush=True)

                async def run() -> None:
                    await asyncio.gather(*(
                        client(n, base, seeded["key"], until, tally, read_share=args.read_share,
                               max_id=seeded["max_id"], timeout=args.timeout, rng=random.Random(rng.random()))
                        for n in range(args.clients)))

                asyncio.run(run())
                elapsed = time.monotonic() - started
                tagger_state = "not run"
                if tagging is not None:
                    tagging.stop()
                    failed = [code for code in tagging.exit_codes if code != 0]
                    tagger_state = (f"{len(tagging.exit_codes)} `voc tag` runs ended during the load, "
                                    f"{len(failed)} failed")
                    if failed:
                        tally.errors[f"voc tag exited {failed}"] += len(failed)
                        tagger_state += f": {(work / 'tagger.log').read_text()[-1000:]}"
                tags_during = count_tags(settings) - tags_before
            finally:
                if tagging is not None:
                    tagging.stop()
                _stop(server)
        logged = server_log.read_text(errors="replace")
        server_errors = sum(1 for line in logged.splitlines() if "Traceback" in line or " ERROR" in line
                            or line.startswith("ERROR"))
        lost, duplicated = lost_and_duplicated(settings, tally.acknowledged)

    requests = len(tally.read_s) + len(tally.write_s) + sum(tally.errors.values())
    print(f"database: {args.database}; API processes: {args.server_processes}")
    print(f"requests: {requests} in {elapsed:.0f} s ({requests / elapsed:.0f}/s)")
    print(f"errors: {sum(tally.errors.values())} {dict(tally.errors) if tally.errors else ''}")
    print(f"503 / in-progress answers (retried after Retry-After): {tally.turned_away}; "
          f"pushes given up: {tally.pushes_given_up}")
    print(f"reads:  {_percentiles(tally.read_s)}")
    print(f"writes: {_percentiles(tally.write_s)}")
    for path, seconds in sorted(tally.read_s_by_path.items()):
        print(f"  GET {path}: {_percentiles(seconds)}")
    print(f"tagger: {tagger_state}; {tags_during} items tagged during the load")
    print(f"server log: {server_errors} error lines")
    print(f"pushed items acknowledged: {len(tally.acknowledged)}; lost: {lost}; duplicated: {duplicated}")
    read_p99 = float(np.percentile(tally.read_s, 99)) if tally.read_s else 0.0
    write_p99 = float(np.percentile(tally.write_s, 99)) if tally.write_s else 0.0
    met = (not tally.errors and not server_errors and read_p99 <= 1.0 and write_p99 <= 2.0
           and lost == 0 and duplicated == 0)
    print(f"targets (0 errors, read p99 <= 1 s, write p99 <= 2 s, 0 lost, 0 duplicated): "
          f"{'met' if met else 'NOT met'}")
    return 0 if met else 1


def _warm_up(base: str, key: str) -> None:
    """One request of each kind before the clock starts: the server's first use of a module
    (imports, the language detector) is start-up, not load."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120) as http:
        for path in READS:
            http.get(path).raise_for_status()
        http.post("/v1/feedback", json={"source": PUSH_SOURCE, "items": [
            {"external_id": "warm-up", "text": "The parcel came late"}]}).raise_for_status()


def _wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not answer /health within 60 s")


class TaggingLoop(threading.Thread):
    """`voc tag` again as soon as a run ends (the scheduler's tag job, at a 1 s interval): each
    run tags what waits when it starts, the backlog first, then the items pushed meanwhile."""

    def __init__(self, env: dict[str, str], log: Any) -> None:
        super().__init__(daemon=True)
        self.env, self.log = env, log
        self.exit_codes: list[int] = []
        self.running: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    return
                self.running = subprocess.Popen([sys.executable, "-m", "jobs.cli", "tag"], cwd=ROOT,
                                                env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
            code = self.running.wait()
            if not self._stopping.is_set():
                self.exit_codes.append(code)
            self._stopping.wait(1.0)

    def stop(self) -> None:
        """Stop the run in progress (it loses the batch in flight, as a crash would) and the loop."""
        with self._lock:
            self._stopping.set()
            if self.running is not None:
                _stop(self.running)
        self.join(30)


def _wait_tagging(settings: Settings, before: int, tagging: TaggingLoop) -> None:
    """Until the tagger has stored its first batch (its model loads first)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(code != 0 for code in tagging.exit_codes):
            raise SystemExit(f"`voc tag` exited with {tagging.exit_codes} before the load started")
        if count_tags(settings) > before:
            return
        time.sleep(0.5)
    raise SystemExit("`voc tag` stored nothing within 120 s")


if __name__ == "__main__":
    raise SystemExit(main())
