"""The employee tables and the employee pages' data, recorded once and checked against later code.

    .venv/bin/python bench/employee_tables_identical.py --database sqlite:////tmp/bench1m.db --save before.pkl
    (change the code)
    .venv/bin/python bench/employee_tables_identical.py --database sqlite:////tmp/bench1m.db --check before.pkl

A speed-up of the employee tables must not change one number they show, suppressed cells
included (docs/privacy.md). This computes, on a database with data (bench/api_latency.py's
1,000,000-item one), every employee table the web pages ask for and more: each grouping by week,
employee month and whole range over 4, 12 and 52 weeks and all time, with and without one
filter (the grouping's own dimension, another single-valued one, a label), with and without the
need/emotion mixes, two minimum group sizes, the compare's tables of every team at once, and the
pages' views (trends, journey, drivers, quotes, compare, overview). `--save` writes them as they
are; `--check` computes them again and prints every difference, exact (floats compared bit for
bit, a hidden cell hidden). The check exits 1 on any difference.
`tests/test_employee_tables_identical.py` compares the same way on small data, against the
pre-change implementation kept as the reference.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("VOC_CONFIG", "/nonexistent/voc.toml")

from sqlalchemy import select  # noqa: E402

from feedback.analytics.cells import SUM_FIELDS, CellStats, Slice  # noqa: E402
from feedback.analytics.tables import RANGE, CellTable, cell_table, employee_tables_by, share_reads  # noqa: E402
from feedback.config import Settings  # noqa: E402
from feedback.db import make_engine, session_scope  # noqa: E402
from feedback.models import FeedbackItem  # noqa: E402

GROUPINGS = ("org_unit", "segment", "journey_stage", "touchpoint", "need", "emotion", "topic")


def stats_key(stats: CellStats | None) -> Any:
    """Every number of a cell, exactly (floats by their bits), labels included; None if hidden."""
    if stats is None:
        return None
    return (tuple((name, type(getattr(stats, name)).__name__, float(getattr(stats, name)).hex())
                  for name in SUM_FIELDS), tuple(sorted(stats.labels.items())))


def _period_order(period: Any) -> Any:
    return (period is not None, period or date.min)


def table_key(table: CellTable) -> Any:
    """A table as comparable data (cells and totals sorted: the order of hidden cells in a table
    follows a set's, which differs from one process to the next), with its bounds and source."""
    return {"cells": sorted(((period, value, stats_key(stats)) for (period, value), stats in table.cells.items()),
                            key=lambda c: (_period_order(c[0]), c[1])),
            "totals": sorted(((period, stats_key(stats)) for period, stats in table.totals.items()),
                             key=lambda c: _period_order(c[0])),
            "by": table.by, "interval": table.interval, "source": table.source,
            "start": table.start, "end": table.end}


def exact(value: Any) -> Any:
    """A view's answer with its floats by their bits (so -0.0, 0.1+0.2 and nan all compare exactly)."""
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, dict):
        return {k: exact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [exact(v) for v in value]
    return value


def table_queries(session: Any, last_week: Any) -> list[tuple[str, Any]]:
    """(name, what to compute) of every table compared."""
    team = session.scalar(select(FeedbackItem.org_unit).where(FeedbackItem.audience == "employee",
                                                              FeedbackItem.org_unit.is_not(None))
                          .order_by(FeedbackItem.org_unit).limit(1)) or "team-00"
    touchpoint = session.scalar(select(FeedbackItem.touchpoint).where(FeedbackItem.audience == "employee",
                                                                      FeedbackItem.touchpoint.is_not(None))
                                .order_by(FeedbackItem.touchpoint).limit(1)) or "manager"
    end = last_week + timedelta(days=7)
    asks: list[tuple[str, Any]] = []
    for weeks in (4, 12, 52, None):
        start = end - timedelta(weeks=weeks) if weeks else None
        stop = end if weeks else None
        for by in GROUPINGS:
            for interval in ("week", "month", RANGE):
                for filters in ({}, {"org_unit": team}, {"touchpoint": touchpoint}, {"need": "trust"}):
                    if weeks not in (12, 52) and filters:
                        continue
                    for mixes in (False, True):
                        if mixes and (interval == "month" or filters.get("need")):
                            continue
                        for size in (5, 10) if (weeks == 12 and not mixes) else (5,):
                            where = Slice.make("employee", start, stop, filters)
                            asks.append((f"table {weeks}w by={by} {interval} {filters} mixes={mixes} min={size}",
                                         (where, by, interval, mixes, size)))
    return asks


def record(database: str) -> dict[str, Any]:
    """Every table and view, as comparable data, with the seconds it took."""
    from api.routers.journey import journey_steps  # noqa: F401  (the views import it)
    from api.web import data

    settings = Settings(database_url=database, _env_file=None)
    engine = make_engine(database)
    out: dict[str, Any] = {}
    started = time.perf_counter()
    with session_scope(engine) as session:
        week = data.latest_week(session, "employee")
        if week is None:
            raise SystemExit("no employee items in this database")
        asks = table_queries(session, week)
        for name, (where, by, interval, mixes, size) in asks:
            table = cell_table(session, where, by, interval, min_group_size=size, mixes=mixes)
            out[name] = table_key(table)
        teams = sorted({v for v in session.scalars(select(FeedbackItem.org_unit).where(
            FeedbackItem.audience == "employee").distinct()) if v}) + ["nobody"]
        for weeks in (1, 8, 52):
            where = Slice.make("employee", week + timedelta(days=7) - timedelta(weeks=weeks), week + timedelta(days=7))
            for by in ("touchpoint", "need", "segment"):
                tables = employee_tables_by(session, where, "org_unit", teams, by, RANGE, min_group_size=5)
                for team, table in tables.items():
                    out[f"tables_by {weeks}w org_unit x {by} {team}"] = table_key(table)
    with session_scope(engine) as session:  # the pages' views, reads shared as a page shares them
        share_reads(session)
        week = data.latest_week(session, "employee")
        for key in ("4w", "12w", "52w", "all"):
            period = data.pick_period(session, "employee", key)
            for by in ("org_unit", "segment", "journey_stage", "touchpoint"):
                out[f"trends_view {key} {by}"] = exact(data.trends_view(
                    session, settings, audience="employee", by=by, start=period.start, end=period.end))
            out[f"trends_view {key} touchpoint=manager"] = exact(data.trends_view(
                session, settings, audience="employee", by="touchpoint", start=period.start, end=period.end,
                filters={"touchpoint": "manager"}))
            out[f"trends_view {key} topic touchpoint=manager"] = exact(data.trends_view(
                session, settings, audience="employee", by="topic", start=period.start, end=period.end,
                filters={"touchpoint": "manager"}))
            out[f"trends_view {key} touchpoint org_unit=team-05"] = exact(data.trends_view(
                session, settings, audience="employee", by="touchpoint", start=period.start, end=period.end,
                filters={"org_unit": "team-05"}))
            out[f"journey_view {key}"] = exact(data.journey_view(session, settings, audience="employee",
                                                                 period=period))
            out[f"drivers_view {key} manager"] = exact(data.drivers_view(
                session, settings, audience="employee", period=period, dimensions=("topic", "need", "emotion"),
                filters={"touchpoint": "manager"}))
            out[f"quotes_view {key} manager"] = exact(data.quotes_view(
                session, settings, lambda text: text, audience="employee", start=period.start, end=period.end,
                filters={"touchpoint": "manager"}, sentiment=None))
        out["overview_view"] = exact(data.overview_view(session, settings, audience="employee",
                                                        metric="net_sentiment", week=week))
        out["compare_view drivers"] = exact(data.compare_view(
            session, settings, audience="employee", current=(week, week + timedelta(days=7)),
            baseline=(week - timedelta(weeks=8), week), by="org_unit"))
    engine.dispose()
    print(f"computed {len(out)} tables and views in {time.perf_counter() - started:.1f}s", flush=True)
    return out


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs, one line each (the first differing entry of each table or view)."""
    lines = []
    for name in sorted(set(before) | set(after)):
        if name not in after or name not in before:
            lines.append(f"{name}: only {'before' if name in before else 'after'}")
        elif before[name] != after[name]:
            a, b = before[name], after[name]
            detail = ""
            if isinstance(a, dict) and isinstance(b, dict):
                for k in a:
                    if a.get(k) != b.get(k):
                        x, y = a.get(k), b.get(k)
                        if isinstance(x, list) and isinstance(y, list):
                            pairs = enumerate(zip(x, y, strict=False))
                            i = next((i for i, (p, q) in pairs if p != q), min(len(x), len(y)))
                            detail = f" {k}[{i}]: {x[i] if i < len(x) else None!r} != {y[i] if i < len(y) else None!r}"
                        else:
                            detail = f" {k}: {str(x)[:200]} != {str(y)[:200]}"
                        break
            lines.append(f"{name}: differs{detail[:600]}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="SQLAlchemy URL of a database with employee items")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--save", type=Path, help="record the tables and views to this file")
    action.add_argument("--check", type=Path, help="compare with the tables and views recorded in this file")
    args = parser.parse_args()
    now = record(args.database)
    if args.save:
        args.save.write_bytes(pickle.dumps(now))
        print(f"saved {len(now)} to {args.save}")
        return 0
    before = pickle.loads(args.check.read_bytes())
    lines = differences(before, now)
    for line in lines:
        print(line)
    cells = sum(len(v["cells"]) for v in now.values() if isinstance(v, dict) and "cells" in v)
    hidden = sum(1 for v in now.values() if isinstance(v, dict) and "cells" in v
                 for _, _, s in v["cells"] if s is None)
    print(f"{len(now) - len(lines)} of {len(now)} tables and views identical ({cells:,} table cells, "
          f"{hidden:,} of them suppressed): {'PASS' if not lines else 'FAIL'}")
    return 1 if lines else 0


if __name__ == "__main__":
    raise SystemExit(main())
