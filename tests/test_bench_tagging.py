"""The tagging bench's timing helper: rounds alternate, so drift lands on both sides."""

from __future__ import annotations

from conftest import bench_module


def _tagging_bench():
    return bench_module("tagging")


def test_timed_rounds_interleaves_the_compared_functions() -> None:
    tagging = _tagging_bench()
    calls: list[str] = []
    results = tagging.timed_rounds([lambda: calls.append("a"), lambda: calls.append("b")], 3)
    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert len(results) == 2
    for best_wall, best_cpu, rounds in results:
        assert len(rounds) == 3
        assert best_wall == min(rounds)
        assert best_cpu >= 0.0


def test_timed_keeps_the_best_of_its_repeats() -> None:
    tagging = _tagging_bench()
    calls: list[int] = []
    wall, cpu = tagging.timed(lambda: calls.append(1), 4)
    assert len(calls) == 4 and wall >= 0.0 and cpu >= 0.0
