"""Ingest throughput: 100,000 generated items from CSV into SQLite (and PostgreSQL), without tagging.

    python bench/ingest.py [--n 100000] [--batch 5000] [--keep]
    python bench/ingest.py --backends sqlite,postgres [--database-url postgresql+psycopg://...]

Measures, in one run and on the same file:
(a) baseline: a bare `csv.reader` pass and `executemany` of the same rows into a plain SQLite
    table with the same columns (no mapping, validation, redaction, language, dedup);
(b) `voc ingest FILE` (feedback.ingest.files.ingest_file): mapping, validation, PII redaction,
    language detection, author pseudonyms, dedup against stored items, batch commits;
(c) the same file pulled as a `file` source (pull_source): (b) plus the cursor committed with
    every batch and the raw rows kept as JSON for dead-letter retries.
Prints items/s of each and the cost ratio against the baseline. Target: (b) >= 10,000 items/s.

With `--backends sqlite,postgres` the same file also goes into PostgreSQL in the same run: a
bare csv.reader + COPY baseline, (b) as it runs there (items through COPY), and (b) again with
INSERT (executemany) instead, for comparison; it prints the rates, PostgreSQL against SQLite,
and the bytes each database grew by per item. Without `--database-url` a throwaway server is
started with durable settings (bench/postgres.py).

Wall time and this process's CPU time are both reported: on a shared machine (other jobs on
the same 2 cores) the wall rate drops with the load, while items per CPU-second (and the ratio
to the baseline, measured alike) stay comparable between runs.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

COLUMNS = [
    "external_id",
    "created_at",
    "audience",
    "channel",
    "touchpoint",
    "org_unit",
    "text",
    "nps",
    "csat",
    "stars",
    "author",
]
OPENERS = [
    "",
    "Honestly, ",
    "Well, ",
    "To be fair, ",
    "Ugh. ",
    "Great news: ",
    "Second time this month: ",
]
SUBJECTS = [
    "the courier",
    "the delivery",
    "checkout",
    "the app",
    "customer service",
    "the sofa",
    "the store staff",
    "my manager",
    "the rota",
    "the refund",
    "the website search",
    "the assembly instructions",
]
VERBS = [
    "was late again",
    "was excellent",
    "crashed twice",
    "took forever",
    "was really friendly",
    "never answered",
    "made it easy",
    "arrived damaged",
    "works fine now",
    "is confusing",
]
TAILS = [
    "",
    " Thanks!",
    " Please fix it.",
    " Order 55{n} still open.",
    " Would buy again.",
    " I waited 40 minutes on the phone.",
    " The price of 129.99 was fair.",
    " Call me on +44 7700 900{n:03d}.",
    " Mail me at user{n}@example.com.",
]
GERMAN = [
    "Die Lieferung kam zu spät und niemand hat angerufen.",
    "Sehr freundliche Beratung im Laden.",
    "La livraison était parfaite, merci.",
    "El pedido llegó roto y nadie responde.",
]


def generate(path: Path, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i in range(n):
            if rng.random() < 0.05:
                text = " ".join(rng.sample(GERMAN, rng.randint(1, 2)))
            else:
                # One to four sentences: about 150 characters on average, like survey comments.
                sentences = []
                for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
                    sentence = (
                        rng.choice(OPENERS) + rng.choice(SUBJECTS) + " " + rng.choice(VERBS) + "."
                    )
                    sentences.append(sentence[0].upper() + sentence[1:])
                text = " ".join(sentences) + rng.choice(TAILS).format(n=i % 1000)
            employee = rng.random() < 0.2
            writer.writerow(
                [
                    f"b{i}",
                    f"2026-{rng.randint(7, 11):02d}-{rng.randint(1, 28):02d}"
                    f"T{rng.randint(0, 23):02d}:00:00Z",
                    "employee" if employee else "customer",
                    "pulse" if employee else rng.choice(["survey", "review", "chat"]),
                    rng.choice(["delivery", "checkout", "store", "app", ""]),
                    rng.choice(["warehouse", "stores", ""]),
                    text,
                    rng.randint(0, 10) if rng.random() < 0.5 else "",
                    rng.randint(1, 5) if rng.random() < 0.3 else "",
                    "",
                    f"user-{rng.randint(1, 20000)}",
                ]
            )


class Clock:
    """Wall and CPU seconds of a block."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def baseline(path: Path, db: Path) -> Clock:
    """csv.reader + executemany of the same rows: the floor any ingest is measured against."""
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(
        f"CREATE TABLE rows (id INTEGER PRIMARY KEY, {', '.join(c + ' TEXT' for c in COLUMNS)})"
    )
    with Clock() as clock, path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        batch: list[list[str]] = []
        insert = f"INSERT INTO rows ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        for row in reader:
            batch.append(row)
            if len(batch) == 5000:
                connection.executemany(insert, batch)
                connection.commit()
                batch = []
        if batch:
            connection.executemany(insert, batch)
            connection.commit()
    connection.close()
    return clock


