"""Kill a pull with SIGKILL in the middle, pull again: every item stored exactly once.

The source is a cursor-paginated JSON API (20,000 items, 200 a page) served by this test on
127.0.0.1; the pull runs in a separate process (`python -m jobs.cli sources pull`) that is
killed without warning once a few pages are committed.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from local_http import LocalServer, Reply, Request
from sqlalchemy import func, select

from feedback.db import session_factory
from feedback.models import FeedbackItem, IngestionRun, Source

REPO = Path(__file__).resolve().parent.parent
TOTAL, PAGE = 20_000, 200


def _token(start: int) -> str:
    return base64.urlsafe_b64encode(f"start:{start}".encode()).decode()


def _start(token: str | None) -> int:
    return int(base64.urlsafe_b64decode(token.encode()).decode().split(":")[1]) if token else 0


def _api(request: Request) -> Reply:
    start = _start(request.query.get("cursor"))
    items = [
        {
            "id": f"t{i}",
            "body": f"Ticket {i}: the parcel for order {i % 977} arrived late",
            "created": f"2026-09-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
        }
        for i in range(start, min(start + PAGE, TOTAL))
    ]
    following = start + PAGE
    return Reply(200, {"tickets": items, "next": _token(following) if following < TOTAL else None})


@pytest.mark.slow
def test_sigkill_mid_pull_then_rerun_stores_every_item_exactly_once(
    tmp_path, settings, engine
) -> None:
    with LocalServer() as server:
        server.route("/tickets", _api)
        server.delay = 0.01  # a slow API, so the kill lands mid-run
        config = tmp_path / "voc.toml"
        config.write_text(f'''
[[sources]]
name = "helpdesk"
connector = "http_json"
[sources.options]
url = "{server.url("/tickets")}"
items_path = "$.tickets"
fields = {{ external_id = "$.id", text = "$.body", created_at = "$.created" }}
pagination = {{ type = "cursor", cursor_path = "$.next" }}
''')
        env = {**os.environ, "VOC_CONFIG": str(config), "VOC_DATABASE_URL": settings.database_url}
        command = [sys.executable, "-m", "jobs.cli", "sources", "pull", "helpdesk"]

        victim = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while _count(engine) < 3 * PAGE:
            assert victim.poll() is None, victim.stdout.read().decode()  # finished before the kill?
            assert time.monotonic() < deadline, "no pages committed within 30 s"
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        assert victim.returncode == -signal.SIGKILL

        stored_at_kill = _count(engine)
        committed_cursor = _cursor(engine)["position"]["cursor"]
        assert 0 < stored_at_kill < TOTAL
        # The cursor committed with the items covers exactly them: the next page follows the last.
        assert _start(committed_cursor) == stored_at_kill
        server.requests.clear()

        rerun = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert server.requests[0].query["cursor"] == committed_cursor  # resumed, not restarted

    with session_factory(engine)() as session:
        ids = session.scalars(select(FeedbackItem.external_id)).all()
        runs = session.scalars(select(IngestionRun).order_by(IngestionRun.id)).all()
    assert len(ids) == TOTAL and set(ids) == {
        f"t{i}" for i in range(TOTAL)
    }  # every item, exactly once
    assert [r.status for r in runs] == ["interrupted", "succeeded"]
    assert (
        runs[0].items_new == stored_at_kill
    )  # the killed run's counters were committed with its items
    assert (runs[1].items_new, runs[1].items_unchanged) == (
        TOTAL - stored_at_kill,
        0,
    )  # nothing read twice
    assert _cursor(engine)["position"] is None  # the run completed: the cursor moved past the end


def _count(engine) -> int:
    with session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(FeedbackItem)) or 0


def _cursor(engine) -> dict:
    with session_factory(engine)() as session:
        return session.scalar(select(Source.cursor).where(Source.name == "helpdesk"))
