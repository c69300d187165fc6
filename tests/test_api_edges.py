"""Requests a client can send that once got a 5xx, or the wrong 4xx: each is answered at the edge
with a 4xx whose body has the shape the OpenAPI schema declares (tests/test_api_fuzz.py searches
for more)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from analytics_data import MONDAY, Row, write_rows
from sqlalchemy import func, insert, select

from feedback.db import session_scope
from feedback.models import FeedbackItem, TagLabel, Topic

BEYOND_64_BITS = "99999999999999999999"


def _is_validation_error(response, *loc) -> bool:
    """422 with FastAPI's list of errors (the declared HTTPValidationError), one of them at `loc`."""
    detail = response.json()["detail"]
    return (response.status_code == 422 and isinstance(detail, list)
            and any(tuple(error["loc"][:len(loc)]) == loc for error in detail))


@pytest.fixture
def topic_id(light_client) -> int:
    with session_scope(light_client.app.state.session_factory) as session:
        topic = Topic(audience="customer", label="Late delivery", keywords=["late"])
        session.add(topic)
        session.flush()
        return topic.id


def _stored(light_client) -> int:
    with session_scope(light_client.app.state.session_factory) as session:
        return session.scalar(select(func.count()).select_from(FeedbackItem))


def test_ids_and_cursors_beyond_the_database_integer_are_422(light_client, topic_id) -> None:
    assert _is_validation_error(light_client.get(f"/v1/feedback/{BEYOND_64_BITS}"), "path", "item_id")
    assert _is_validation_error(light_client.get("/v1/topics/19234610152012206080"), "path", "topic_id")
    assert _is_validation_error(light_client.get("/v1/feedback", params={"cursor": BEYOND_64_BITS}),
                                "query", "cursor")
    assert _is_validation_error(light_client.post(f"/v1/topics/{topic_id}/merge", json={"into": 2**63}),
                                "body", "into")
    # The largest id the database holds is a plain miss.
    assert light_client.get(f"/v1/feedback/{2**63 - 1}").status_code == 404
    assert light_client.get(f"/v1/topics/{2**63 - 1}").status_code == 404


def test_a_push_of_the_wrong_shape_is_422(light_client) -> None:
    response = light_client.post("/v1/feedback", json={"items": 5, "source": {"name": "x"}})
    assert _is_validation_error(response, "body", "items")
    assert _is_validation_error(response, "body", "source")


@pytest.mark.parametrize("body", [
    b'{"items": [{"text": "late \\ud800 parcel"}]}',
    b'{"source": "s\\udfff", "items": [{"text": "late parcel"}]}',
    b'{"items": [{"text": "late parcel", "store_\\ud800": "x"}]}',
])
def test_a_lone_surrogate_in_a_push_is_422_and_nothing_is_stored(light_client, body) -> None:
    response = light_client.post("/v1/feedback", content=body, headers={"Content-Type": "application/json"})
    assert _is_validation_error(response, "body"), response.text
    assert response.json()["detail"][0]["type"] == "string_unicode"
    assert _stored(light_client) == 0
    emoji = light_client.post("/v1/feedback", content=b'{"items": [{"text": "late \\ud83d\\ude20"}]}',
                              headers={"Content-Type": "application/json"})
    assert emoji.status_code == 200 and _stored(light_client) == 1  # a surrogate pair is a character


@pytest.mark.parametrize("body", [
    b'{"items": [{"text": "late \\u0000 parcel"}]}',
    b'{"source": "s\\u0000", "items": [{"text": "late parcel"}]}',
    b'{"items": [{"text": "late parcel", "store\\u0000": "x"}]}',
])
def test_a_nul_character_in_a_push_is_422_and_nothing_is_stored(light_client, body) -> None:
    """PostgreSQL text cannot hold NUL: refused at the edge, on every engine, with where it was."""
    response = light_client.post("/v1/feedback", content=body, headers={"Content-Type": "application/json"})
    assert _is_validation_error(response, "body"), response.text
    assert "NUL" in response.json()["detail"][0]["msg"]
    assert _stored(light_client) == 0


@pytest.mark.parametrize("query", ["source=a%00b", "q=late%00", "touchpoint=%00"])
def test_a_nul_character_in_a_query_is_422(light_client, query) -> None:
    response = light_client.get(f"/v1/feedback?{query}")
    assert _is_validation_error(response, "query"), response.text
    assert light_client.get(f"/v1/trends?{query.replace('q=', 'channel=')}").status_code == 422


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_a_moment_outside_the_years_1_to_9999_in_utc_is_422(light_client, moment) -> None:
    for path, name in [("/v1/feedback", "since"), ("/v1/trends", "start"), ("/v1/compare", "current_start")]:
        response = light_client.get(path, params={name: moment})
        assert _is_validation_error(response, "query", name), (path, response.text)


