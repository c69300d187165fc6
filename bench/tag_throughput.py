"""Tagging throughput: does the tagging job keep up with ingestion?

    python bench/tag_throughput.py [--n 2000] [--batch 256] [--concurrent 4000]

(a) ingest N generated items (as bench/ingest.py makes them) and time it;
(b) tag them with the tagging job's own unit of work (`jobs.tasks.tag_pending`, batches committed
    one by one) using the real tagger (`classifiers.load_tagger`), and time it;
(c) with --concurrent M: ingest M more items in batches while the tagging loop runs beside it
    (as the scheduler runs it), and report how far tagging lags behind the last batch.
Prints items/s of ingest and of tagging (wall and CPU), the daily volume tagging sustains, and
how long a bulk import of N items waits for its tags. If the real tagger cannot load, a stand-in
that returns fixed tags measures the job's own overhead instead (and says so).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


class StandInTagger:
    """Fixed tags: what the job costs without a model (used only if the real tagger fails)."""

    name, version = "stand-in", "0"
    model_versions = {"stand-in": "0"}

    def tag(self, texts, *, audiences=None, return_embeddings=False, languages=None):  # noqa: ANN001
        from types import SimpleNamespace

        import numpy as np

        return [
            SimpleNamespace(
                sentiment="neutral",
                sentiment_score=0.0,
                sentiment_probs={},
                emotions={},
                emotion_labels=[],
                cx_emotions=[],
                needs=[],
                need_scores={},
                touchpoint=None,
                touchpoint_confidence=None,
                flags=[],
                embedding=np.zeros(384, np.float32),
            )
            for _ in texts
        ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="items ingested, then tagged")
    parser.add_argument("--batch", type=int, default=256, help="tagging batch size")
    parser.add_argument(
        "--concurrent", type=int, default=0, help="items ingested while tagging runs"
    )
    parser.add_argument("--stand-in", action="store_true", help="skip the real model")
    args = parser.parse_args(argv)
    os.environ.setdefault("VOC_CONFIG", "/nonexistent/voc.toml")

    from ingest import Clock, generate

    from feedback.config import IngestSettings, Settings
    from feedback.db import make_engine, session_factory
    from feedback.ingest.files import ingest_file
    from feedback.migrate import upgrade
    from feedback.tagging import count_untagged
    from jobs.tasks import load_service_tagger, tag_pending

    work = Path(tempfile.mkdtemp(prefix="voc-tagbench-"))
    url = f"sqlite:///{work / 'voc.db'}"
    upgrade(url)
    settings = Settings(
        database_url=url,
        var_dir=work / "var",
        ingest=IngestSettings(batch_size=500),
        _env_file=None,
    )
    engine = make_engine(url)

    kind = "real"
    with Clock() as load:
        if args.stand_in:
            tagger, kind = StandInTagger(), "stand-in (requested)"
        else:
            try:
                tagger = load_service_tagger(settings)
            except Exception as exc:  # no model files, no torch: measure the job's overhead
                print(f"real tagger did not load ({type(exc).__name__}: {exc}); using a stand-in")
                tagger, kind = StandInTagger(), "stand-in (model unavailable)"
    print(
        f"tagger: {kind} {getattr(tagger, 'name', '')} {getattr(tagger, 'version', '')}; "
        f"loaded in {load.wall:.1f}s"
    )

    from feedback.language import detect_language

    detect_language("warm up the language model outside the timing")
    path = work / "batch.csv"
    generate(path, args.n, seed=11)
    with Clock() as ingest_clock:
        stats, _ = ingest_file(engine, path, settings=settings)
    tagger.tag(["warm up the encoder once"], return_embeddings=True)
    with Clock() as tag_clock:
        result = tag_pending(engine, tagger, batch_size=args.batch)
    assert result.tagged == stats.new and result.remaining == 0, result

    print(
        f"\n{'step':<10} {'items':>7} {'wall s':>7} {'items/s':>9} {'cpu s':>7} {'items/cpu-s':>12}"
    )
    for name, clock, n in (("ingest", ingest_clock, stats.new), ("tag", tag_clock, result.tagged)):
        print(
            f"{name:<10} {n:7d} {clock.wall:7.2f} {n / clock.wall:9,.1f} {clock.cpu:7.2f} "
            f"{n / clock.cpu:12,.1f}"
        )
    tag_rate = result.tagged / tag_clock.wall
    print(
        f"\ntagging sustains {tag_rate:,.0f} items/s = {tag_rate * 86400:,.0f} items/day (batch "
        f"{args.batch}); "
        f"ingest is {stats.new / ingest_clock.wall / tag_rate:,.1f}x faster, so a bulk import "
        f"of {args.n:,} "
        f"items is tagged {tag_clock.wall:.0f}s after it lands"
    )

    if args.concurrent:
        path2 = work / "feed.csv"
        generate(path2, args.concurrent, seed=12)
        done = threading.Event()
        tagged = {"n": 0}

        def tagging_loop() -> None:  # the scheduler's tag job, back to back
            while True:
                finished = done.is_set()
                tagged["n"] += tag_pending(engine, tagger, batch_size=args.batch).tagged
                if finished:
                    return
                time.sleep(0.2)

        thread = threading.Thread(target=tagging_loop)
        started = time.perf_counter()
        thread.start()
        ingest_file(engine, path2, settings=settings, source_name="feed")
        landed = time.perf_counter() - started
        done.set()
        thread.join()
        caught_up = time.perf_counter() - started
        with session_factory(engine)() as session:
            left = count_untagged(session)
        print(
            f"concurrent: {args.concurrent:,} items landed in {landed:.1f}s while tagging ran; "
            "all tagged "
            f"{caught_up:.1f}s after the start ({caught_up - landed:.1f}s behind the last batch); "
            f"{left} untagged left"
        )
    print(f"cpu cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
