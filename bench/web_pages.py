"""Server time of every web page, measured through the app (TestClient, ASGI, no network).

    .venv/bin/python bench/web_pages.py --database sqlite:////tmp/bench1m.db [--repeat 20]

On bench/api_latency.py's 1,000,000-item database (`--db /tmp/bench1m.db` keeps it). Prepares
what the pages show and the generator does not write, through the project's own code: the
customer rollups (refreshed if not current, as the tagging job keeps them) and the digests of
the data's last `--digest-weeks` weeks (jobs.digests, as the weekly job makes them). Signs in
with a fresh admin key (stored in that database), requests each page `--repeat` times after one
warm-up, and prints p50/p95 in ms and the page's size, then one pass/fail line per target.
Every GET page of the web app is measured (a page added without a line here is reported).

The issue's targets (issue 18): p95 <= 300 ms and <= 1 MB per page at 1,000,000 items.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("VOC_CONFIG", "/nonexistent/voc.toml")

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from api.main import create_app  # noqa: E402
from feedback.apikeys import create_key  # noqa: E402
from feedback.config import Settings  # noqa: E402
from feedback.db import make_engine, session_scope  # noqa: E402
from feedback.migrate import upgrade  # noqa: E402
from feedback.models import Digest, FeedbackItem  # noqa: E402

TARGET_P95_MS = 300.0
TARGET_BYTES = 1_000_000


def prepare(settings: Settings, digest_weeks: int) -> dict[str, str]:
    """Rollups current and digests made (the project's own jobs); returns what the page list needs."""
    from feedback.analytics.rollups import refresh_rollups, rollups_current
    from feedback.insights.weeks import week_label
    from jobs.digests import run_digests

    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        if not rollups_current(session, "customer"):
            started = time.perf_counter()
            result = refresh_rollups(session)
            print(f"refreshed the rollups: {result.days} days, {result.rows_written:,} rows in "
                  f"{time.perf_counter() - started:.0f}s", flush=True)
        newest = session.scalar(select(func.max(FeedbackItem.created_at)))
        customer_item = session.scalar(select(func.max(FeedbackItem.id)).where(FeedbackItem.audience == "customer"))
        employee_item = session.scalar(select(func.max(FeedbackItem.id)).where(FeedbackItem.audience == "employee"))
        team = session.scalar(select(FeedbackItem.org_unit).where(FeedbackItem.audience == "employee",
                                                                  FeedbackItem.org_unit.is_not(None)).limit(1))
        made = set(session.scalars(select(Digest.week)).all())
    engine.dispose()
    if newest is None:
        raise SystemExit("the database holds no feedback: generate it with bench/api_latency.py --db FILE first")
    # the newest item's week is complete in the generated data (it ends on a Sunday)
    weeks = [week_label((newest - timedelta(weeks=k)).date()) for k in range(digest_weeks)]
    for week in reversed(weeks):
        if week in made:
            continue
        started = time.perf_counter()
        run_digests(settings, week=week, send=False)
        print(f"made the {week} digests in {time.perf_counter() - started:.0f}s", flush=True)
    return {"week": weeks[0], "customer_item": str(customer_item), "employee_item": str(employee_item),
            "team": team or "team-00"}


def pages(found: dict[str, str]) -> list[str]:
    """Every page of the app, each audience where it has both, the employee view by each grouping."""
    week, team = found["week"], found["team"]
    return [
        "/", "/?audience=employee", "/?metric=nps",
        "/journey", "/journey?audience=employee", "/journey?period=52w", "/journey?period=all&metric=nps",
        "/touchpoints/delivery", "/touchpoints/delivery?period=52w&sentiment=negative",
        "/touchpoints/manager?audience=employee",
        "/topics", "/topics?audience=employee",
        "/quotes?touchpoint=delivery", f"/quotes?audience=employee&org_unit={team}",
        "/feedback", "/feedback?q=late", "/feedback?audience=employee",
        f"/feedback/{found['customer_item']}", f"/feedback/{found['employee_item']}",
        "/employee", "/employee?by=segment", "/employee?by=journey_stage", "/employee?by=touchpoint",
        f"/employee?by=touchpoint&filter_by=org_unit&filter_value={team}", "/employee?period=52w&metric=nps",
        "/corrections",
        "/digests", "/digests?audience=employee", f"/digests/{week}", f"/digests/{week}?audience=employee",
        f"/digests/{week}/digest.html", f"/digests/{week}/digest.md",
        "/sources",
    ]


def uncovered(measured: list[str]) -> list[str]:
    """GET pages of the web app that no measured path reaches (a new page needs a line above)."""
    from api.web.pages import router

    missing = []
    for route in router.routes:
        if "GET" not in getattr(route, "methods", set()) or route.path in ("/signin",):
            continue
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", route.path) + "$")
        if not any(pattern.match(path.split("?")[0]) for path in measured):
            missing.append(route.path)
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="SQLAlchemy URL of a database with data")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--digest-weeks", type=int, default=2, help="digests to make if missing (newest weeks)")
    parser.add_argument("--only", default=None, help="measure only the pages whose path contains this")
    parser.add_argument("--fresh-reads", action="store_true",
                        help="no reuse of an earlier page's employee items (as right after a write: every "
                             "request reads them, feedback.analytics.employee_cells.RecentReads)")
    args = parser.parse_args()
    if args.fresh_reads:
        from feedback.analytics.employee_cells import RECENT_READS

        RECENT_READS.ttl_s = -1.0
    upgrade(args.database)
    settings = Settings(database_url=args.database, _env_file=None)
    found = prepare(settings, args.digest_weeks)
    engine = make_engine(args.database)
    with session_scope(engine) as session:
        items = session.scalar(select(func.count(FeedbackItem.id)))
        key = create_key(session, name="bench web pages", scopes=["admin"]).secret_key
    engine.dispose()
    paths = pages(found)
    missing = uncovered(paths)
    if args.only:
        paths = [p for p in paths if args.only in p]
    results: list[tuple[str, float, float, int, int]] = []
    with TestClient(create_app(settings), follow_redirects=False, raise_server_exceptions=False) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signin").text).group(1)
        assert client.post("/signin", data={"csrf_token": token, "api_key": key}).status_code == 303
        print(f"\n{items:,} items, {settings.database_url.split(':')[0]}, {args.repeat} requests per page "
              f"after a warm-up; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
              + ("; employee items read by every request" if args.fresh_reads else ""))
        # cpu: the process's CPU time per request (server and client), what the page costs
        # whatever else the cores run; p50 and p95 are wall time, the target's measure
        print(f"{'page':64s} {'p50 ms':>8s} {'p95 ms':>8s} {'cpu ms':>8s} {'KiB':>7s}")
        for page in paths:
            answer = client.get(page)  # warm-up (and the size)
            times, cpu = [], []
            for _ in range(args.repeat):
                start, start_cpu = time.perf_counter(), time.process_time()
                client.get(page)
                times.append((time.perf_counter() - start) * 1000)
                cpu.append((time.process_time() - start_cpu) * 1000)
            times.sort()
            p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
            results.append((page, statistics.median(times), p95, len(answer.content), answer.status_code))
            print(f"{page:64s} {statistics.median(times):8.1f} {p95:8.1f} {statistics.median(cpu):8.1f} "
                  f"{len(answer.content) / 1024:7.1f}"
                  f"{'' if answer.status_code == 200 else f'  status {answer.status_code}'}", flush=True)
    slow = [(p, t) for p, _, t, _, _ in results if t > TARGET_P95_MS]
    big = [(p, b) for p, _, _, b, _ in results if b > TARGET_BYTES]
    failed = [(p, s) for p, *_, s in results if s != 200]
    worst = max(results, key=lambda r: r[2])
    print(f"\ntarget p95 <= {TARGET_P95_MS:.0f} ms: {'PASS' if not slow else 'FAIL'} "
          f"(slowest {worst[0]} {worst[2]:.0f} ms"
          + (f"; over: {', '.join(f'{p} {t:.0f} ms' for p, t in slow)}" if slow else "") + ")")
    largest = max(results, key=lambda r: r[3])
    print(f"target size <= 1 MB: {'PASS' if not big else 'FAIL'} (largest {largest[0]} {largest[3] / 1024:.0f} KiB"
          + (f"; over: {', '.join(f'{p} {b / 1024:.0f} KiB' for p, b in big)}" if big else "") + ")")
    print(f"every page answers 200: {'PASS' if not failed else 'FAIL'}"
          + (f" ({', '.join(f'{p} {s}' for p, s in failed)})" if failed else ""))
    if missing:
        print(f"pages not measured: {', '.join(missing)} (add them to bench/web_pages.py)")
    return 0 if not (slow or big or failed or missing) else 1


if __name__ == "__main__":
    raise SystemExit(main())