def test_topic_edits_answer_in_the_declared_shape(light_client, topic_id) -> None:
    empty = light_client.patch(f"/v1/topics/{topic_id}", json={})
    assert _is_validation_error(empty, "body") and "`label`" in empty.text
    surrogate = light_client.patch(f"/v1/topics/{topic_id}", content=b'{"label": "Late \\ud800"}',
                                   headers={"Content-Type": "application/json"})
    assert _is_validation_error(surrogate, "body", "label")
    renamed = light_client.patch(f"/v1/topics/{topic_id}", json={"label": "Late parcels"})
    assert renamed.status_code == 200 and renamed.json()["label"] == "Late parcels"


@pytest.mark.parametrize(("method", "path"), [
    ("post", "/v1/feedback"), ("post", "/v1/classify"), ("patch", "/v1/topics/1"), ("post", "/v1/sources"),
    ("post", "/v1/sources/anything/pull"), ("get", f"/v1/feedback/{BEYOND_64_BITS}"),
])
@pytest.mark.parametrize("key", [None, "voc_abcdefgh_not-the-secret", "not a key"])
def test_without_a_valid_key_the_answer_is_401_whatever_the_body(scoped_client, method, path, key) -> None:
    client = scoped_client()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    for body in (b"{not json", b'"\\ud800"', b"", b'{"items": 5}'):
        response = client.request(method, path, content=body, headers=headers)
        assert response.status_code == 401, (body, response.text)
        assert isinstance(response.json()["detail"], str)
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_health_and_webhooks_need_no_key(scoped_client) -> None:
    client = scoped_client()
    assert client.get("/health").status_code == 200
    assert client.post("/v1/webhooks/none", content=b"{not json").status_code == 404


def test_pulling_a_push_source_is_refused_up_front(light_client) -> None:
    assert light_client.post("/v1/feedback", json={"source": "app", "items": [{"text": "late"}]}).status_code == 200
    runs = light_client.get("/v1/sources/app/runs").json()
    for wait in ("false", "true"):
        response = light_client.post("/v1/sources/app/pull", params={"wait": wait})
        assert response.status_code == 400, response.text
        assert "is not pulled" in response.json()["detail"]
    assert light_client.get("/v1/sources/app/runs").json() == runs  # no run started, none failed


@pytest.mark.parametrize("name", ["", "has space", "-leading-dash", "x" * 201, "slash/in/it"])
def test_a_push_cannot_create_a_source_the_sources_api_would_refuse(light_client, name) -> None:
    pushed = light_client.post("/v1/feedback", json={"source": name, "items": [{"text": "late"}]})
    declared = light_client.post("/v1/sources", json={"name": name, "connector": "push"})
    assert _is_validation_error(pushed, "body", "source")
    assert declared.status_code == 422
    assert light_client.get("/v1/sources").json() == []


def test_trends_by_a_label_filtered_on_another_label(light_client, engine) -> None:
    """Rows by need (a join on tag_labels) filtered on a CX emotion (an EXISTS on tag_labels): once a
    500, then a 400; now each need counts the items that carry it and the CX emotion."""
    at = MONDAY + timedelta(days=1)
    rows = [
        Row("customer", at, touchpoint="delivery", score=-0.8, needs=("price", "speed")),
        Row("customer", at, touchpoint="delivery", score=0.6, needs=("price",)),
        Row("customer", at, touchpoint="checkout", score=-0.6, needs=("speed",)),
        Row("customer", at, touchpoint="support", score=-0.5, needs=("help",), emotions=("anger",)),
        Row("customer", at, touchpoint="support", score=0.7, needs=("price", "help"), emotions=("anger",)),
    ]
    ids = write_rows(engine, rows)
    cx = {ids[0]: ["frustrated"], ids[1]: ["frustrated", "anxious"], ids[2]: [], ids[3]: ["frustrated"],
          ids[4]: ["anxious"]}
    with session_scope(engine) as session:
        session.execute(insert(TagLabel), [{"item_id": i, "kind": "cx_emotion", "label": label, "score": 0.9}
                                           for i, labels in cx.items() for label in labels])

    def volumes(**params) -> dict[str, tuple[int, float]]:
        response = light_client.get("/v1/trends", params={"interval": "week", "start": MONDAY.isoformat(),
                                                          **params})
        assert response.status_code == 200, response.text
        return {row["value_code"]: (row["n"], round(row["share_negative_cc"], 3)) for row in response.json()["rows"]}

    # frustrated: items 0 (price, speed; negative), 1 (price; positive), 3 (help; negative)
    assert volumes(by="need", cx_emotion="frustrated") == {"price": (2, 0.5), "speed": (1, 1.0),
                                                           "help": (1, 1.0)}
    # anger: items 3 (help; negative) and 4 (price, help; positive); and both filters at once
    assert volumes(by="need", emotion="anger") == {"help": (2, 0.5), "price": (1, 0.0)}
    assert volumes(by="cx_emotion", emotion="anger", need="price") == {"anxious": (1, 0.0)}
    # a label dimension's rows filtered on its own kind: the items with both labels
    assert volumes(by="need", need="speed") == {"speed": (2, 1.0), "price": (1, 1.0)}
    assert volumes(by="touchpoint", need="speed") == {"delivery": (1, 1.0), "checkout": (1, 1.0)}
