"""The BI export read by real clients from a real server: pandas and DuckDB on /v1/aggregates.

A uvicorn server is started on 127.0.0.1 with an ephemeral port; pandas reads CSV and Parquet
straight from its URL (the key in an Authorization header). DuckDB runs `read_parquet` and
`read_csv` on the http:// URL: through its httpfs extension where installed (it is downloaded on
first use, so an offline machine lacks it), else through a registered fsspec filesystem that
fetches with httpx; the test output says which.
"""

from __future__ import annotations

import io
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from analytics_data import MONDAY, Row, add_topics, customer_rows, team_rows, write_rows
from conftest import make_api_key

from feedback.analytics.aggregates import COLUMN_NAMES
from feedback.analytics.rollups import rebuild_rollups, refresh_rollups
from feedback.db import session_scope

pd = pytest.importorskip("pandas")
duckdb = pytest.importorskip("duckdb")


@pytest.fixture
def topics(engine) -> list[int]:
    topics = add_topics(engine, ["late delivery", "great prices", "app bugs"])
    write_rows(engine, customer_rows(600, seed=4, weeks=6, topics=topics))
    write_rows(engine, team_rows("ops", 9, weeks=3) + team_rows("legal", 3, weeks=3))
    with session_scope(engine) as session:
        rebuild_rollups(session)
    return topics


@pytest.fixture
def server(settings, topics):
    """The real app under uvicorn on 127.0.0.1:<ephemeral>; yields (base URL, bi key)."""
    import uvicorn

    from api.main import create_app

    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", make_api_key(settings, "bi", name="powerbi")
    server.should_exit = True
    thread.join(10)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_pandas_reads_csv_and_parquet_straight_from_the_url(server, topics) -> None:
    base, key = server
    url = f"{base}/v1/aggregates?interval=week&dimension=topic&dimension=all&format=csv"
    frame = pd.read_csv(url, storage_options=_auth(key), dtype={"value_code": str})
    assert list(frame.columns) == list(COLUMN_NAMES)
    assert set(frame["dimension"]) == {"topic", "all"}
    topic_rows = frame[frame["dimension"] == "topic"]
    # stable codes: topic ids, with the label beside them
    assert set(topic_rows["value_code"]) <= {*map(str, topics), "none"}
    assert (topic_rows[topic_rows["value_code"] == str(topics[0])]["value_label"] == "late delivery").all()
    weekly = frame[frame["dimension"] == "all"].set_index("period_start")["n"]
    by_topic = topic_rows.groupby("period_start")["n"].sum()
    assert (weekly == by_topic).all()  # topics (with 'none') partition every week
    assert frame["suppressed"].dtype == bool and frame["n"].dtype.kind == "i"

    parquet = pd.read_parquet(f"{base}/v1/aggregates?interval=week&format=parquet", storage_options=_auth(key))
    assert list(parquet.columns) == list(COLUMN_NAMES)
    assert str(parquet["updated_at"].dtype).startswith("datetime64") and parquet["n"].dtype.kind == "i"
    assert len(parquet) > len(frame)


class _HttpxFileSystem:
    """An fsspec filesystem for http:// URLs over httpx, for DuckDB without its httpfs extension."""

    def __new__(cls, headers: dict[str, str]):  # built lazily: fsspec is a pandas dependency
        from fsspec import AbstractFileSystem

        class HttpxFileSystem(AbstractFileSystem):
            protocol = ("http",)

            def __init__(self, **kwargs) -> None:
                super().__init__(**kwargs)
                self.fetched: dict[str, bytes] = {}

            def _get(self, path: str) -> bytes:
                url = path if path.startswith("http://") else f"http://{path}"
                if url not in self.fetched:  # DuckDB asks for the size, then reads: one request
                    response = httpx.get(url, headers=headers)
                    response.raise_for_status()
                    self.fetched[url] = response.content
                return self.fetched[url]

            def _open(self, path, mode="rb", **kwargs):
                return io.BytesIO(self._get(path))

            def info(self, path, **kwargs):
                return {"name": path, "size": len(self._get(path)), "type": "file"}

            def ls(self, path, detail=True, **kwargs):
                return [self.info(path)] if detail else [path]

            def glob(self, path, **kwargs):  # '?' starts the query string, not a wildcard
                return [path]

            def exists(self, path, **kwargs):
                return True

            def modified(self, path):
                return datetime.now(UTC)

        return HttpxFileSystem()


