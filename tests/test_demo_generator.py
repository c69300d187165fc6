"""The Northwind Home demo data: deterministic, realistic in shape, and carrying its stories."""

from __future__ import annotations

import csv
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import fields
from datetime import datetime
from pathlib import Path

import pytest

from feedback.demo import COLUMNS, STORIES, WEEKS, Story, generate, get_story, write_csv

HEADER = (
    "external_id,created_at,audience,channel,touchpoint,journey_stage,segment,org_unit,"
    "language,text,nps,csat,stars,author"
)
CUSTOMER_TOUCHPOINTS = {"website", "app", "checkout", "delivery", "returns", "support", "store"}
TEAMS = {"stores", "warehouse", "customer_service", "engineering"}


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return generate()


def iso_week(row: dict[str, str]) -> str:
    year, week, _ = datetime.strptime(row["created_at"], "%Y-%m-%dT%H:%M:%SZ").isocalendar()
    return f"{year}-W{week:02d}"


def before(row: dict[str, str], week: str) -> bool:
    return iso_week(row) < week  # "2026-Wnn" strings sort like the weeks


def mean_of(rows: list[dict[str, str]], column: str) -> float:
    return statistics.mean(int(r[column]) for r in rows if r[column])


def mentions(row: dict[str, str], terms: tuple[str, ...]) -> bool:
    text = row["text"].lower()
    return any(term.lower() in text for term in terms)


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "demo.csv", tmp_path / "b" / "demo.csv"
    n_first = write_csv(first, seed=11)
    n_second = write_csv(second, seed=11)
    assert n_first == n_second > 0
    assert first.read_bytes() == second.read_bytes()


def test_different_seeds_differ(rows: list[dict[str, str]]) -> None:
    other = generate(seed=8)
    assert [r["text"] for r in other] != [r["text"] for r in rows]


