"""Backfill throughput: `voc backfill --engine ray` against the single-process path, same items.

    python bench/backfill.py [--items 20000] [--actors N] [--address ADDR] [--batch-size 256]

Writes the demo generator's feedback (realistic texts, 16 weeks) to one CSV of `--items` rows,
then backfills it twice in the same run, each time into a fresh SQLite database, with the real
tagger: (a) `--engine local`: one process reads, prepares, tags and stores; (b) `--engine ray`:
Ray Data on a local Ray of this machine's CPUs (or the cluster at `--address`), the tagging
actors loading their own model. Each time is wall clock from the call to the last commit,
model loading included (on Ray: the actors'; Ray's own start is shown apart). Prints items/s
of each and the ratio, and checks both stored every item, tagged.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def write_items(path: Path, items: int) -> int:
    """A CSV of the first `items` rows the demo generator writes (it is asked for enough)."""
    from feedback.demo.generator import write_csv

    per_week = max(330, items // 16 + 1)
    full = path.with_suffix(".full.csv")
    write_csv(full, seed=7, customers_per_week=per_week, employees_per_week=per_week // 4)
    with full.open(newline="", encoding="utf-8") as source, path.open("w", newline="", encoding="utf-8") as out:
        reader, writer = csv.reader(source), csv.writer(out, lineterminator="\n")
        writer.writerow(next(reader))
        written = 0
        for row in reader:
            if written == items:
                break
            writer.writerow(row)
            written += 1
    full.unlink()
    return written


def backfill(root: Path, path: Path, runner: str, **options: object) -> tuple[float, object]:
    from feedback.config import Settings
    from feedback.db import make_engine
    from feedback.migrate import upgrade
    from jobs.backfill import run_backfill

    db = root / f"{runner}.db"
    upgrade(f"sqlite:///{db}")
    settings = Settings(database_url=f"sqlite:///{db}", var_dir=root / "var", _env_file=None)
    engine = make_engine(settings.database_url)
    started = time.perf_counter()
    result = run_backfill(engine, [path], settings=settings, runner=runner, **options)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--actors", type=int, default=None, help="Ray tagging actors (default: voc backfill's)")
    parser.add_argument("--address", default=None, help="a Ray cluster (default: a local Ray of this machine)")
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args(argv)

    import ray

    from jobs.backfill import summary

    with tempfile.TemporaryDirectory(prefix="voc-bench-backfill-") as tmp:
        root = Path(tmp)
        path = root / "feedback.csv"
        items = write_items(path, args.items)
        print(f"{items} items in {path.name}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
              f"VOC_TORCH_THREADS={os.environ.get('VOC_TORCH_THREADS', '-')}")

        local_s, local = backfill(root, path, "local", batch_size=args.batch_size)
        print(f"local: {summary(local, local_s)}")  # type: ignore[arg-type]

        started = time.perf_counter()
        ray.init(address=args.address, include_dashboard=False, log_to_driver=False)
        ray_start_s = time.perf_counter() - started
        try:
            ray_s, on_ray = backfill(root, path, "ray", batch_size=args.batch_size, actors=args.actors)
            resources = ray.cluster_resources()
        finally:
            ray.shutdown()
        print(f"ray:   {summary(on_ray, ray_s)}; Ray's start {ray_start_s:.1f}s "  # type: ignore[arg-type]
              f"({resources.get('CPU', 0):.0f} CPUs, {resources.get('GPU', 0):.0f} GPUs)")

        for name, result in (("local", local), ("ray", on_ray)):
            assert result.total.new == items and result.tagged == items and result.untagged == 0, name  # type: ignore[attr-defined]
        local_rate, ray_rate = items / local_s, items / ray_s
        print(f"\nitems/s: local {local_rate:.1f}, ray {ray_rate:.1f}; ray / local = {ray_rate / local_rate:.2f}x "
              f"({ray_rate * ray_s / (ray_s + ray_start_s) / local_rate:.2f}x counting Ray's start); "
              f"load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