def _language_worker_cpu() -> float:
    """CPU seconds the language worker process used (it is stopped to be counted)."""
    import resource

    from feedback.ingest import service

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for pool, _ in list(service._POOLS.values()):
        if pool is not None:
            pool.shutdown(wait=True)
    service._POOLS.clear()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def baseline_postgres(path: Path, url: str) -> Clock:
    """csv.reader + COPY of the same rows into a bare PostgreSQL table: PostgreSQL's floor."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    with psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username, password=parsed.password,
                         dbname=parsed.database) as connection:
        connection.execute(f"CREATE TABLE rows (id SERIAL PRIMARY KEY, {', '.join(c + ' TEXT' for c in COLUMNS)})")
        connection.commit()
        with Clock() as clock, path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader)
            with connection.cursor() as cursor, cursor.copy(f"COPY rows ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in reader:
                    copy.write_row(row)
            connection.commit()
    return clock


def _file_size(url: str) -> int:
    from sqlalchemy.engine import make_url

    database = Path(make_url(url).database or "")
    return sum(p.stat().st_size for p in (database, Path(f"{database}-wal")) if p.exists())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument(
        "--language-workers",
        type=int,
        default=None,
        help="ingest.language_workers (default: the setting's default, 1)",
    )
    parser.add_argument("--backends", default="sqlite",
                        help="sqlite, postgres, or sqlite,postgres: the same file into each, in one run")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL server to use (a superuser URL: the bench creates and drops its own "
                             "databases); default: a throwaway durable server (bench/postgres.py)")
    parser.add_argument("--skip-insert", action="store_true",
                        help="PostgreSQL: skip the comparison run with INSERT (executemany) instead of COPY")
    parser.add_argument("--skip-source", action="store_true", help="skip (c), the file-source pull (SQLite)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not set(backends) <= {"sqlite", "postgres"}:
        parser.error(f"--backends: sqlite and/or postgres, not {args.backends!r}")
    os.environ.setdefault("VOC_CONFIG", "/nonexistent/voc.toml")

    from feedback.config import IngestSettings, Settings
    from feedback.db import make_engine
    from feedback.ingest import service
    from feedback.ingest.files import ingest_file
    from feedback.language import detect_language
    from feedback.migrate import upgrade
    from feedback.sources.config import SourceConfig
    from feedback.sources.service import pull_source, save_source

    work = Path(tempfile.mkdtemp(prefix="voc-bench-"))
    csv_path = work / "feedback.csv"
    started = time.perf_counter()
    generate(csv_path, args.n)
    print(
        f"generated {args.n:,} rows ({csv_path.stat().st_size / 1e6:.1f} MB) in "
        f"{time.perf_counter() - started:.1f}s"
    )
    detect_language("warm up the language model once, outside the timing")

    base = baseline(csv_path, work / "baseline.db")
    results = {"baseline": base}
    worker_cpu: dict[str, float] = {}
    bytes_per_item: dict[str, float] = {}
    pg = None
    if "postgres" in backends:
        from bench import postgres

        pg = postgres.server(args.database_url)
        pg_version = postgres.version(pg.url)

    def settings_for(url: str) -> Settings:
        ingest = IngestSettings(batch_size=args.batch)
        if args.language_workers is not None:
            ingest.language_workers = args.language_workers
        return Settings(database_url=url, var_dir=work / "var", ingest=ingest, _env_file=None)

    def fresh(backend: str, name: str) -> str:
        url = f"sqlite:///{work / name}" if backend == "sqlite" else pg.create_database(prefix="bench")
        upgrade(url)
        return url

    def size(url: str) -> int:
        return _file_size(url) if url.startswith("sqlite") else postgres.database_size(url)

    def ingest_into(label: str, url: str) -> None:
        settings, engine = settings_for(url), make_engine(url)
        empty = size(url)
        with Clock() as results[label]:
            stats, _ = ingest_file(engine, csv_path, settings=settings)
        assert stats.new == args.n and stats.dead == 0, stats.summary()
        worker_cpu[label] = _language_worker_cpu()
        engine.dispose()
        bytes_per_item[label] = (size(url) - empty) / args.n

    try:
        if "sqlite" in backends:
            ingest_into("voc ingest FILE", fresh("sqlite", "ingest.db"))
        if pg is not None:
            url = fresh("postgres", "")
            results["baseline [pg COPY]"] = baseline_postgres(csv_path, url)
            pg.drop_database(url)
            ingest_into("voc ingest FILE [pg COPY]", fresh("postgres", ""))
            if not args.skip_insert:  # the same through INSERT (executemany), as before COPY
                copying = service.uses_copy
                service.uses_copy = lambda session: False  # type: ignore[assignment]
                try:
                    ingest_into("voc ingest FILE [pg INSERT]", fresh("postgres", ""))
                finally:
                    service.uses_copy = copying  # type: ignore[assignment]

        if not args.skip_source and "sqlite" in backends:
            url = fresh("sqlite", "source.db")
            engine = make_engine(url)
            from feedback.db import session_factory

            with session_factory(engine)() as session:
                save_source(
                    session,
                    SourceConfig(
                        name="bench",
                        connector="file",
                        options={"path": str(csv_path)},
                        batch_size=args.batch,
                    ),
                    origin="api",
                )
                session.commit()
            with Clock() as results["file source pull"]:
                pulled = pull_source(engine, "bench", settings=settings_for(url))
            assert pulled.status == "succeeded" and pulled.stats.new == args.n, pulled.error
    finally:
        if pg is not None and not args.database_url:
            pg.stop()

    print(
        f"\n{'path':<28} {'wall s':>7} {'items/s':>9} {'cpu s':>7} {'items/cpu-s':>12} "
        f"{'x baseline (cpu)':>17}"
    )
    for name, clock in results.items():
        print(
            f"{name:<28} {clock.wall:7.2f} {args.n / clock.wall:9,.0f} {clock.cpu:7.2f} "
            f"{args.n / clock.cpu:12,.0f} "
            f"{clock.cpu / base.cpu:16.1f}x"
        )
        if worker_cpu.get(name):
            both = clock.cpu + worker_cpu[name]
            print(f"{'  + language worker':<28} {'':>7} {'':>9} {worker_cpu[name]:7.2f} "
                  f"{args.n / both:12,.0f} {both / base.cpu:16.1f}x  (both processes)")
    if pg is not None:
        print("(PostgreSQL rows: cpu s is this process only; the server's work is in the wall time)")
    for name, per_item in bytes_per_item.items():
        print(f"stored by {name}: {per_item:,.0f} bytes per item (database growth / items)")
    rates = {name: args.n / results[name].wall for name in results if name.startswith("voc ingest FILE")}
    if "voc ingest FILE" in rates:
        wall_rate = rates["voc ingest FILE"]
        cpu_rate = args.n / results["voc ingest FILE"].cpu
        print(
            "\ntarget >= 10,000 items/s for voc ingest: "
            f"{'met' if wall_rate >= 10_000 else 'NOT met'} on wall "
            f"time ({wall_rate:,.0f}/s), {'met' if cpu_rate >= 10_000 else 'NOT met'} per CPU second "
            f"({cpu_rate:,.0f}/s)"
        )
    if "voc ingest FILE [pg COPY]" in rates:
        copy_rate = rates["voc ingest FILE [pg COPY]"]
        if "voc ingest FILE" in rates:
            print(f"PostgreSQL (COPY) vs SQLite, same file, same run: {copy_rate:,.0f} vs "
                  f"{rates['voc ingest FILE']:,.0f} items/s = {copy_rate / rates['voc ingest FILE']:.2f}x")
        if "voc ingest FILE [pg INSERT]" in rates:
            insert_rate = rates["voc ingest FILE [pg INSERT]"]
            print(f"PostgreSQL COPY vs INSERT (executemany): {copy_rate:,.0f} vs {insert_rate:,.0f} items/s "
                  f"= {copy_rate / insert_rate:.2f}x")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"cpu cores: {os.cpu_count()}; load average {load:.1f}; python {sys.version.split()[0]}; "
        f"sqlite {sqlite3.sqlite_version}" + (f"; postgresql {pg_version}" if pg is not None else "")
    )
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
