"""Push: webhooks with an HMAC-SHA256 signature, and POST /v1/feedback with an Idempotency-Key."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from sqlalchemy import func, select

from feedback.db import session_factory
from feedback.models import FeedbackItem, IdempotencyKey
from feedback.sources.config import SourceConfig
from feedback.sources.service import save_source

SECRET = "whsec_test_0123456789"


def _count(engine) -> int:
    with session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(FeedbackItem)) or 0


@pytest.fixture
def hook(engine, monkeypatch):
    monkeypatch.setenv("SURVEY_HOOK_SECRET", SECRET)
    with session_factory(engine)() as session:
        save_source(
            session,
            SourceConfig(
                name="typeform",
                connector="webhook",
                channel="survey",
                credentials_env={"secret": "SURVEY_HOOK_SECRET"},
                options={
                    "items_path": "$.form_response.answers[*]",
                    "fields": {
                        "external_id": "$.id",
                        "text": "$.text",
                        "nps": "$.score",
                        "created_at": "$.submitted_at",
                    },
                },
            ),
            origin="api",
        )
        session.commit()


def _sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


DELIVERY = {
    "event_id": "ev1",
    "form_response": {
        "answers": [
            {
                "id": "a1",
                "text": "Support fixed my order in minutes",
                "score": 10,
                "submitted_at": "2026-09-01T10:00:00Z",
            },
            {
                "id": "a2",
                "text": "Delivery slot was missed twice",
                "score": 3,
                "submitted_at": "2026-09-01T11:00:00Z",
            },
        ]
    },
}


def test_signed_delivery_is_stored_once(light_client, engine, hook) -> None:
    body = json.dumps(DELIVERY).encode()
    response = light_client.post(
        "/v1/webhooks/typeform",
        content=body,
        headers={"X-Signature-256": _sign(body), "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["new"] == 2
    again = light_client.post(
        "/v1/webhooks/typeform", content=body, headers={"X-Signature-256": _sign(body)}
    )
    assert again.json()["unchanged"] == 2 and _count(engine) == 2  # a redelivery adds nothing
    with session_factory(engine)() as session:
        item = session.scalar(select(FeedbackItem).where(FeedbackItem.external_id == "a2"))
    assert item is not None and item.nps == 3 and item.channel == "survey"


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "garbage"])
def test_unsigned_or_badly_signed_delivery_is_refused(
    light_client, engine, hook, signature
) -> None:
    body = json.dumps(DELIVERY).encode()
    headers = {"X-Signature-256": signature} if signature else {}
    response = light_client.post("/v1/webhooks/typeform", content=body, headers=headers)
    assert response.status_code == 401 and "signature" in response.json()["detail"]
    assert _count(engine) == 0


def test_signature_is_over_the_exact_bytes(light_client, engine, hook) -> None:
    body = json.dumps(DELIVERY).encode()
    tampered = body.replace(b"minutes", b"hours!!")
    response = light_client.post(
        "/v1/webhooks/typeform", content=tampered, headers={"X-Signature-256": _sign(body)}
    )
    assert response.status_code == 401 and _count(engine) == 0


def test_wrong_secret_unknown_source_and_missing_secret(
    light_client, engine, hook, monkeypatch
) -> None:
    body = json.dumps(DELIVERY).encode()
    wrong = light_client.post(
        "/v1/webhooks/typeform",
        content=body,
        headers={"X-Signature-256": _sign(body, "another-secret")},
    )
    assert wrong.status_code == 401
    assert light_client.post("/v1/webhooks/nope", content=body).status_code == 404
    monkeypatch.delenv("SURVEY_HOOK_SECRET")
    unset = light_client.post(
        "/v1/webhooks/typeform", content=body, headers={"X-Signature-256": _sign(body)}
    )
    assert unset.status_code == 503 and "$SURVEY_HOOK_SECRET" in unset.json()["detail"]


def test_timestamped_signatures_refuse_replays(light_client, engine, monkeypatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    with session_factory(engine)() as session:
        save_source(
            session,
            SourceConfig(
                name="stamped",
                connector="webhook",
                credentials_env={"secret": "HOOK_SECRET"},
                options={"timestamp_header": "X-Timestamp", "tolerance_seconds": 60},
            ),
            origin="api",
        )
        session.commit()
    body = json.dumps({"id": "t1", "text": "Quick refund, thanks"}).encode()

    def headers(stamp: int) -> dict[str, str]:
        signed = f"{stamp}.".encode() + body
        return {
            "X-Timestamp": str(stamp),
            "X-Signature-256": "sha256="
            + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest(),
        }

    assert (
        light_client.post(
            "/v1/webhooks/stamped", content=body, headers=headers(int(time.time()))
        ).status_code
        == 200
    )
    old = light_client.post(
        "/v1/webhooks/stamped", content=body, headers=headers(int(time.time()) - 3600)
    )
    assert old.status_code == 401 and "old" in old.json()["detail"]


# -- POST /v1/feedback with an Idempotency-Key -----------------------------------------------------
BATCH = {
    "source": "app",
    "items": [
        {"external_id": "p1", "text": "Love the new checkout"},
        {"external_id": "p2", "text": "Search is slow", "nps": 4},
    ],
}


def test_same_key_same_body_replays_the_first_answer(light_client, engine) -> None:
    first = light_client.post("/v1/feedback", json=BATCH, headers={"Idempotency-Key": "batch-001"})
    assert first.status_code == 200 and first.json()["new"] == 2
    # Key order and spacing do not make it another request.
    reordered = json.dumps({"items": BATCH["items"], "source": "app"}, indent=2)
    again = light_client.post(
        "/v1/feedback",
        content=reordered,
        headers={"Idempotency-Key": "batch-001", "Content-Type": "application/json"},
    )
    assert again.status_code == 200 and again.json() == first.json()  # "new": 2, as the first time
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(engine) == 2
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1
        p2 = session.scalar(select(FeedbackItem).where(FeedbackItem.external_id == "p2"))
    assert (
        p2 is not None and p2.nps == 4
    )  # an item's field present only after the first item still maps


def test_same_key_different_body_is_a_conflict(light_client, engine) -> None:
    assert (
        light_client.post(
            "/v1/feedback", json=BATCH, headers={"Idempotency-Key": "k-2"}
        ).status_code
        == 200
    )
    changed = {**BATCH, "items": [{"external_id": "p3", "text": "Different data"}]}
    conflict = light_client.post("/v1/feedback", json=changed, headers={"Idempotency-Key": "k-2"})
    assert conflict.status_code == 409 and "different request body" in conflict.json()["detail"]
    assert _count(engine) == 2


def test_without_a_key_items_are_still_not_duplicated(light_client, engine) -> None:
    light_client.post("/v1/feedback", json=BATCH)
    second = light_client.post("/v1/feedback", json=BATCH)
    assert second.json()["unchanged"] == 2 and "Idempotent-Replayed" not in second.headers
    assert _count(engine) == 2