def test_duckdb_reads_the_export_from_the_url(server, topics, capsys) -> None:
    base, key = server
    url = f"{base}/v1/aggregates?interval=month&format=parquet"
    con = duckdb.connect()
    try:
        con.execute("LOAD httpfs")
        con.execute(f"CREATE SECRET voc (TYPE http, EXTRA_HTTP_HEADERS MAP {{'Authorization': 'Bearer {key}'}})")
        how = "httpfs"
    except duckdb.Error:
        # Offline, DuckDB cannot fetch its httpfs extension; a Python filesystem then serves http://
        # URLs to DuckDB (the requests go through httpx, the SQL is the same).
        filesystem = _HttpxFileSystem(_auth(key))
        con.register_filesystem(filesystem)
        how = "an httpx-backed fsspec filesystem (httpfs is not installed)"
    with capsys.disabled():
        print(f"\n[duckdb] read_parquet / read_csv on http:// URLs through {how}")
    try:
        parquet = con.sql(f"SELECT dimension, sum(n) AS n FROM read_parquet('{url}') GROUP BY 1").fetchall()
        csv = con.sql(f"SELECT count(*), count(DISTINCT dimension) FROM read_csv('{url.replace('parquet', 'csv')}')"
                      ).fetchall()[0]
    finally:
        if how != "httpfs":
            con.unregister_filesystem("http")
        con.close()
    totals = dict(parquet)
    assert totals["all"] == 600 and totals["touchpoint"] == 600
    assert csv[0] > len(totals) and csv[1] == len(totals)  # the same export, as CSV


def test_pages_follow_the_cursor_and_cover_everything_once(server) -> None:
    base, key = server
    params = {"interval": "week", "limit": 20}
    full = httpx.get(f"{base}/v1/aggregates", params={"interval": "week", "limit": 5000},
                     headers=_auth(key)).json()["rows"]
    seen, url, pages = [], f"{base}/v1/aggregates", 0
    query: dict | None = params
    while url:
        response = httpx.get(url, params=query, headers=_auth(key))
        body = response.json()
        seen += body["rows"]
        pages += 1
        url, query = body["next_url"], None  # the next page's URL carries the cursor
        if url:
            assert response.headers["X-Next-Cursor"] == body["next_cursor"] and 'rel="next"' in response.headers["Link"]
    keys = [(r["period_start"], r["dimension"], r["value_code"]) for r in seen]
    assert pages > 3 and len(keys) == len(set(keys)) and keys == sorted(keys)
    assert seen == full
    # CSV pages carry the cursor in headers
    response = httpx.get(f"{base}/v1/aggregates", params={**params, "format": "csv"}, headers=_auth(key))
    assert response.headers["X-Next-Cursor"] and response.text.count("\n") == 21
    assert httpx.get(f"{base}/v1/aggregates", params={"cursor": "garbage"}, headers=_auth(key)).status_code == 400


def test_updated_since_pulls_only_what_changed(server, engine) -> None:
    base, key = server

    def pull(**extra) -> list[dict]:
        return httpx.get(f"{base}/v1/aggregates", params={"interval": "week", "limit": 10000, **extra},
                         headers=_auth(key)).json()["rows"]

    copy = {(r["period_start"], r["dimension"], r["value_code"]): r for r in pull()}
    mark = max(r["updated_at"] for r in copy.values())
    time.sleep(0.01)
    assert pull(updated_since=mark) == []
    # new feedback in week 2, and the only chat item of week 5 moves to email
    write_rows(engine, [Row("customer", MONDAY + timedelta(days=8), touchpoint="support", score=-0.8, nps=1)])
    with session_scope(engine) as session:
        from sqlalchemy import select

        from feedback.models import FeedbackItem

        week5 = session.scalars(select(FeedbackItem).where(
            FeedbackItem.created_at >= MONDAY + timedelta(days=28),
            FeedbackItem.created_at < MONDAY + timedelta(days=35),
            FeedbackItem.channel == "chat")).all()
        for item in week5:
            item.channel = "email"
        session.flush()
        refresh_rollups(session)
        refresh_rollups(session, item_ids=[i.id for i in week5])
    changed = pull(updated_since=mark)
    periods = {r["period_start"] for r in changed}
    assert periods == {(MONDAY + timedelta(days=d)).date().isoformat() for d in (7, 28)}
    week5 = (MONDAY + timedelta(days=28)).date().isoformat()
    gone = [r for r in changed
            if r["dimension"] == "channel" and r["value_code"] == "chat" and r["period_start"] == week5]
    assert gone and gone[0]["n"] == 0  # a value that left its period comes back as a zero row
    # a period's rows change together (shares are over the period's total)
    assert {r["dimension"] for r in changed if r["period_start"] == week5} >= {"all", "touchpoint", "topic"}
    for row in changed:  # upsert into the copy: the same as pulling everything again
        copy[(row["period_start"], row["dimension"], row["value_code"])] = row
    fresh = {(r["period_start"], r["dimension"], r["value_code"]): r for r in pull()}
    assert {k: v for k, v in copy.items() if v["n"] != 0} == fresh


def test_employee_export_suppresses_small_groups(server) -> None:
    base, key = server
    frame = pd.read_csv(f"{base}/v1/aggregates?audience=employee&dimension=org_unit&format=csv",
                        storage_options=_auth(key))
    legal = frame[frame["value_code"] == "legal"]
    ops = frame[frame["value_code"] == "ops"]
    assert len(legal) == 3 and legal["suppressed"].all() and legal["n"].isna().all()
    # ops (9) would give legal (3) away as total minus ops: it is hidden too
    assert ops["suppressed"].all()
    response = httpx.get(f"{base}/v1/aggregates", params={"audience": "employee", "interval": "day"},
                         headers=_auth(key))
    assert response.status_code == 400
