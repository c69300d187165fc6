"""The taxonomy's refit rules on a real (SQLite) database: empty-answer topics share one id."""

from __future__ import annotations

from sqlalchemy import select

from feedback.db import session_scope
from feedback.models import Topic
from feedback.topics import taxonomy
from feedback.topics.labels import EMPTY_ANSWER_LABEL

NOTHING = EMPTY_ANSWER_LABEL


def _fitted(matched: dict[int, int] | None = None) -> list[taxonomy.FittedTopic]:
    matched = matched or {}
    rows = [(0, "Pay & Benefits", 50), (1, f"{NOTHING} (2)", 20), (2, NOTHING, 30)]
    return [taxonomy.FittedTopic(model_topic=t, label=label, keywords=[label.lower()], size=size,
                                 matched_id=matched.get(t), quote_item_ids=[100 + t])
            for t, label, size in rows]  # fmt: skip


def test_empty_answer_topics_join_the_biggest_one() -> None:
    fitted = taxonomy.join_empty_answers(_fitted())
    assert [f.joins for f in fitted] == [None, 2, None]
    # a matched one is preferred to a bigger new one, and carries the plain label
    fitted = taxonomy.join_empty_answers(_fitted({1: 9}))
    assert [f.joins for f in fitted] == [None, None, 1] and fitted[1].label == NOTHING
    one = [f for f in _fitted() if f.model_topic != 1]
    assert all(f.joins is None for f in taxonomy.join_empty_answers(one))


def test_a_refit_gives_empty_answers_one_id_and_merges_an_earlier_second_one(engine) -> None:
    with session_scope(engine) as session:
        first = taxonomy.apply_refit(session, audience="employee", version=1, fitted=_fitted())
        assert len(set(first.model_to_topic.values())) == 3  # without the join: two empty ids
        a, b = first.model_to_topic[2], first.model_to_topic[1]

        fitted = taxonomy.join_empty_answers(_fitted({0: first.model_to_topic[0], 1: b, 2: a}))
        second = taxonomy.apply_refit(session, audience="employee", version=2, fitted=fitted)
        assert second.model_to_topic[1] == second.model_to_topic[2] == a
        assert second.retired == [] and second.created == []
        joined, earlier = session.get(Topic, a), session.get(Topic, b)
        assert joined.label == NOTHING and joined.size == 50
        assert {101, 102} <= set(joined.extra["quote_item_ids"])
        assert earlier.status == "merged" and taxonomy.resolve(session, b) == a
        active = session.scalars(select(Topic).where(Topic.status == "active")).all()
        assert sorted(t.id for t in active) == sorted({first.model_to_topic[0], a})

        # the next refit matches both empty clusters to the one id and keeps it
        fitted = taxonomy.join_empty_answers(_fitted({0: first.model_to_topic[0], 1: a, 2: a}))
        third = taxonomy.apply_refit(session, audience="employee", version=3, fitted=fitted)
        assert third.model_to_topic[1] == third.model_to_topic[2] == a and not third.created
