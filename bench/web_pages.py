"""Server time of every web page, measured through the app (TestClient, ASGI, no network).

    .venv/bin/python bench/web_pages.py --database sqlite:///var/voc.db [--repeat 20]

Signs in with a fresh admin key (stored in that database), requests each page `--repeat` times
after one warm-up, and prints p50/p95 in ms and the page's size. The issue's target is p95 <=
300 ms and <= 1 MB per page on bench/api_latency.py's 1,000,000-item database.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time

from fastapi.testclient import TestClient

from api.main import create_app
from feedback.apikeys import create_key
from feedback.config import Settings
from feedback.db import make_engine, session_scope
from feedback.migrate import upgrade

PAGES = ["/", "/?audience=employee", "/journey", "/journey?audience=employee", "/touchpoints/delivery",
         "/topics", "/quotes?touchpoint=delivery", "/feedback", "/feedback?q=late", "/employee",
         "/employee?by=touchpoint&filter_by=org_unit&filter_value=warehouse", "/digests", "/sources"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="SQLAlchemy URL of a database with data")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    upgrade(args.database)
    settings = Settings(database_url=args.database, _env_file=None)
    engine = make_engine(args.database)
    with session_scope(engine) as session:
        key = create_key(session, name="bench web pages", scopes=["admin"]).secret_key
    engine.dispose()
    with TestClient(create_app(settings), follow_redirects=False) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signin").text).group(1)
        assert client.post("/signin", data={"csrf_token": token, "api_key": key}).status_code == 303
        print(f"{'page':70s} {'p50 ms':>8s} {'p95 ms':>8s} {'KiB':>7s}")
        for page in PAGES:
            answer = client.get(page)  # warm-up (and the size)
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                client.get(page)
                times.append((time.perf_counter() - start) * 1000)
            times.sort()
            p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
            print(f"{page:70s} {statistics.median(times):8.1f} {p95:8.1f} {len(answer.content) / 1024:7.1f}"
                  f"{'' if answer.status_code == 200 else f'  status {answer.status_code}'}")


if __name__ == "__main__":
    main()