def test_csv_header_and_encoding(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "demo.csv"
    n = write_csv(path)
    raw = path.read_bytes().decode("utf-8")
    assert raw.splitlines()[0] == HEADER
    assert ",".join(COLUMNS) == HEADER
    with path.open(encoding="utf-8", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == n


def test_volumes_over_exactly_sixteen_fixed_weeks(rows: list[dict[str, str]]) -> None:
    audiences = Counter(r["audience"] for r in rows)
    assert audiences["customer"] >= 5000
    assert audiences["employee"] >= 1200
    assert set(audiences) == {"customer", "employee"}
    assert WEEKS[0] == "2026-W31" and WEEKS[-1] == "2026-W46" and len(WEEKS) == 16
    assert sorted({iso_week(r) for r in rows}) == list(WEEKS)
    assert rows[0]["created_at"] >= "2026-07-27T00:00:00Z"
    assert rows[-1]["created_at"] <= "2026-11-15T23:59:59Z"
    per_week = Counter(iso_week(r) for r in rows if r["audience"] == "customer")
    assert max(per_week.values()) < 1.4 * min(per_week.values())


def test_rows_sorted_with_stable_ids(rows: list[dict[str, str]]) -> None:
    assert all(list(r) == list(COLUMNS) for r in rows)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:00Z", r["created_at"]) for r in rows)
    assert [r["external_id"] for r in rows] == [f"nw-{i:06d}" for i in range(1, len(rows) + 1)]
    keys = [(r["created_at"], r["external_id"]) for r in rows]
    assert keys == sorted(keys)


def test_customer_dimensions(rows: list[dict[str, str]]) -> None:
    customers = [r for r in rows if r["audience"] == "customer"]
    assert {r["touchpoint"] for r in customers} == CUSTOMER_TOUCHPOINTS | {""}
    assert {r["channel"] for r in customers} == {
        "survey", "review", "ticket", "chat", "social", "app_review"
    }  # fmt: skip
    assert {r["segment"] for r in customers} == {"new", "returning", "loyalty_member"}
    assert all(r["author"].startswith("cust-") and len(r["author"]) == 10 for r in customers)
    assert all(r["org_unit"] == "" for r in customers)
    stages = {(r["touchpoint"], r["journey_stage"]) for r in customers}
    assert ("checkout", "purchase") in stages and ("delivery", "receive") in stages
    assert ("website", "discover") in stages and ("returns", "service") in stages
    assert {stage for _, stage in stages} == {
        "discover",
        "purchase",
        "receive",
        "use",
        "service",
        "",
    }
    # Some touchpoints are left for the classifier to infer, never a delivery row.
    empty = [r for r in customers if r["touchpoint"] == ""]
    assert 0.07 < len(empty) / len(customers) < 0.13
    assert not any("swiftship" in r["text"].lower() for r in empty)
    # Authors come back, as real customers do.
    repeats = Counter(r["author"] for r in customers)
    assert 1500 < len(repeats) < len(customers) and max(repeats.values()) >= 5


def test_employee_dimensions(rows: list[dict[str, str]]) -> None:
    employees = [r for r in rows if r["audience"] == "employee"]
    assert {r["channel"] for r in employees} == {"pulse", "survey"}
    assert TEAMS <= {r["org_unit"] for r in employees}
    for team in {r["org_unit"] for r in employees}:
        assert len({r["author"] for r in employees if r["org_unit"] == team}) >= 25, team
    assert {r["touchpoint"] for r in employees} == {
        "onboarding", "day_to_day", "manager", "career", "pay_benefits", "tools"
    }  # fmt: skip
    assert {r["journey_stage"] for r in employees} == {"join", "work", "grow"}
    assert {r["segment"] for r in employees} == {"<1y", "1-3y", "3y+"}
    assert all(re.fullmatch(r"emp-\d{4}", r["author"]) for r in employees)
    # onboarding feedback comes from people who joined this year
    assert {r["segment"] for r in employees if r["touchpoint"] == "onboarding"} == {"<1y"}
    # a person answers the pulse at most once a week
    answers = Counter((r["author"], iso_week(r)) for r in employees)
    assert max(answers.values()) == 1


def test_ratings_follow_the_source(rows: list[dict[str, str]]) -> None:
    for r in rows:
        nps, csat, stars = r["nps"], r["csat"], r["stars"]
        if r["channel"] in ("survey", "pulse"):
            assert nps and 0 <= int(nps) <= 10 and not csat and not stars
        elif r["channel"] in ("review", "app_review"):
            assert stars and 1 <= int(stars) <= 5 and not nps and not csat
        elif r["channel"] in ("ticket", "chat"):
            assert csat and 1 <= int(csat) <= 5 and not nps and not stars
        else:
            assert r["channel"] == "social" and not (nps or csat or stars)


def test_ratings_agree_with_the_words(rows: list[dict[str, str]]) -> None:
    happy = [r for r in rows if mentions(r, ("Highly recommend", "Absolutely delighted"))]
    angry = [r for r in rows if mentions(r, ("Never again", "is a disaster", "I'm so frustrated"))]
    for column, gap in (("nps", 4), ("stars", 2), ("csat", 2)):
        assert mean_of(happy, column) - mean_of(angry, column) >= gap, column


def test_delivery_courier_story(rows: list[dict[str, str]]) -> None:
    story = get_story("delivery_courier")
    delivery = [r for r in rows if r["touchpoint"] == "delivery"]
    old = [r for r in delivery if before(r, story.starts_week)]
    new = [r for r in delivery if not before(r, story.starts_week)]
    assert mean_of(old, "stars") - mean_of(new, "stars") >= 1.0
    assert mean_of(old, "csat") - mean_of(new, "csat") >= 1.0
    assert mean_of(old, "nps") - mean_of(new, "nps") >= 2.0
    weeks_old, weeks_new = WEEKS.index(story.starts_week), 16 - WEEKS.index(story.starts_week)
    assert (len(new) / weeks_new) / (len(old) / weeks_old) > 1.3
    assert not any(mentions(r, story.absent_before) for r in rows if before(r, story.starts_week))
    named = Counter(iso_week(r) for r in delivery if mentions(r, story.absent_before))
    assert all(named[w] >= 15 for w in WEEKS[WEEKS.index(story.starts_week) :])


def test_app_wishlist_story(rows: list[dict[str, str]]) -> None:
    story = get_story("app_wishlist_bug")
    assert not any(mentions(r, story.keywords) for r in rows if before(r, story.starts_week))
    hits = [r for r in rows if mentions(r, story.keywords)]
    assert {r["touchpoint"] for r in hits} == {"app"}
    per_week = Counter(iso_week(r) for r in hits)
    assert sorted(per_week) == list(WEEKS[WEEKS.index(story.starts_week) :])
    assert all(15 <= n <= 25 for n in per_week.values())


def test_warehouse_morale_story(rows: list[dict[str, str]]) -> None:
    story = get_story("warehouse_morale")
    employees = [r for r in rows if r["audience"] == "employee"]
    for team in {r["org_unit"] for r in employees}:
        old = [r for r in employees if r["org_unit"] == team and before(r, story.starts_week)]
        new = [r for r in employees if r["org_unit"] == team and not before(r, story.starts_week)]
        drop = mean_of(old, "nps") - mean_of(new, "nps")
        if team == story.value:
            assert drop >= 2.0
        else:
            assert abs(drop) < 0.7, team
    rota = [r for r in rows if mentions(r, story.absent_before)]
    assert {r["org_unit"] for r in rota} == {"warehouse"}
    assert min(iso_week(r) for r in rota) == story.starts_week


def test_quiet_week_is_ordinary(rows: list[dict[str, str]]) -> None:
    story = get_story("quiet_week")
    customers = Counter(iso_week(r) for r in rows if r["audience"] == "customer")
    neighbours = statistics.mean(customers[w] for w in ("2026-W34", "2026-W36"))
    assert abs(customers[story.value] - neighbours) / neighbours < 0.06
    assert all(s.starts_week != story.value for s in STORIES if s.key != story.key)


def test_texts_are_varied(rows: list[dict[str, str]]) -> None:
    texts = Counter(r["text"] for r in rows if r["audience"] == "customer")
    assert len(texts) >= 3000
    assert max(texts.values()) <= 5
    lengths = [len(r["text"].split()) for r in rows]
    assert min(lengths) >= 5 and max(lengths) <= 60
    assert statistics.mean(lengths) > 12
    assert sum(1 for r in rows if re.search(r"\$\d", r["text"])) > 200  # prices
    assert sum(1 for r in rows if re.search(r"#\d{7}", r["text"])) > 200  # order numbers
    assert sum(1 for r in rows if ". " in r["text"]) > len(rows) / 3  # multi-sentence


def test_some_rows_carry_pii_for_the_redactor(rows: list[dict[str, str]]) -> None:
    email = [r for r in rows if re.search(r"[\w.]+@example\.com", r["text"])]
    phone = [r for r in rows if re.search(r"555[ -]0\d{3}", r["text"])]
    card = [r for r in rows if re.search(r"\b\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{4}\b", r["text"])]
    assert email and phone and card
    assert 0.004 < len({id(r) for r in email + phone + card}) / len(rows) < 0.02


def test_a_few_rows_are_in_other_languages(rows: list[dict[str, str]]) -> None:
    unlabelled = [r for r in rows if r["language"] == ""]
    assert {r["language"] for r in rows} == {"en", ""}
    assert 0.005 < len(unlabelled) / len(rows) < 0.02
    markers = {"es": " el ", "de": " die ", "fr": " le "}
    for language, marker in markers.items():
        assert any(marker in f" {r['text'].lower()}" for r in unlabelled), language


def test_stories_are_machine_readable() -> None:
    names = [f.name for f in fields(Story)]
    assert names[:8] == [
        "key", "audience", "dimension", "value", "starts_week", "description", "expected",
        "keywords",
    ]  # fmt: skip
    assert [s.key for s in STORIES] == [
        "delivery_courier", "app_wishlist_bug", "warehouse_morale", "quiet_week"
    ]  # fmt: skip
    for story in STORIES:
        assert story.starts_week in WEEKS and story.description and story.expected
    with pytest.raises(KeyError, match="known: delivery_courier"):
        get_story("nope")


def test_command_line_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "cli" / "demo.csv"
    done = subprocess.run(
        [sys.executable, "-m", "feedback.demo.generator", str(out), "--seed", "3"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.stdout.startswith("wrote ") and len(done.stdout.strip().splitlines()) == 1
    assert out.read_bytes() == _written(tmp_path / "api.csv", seed=3)
    assert "Warning" not in done.stderr


def _written(path: Path, *, seed: int) -> bytes:
    write_csv(path, seed=seed)
    return path.read_bytes()


def test_default_size_is_fast() -> None:
    started = time.perf_counter()
    generate()
    assert time.perf_counter() - started < 2.0
