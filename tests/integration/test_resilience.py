"""Faults at the botocore level: SES and DynamoDB throttling, outages, rejections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import aws, journey
from tests import faults
from tests.integration.helpers import SUPPORTER, addressed_to, body, headers, link, post_json
from tools import streams

TARGET = "privacy@clearview.ai"


def items_of(table_items, kind: str):  # type: ignore[no-untyped-def]
    return [item for item in table_items() if item["record_type"] == kind]


def later(minutes: int) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def test_ses_throttled_at_submission_queues_the_verification(
    client, sent_mail, table_items, env
) -> None:  # type: ignore[no-untyped-def]
    fault = faults.Fault(lambda _: True, faults.error("TooManyRequestsException", 429))
    with faults.inject(aws.sesv2(), "SendEmail", fault):
        response = post_json(client, "/requests", SUPPORTER)
    assert response.status_code == 202  # the supporter gets a normal answer
    [stored] = items_of(table_items, "request")
    assert stored["mail_queue"] == "pending" and stored["send_attempts"] == 1
    assert sent_mail() == []
    assert journey.retry_queued(later(0))["verifications"] == 0  # backoff: not yet
    assert journey.retry_queued(later(2))["verifications"] == 1
    assert len(sent_mail()) == 1
    [stored] = items_of(table_items, "request")
    assert "mail_queue" not in stored


def test_ses_unavailable_at_confirmation_queues_the_letter_then_backs_off(
    client, sent_mail, table_items, env
) -> None:  # type: ignore[no-untyped-def]
    post_json(client, "/requests", SUPPORTER)
    confirm = link(sent_mail()[0], "/confirm")
    fault = faults.Fault(lambda _: True, faults.error("ServiceUnavailable", 503))
    with faults.inject(aws.sesv2(), "SendEmail", fault):
        assert client.http.post(confirm).status_code == 303
        [stored] = items_of(table_items, "request")
        assert stored["status"] == "queued"
        assert stored["failure_reason"] == "ServiceUnavailable"
        # Still down at the first retry: the next attempt waits longer.
        assert journey.retry_queued(later(2))["still_queued"] == 1
        [stored] = items_of(table_items, "request")
        assert stored["send_attempts"] == 2
        # The third attempt waits 2 minutes: nothing is due a minute later.
        assert journey.retry_queued(later(1))["still_queued"] == 0
    assert addressed_to(sent_mail(), TARGET) == []
    counts = journey.retry_queued(later(10))
    assert counts["letters"] == 1
    assert len(addressed_to(sent_mail(), TARGET)) == 1
    [stored] = items_of(table_items, "request")
    assert stored["status"] == "sent" and "failure_reason" not in stored
    assert journey.retry_queued(later(120)) == {
        "verifications": 0,
        "letters": 0,
        "still_queued": 0,
        "stopped_early": 0,
    }


def test_message_rejected_marks_the_request_failed_with_the_reason(
    client, sent_mail, table_items
) -> None:  # type: ignore[no-untyped-def]
    post_json(client, "/requests", SUPPORTER)
    confirm = link(sent_mail()[0], "/confirm")
    fault = faults.Fault(lambda _: True, faults.error("MessageRejected", 400))
    with faults.inject(aws.sesv2(), "SendEmail", fault):
        client.http.post(confirm)
    [stored] = items_of(table_items, "request")
    assert stored["status"] == "failed"
    assert stored["failure_reason"] == "MessageRejected"
    assert "mail_queue" not in stored


def test_dynamodb_throttled_gives_503_and_writes_nothing(client, sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    fault = faults.Fault(
        lambda _: True, faults.error("ProvisionedThroughputExceededException", 400)
    )
    with faults.inject(aws.dynamodb(), "TransactWriteItems", fault):
        response = post_json(client, "/requests", SUPPORTER)
    assert response.status_code == 503
    assert headers(response)["retry-after"]
    assert items_of(table_items, "request") == [] and items_of(table_items, "email_lock") == []
    assert sent_mail() == []
    assert post_json(client, "/requests", SUPPORTER).status_code == 202  # recovers


def test_dynamodb_5xx_on_confirmation_is_a_503_and_the_retry_works(
    client, sent_mail, table_items
) -> None:  # type: ignore[no-untyped-def]
    post_json(client, "/requests", SUPPORTER)
    confirm = link(sent_mail()[0], "/confirm")
    fault = faults.Fault(lambda _: True, faults.error("InternalServerError", 500))
    with faults.inject(aws.dynamodb(), "TransactWriteItems", fault):
        assert client.http.post(confirm).status_code == 503
    assert items_of(table_items, "request")[0]["status"] == "pending_verification"
    assert client.http.post(confirm).status_code == 303
    assert len(addressed_to(sent_mail(), TARGET)) == 1


def test_queue_mode_sends_everything_through_the_retry_job(
    make_client, sent_mail, table_items, env
) -> None:  # type: ignore[no-untyped-def]
    client = make_client(SEND_MODE="queue")
    reply = body(post_json(client, "/requests", SUPPORTER))
    assert reply["status"] == "pending_verification"
    assert sent_mail() == []
    client.lambda_.invoke(
        "retry_queued",
        client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        ),
    )
    confirm = link(sent_mail()[0], "/confirm")
    client.http.post(confirm)
    assert addressed_to(sent_mail(), TARGET) == []
    result = client.lambda_.invoke(
        "retry_queued",
        client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        ),
    )
    assert result.payload["letters"] == 1
    assert len(addressed_to(sent_mail(), TARGET)) == 1


def test_a_lambda_that_dies_after_storing_is_healed_by_the_retry_job(
    make_client, sent_mail, table_items, env
) -> None:  # type: ignore[no-untyped-def]
    client = make_client(SEND_MODE="inline")
    fault = faults.Fault(lambda _: True, faults.crash("Lambda stopped"))
    with faults.inject(aws.sesv2(), "SendEmail", fault):
        post_json(client, "/requests", SUPPORTER)  # the function dies mid-request
    _healed_after_the_safety_net(sent_mail, table_items)


def _healed_after_the_safety_net(sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    [stored] = items_of(table_items, "request")
    assert stored["status"] == "pending_verification" and stored["mail_queue"] == "pending"
    assert sent_mail() == []
    assert journey.retry_queued(later(1))["verifications"] == 0  # not before the safety net
    assert journey.retry_queued(later(6))["verifications"] == 1
    assert len(sent_mail()) == 1
    assert "mail_queue" not in items_of(table_items, "request")[0]


def test_a_stream_consumer_that_dies_mid_send_is_healed_by_the_retry_job(
    client, sent_mail, table_items, env
) -> None:  # type: ignore[no-untyped-def]
    fault = faults.Fault(lambda _: True, faults.crash("Lambda stopped"))
    with faults.inject(aws.sesv2(), "SendEmail", fault), pytest.raises(RuntimeError):
        post_json(client, "/requests", SUPPORTER)  # send_stored dies; the API had answered
    _healed_after_the_safety_net(sent_mail, table_items)


def test_a_redelivered_stream_batch_sends_nothing_twice(
    client, sent_mail, table_items, stage_env
) -> None:  # type: ignore[no-untyped-def]
    # Lambda delivers a batch again when its function failed part-way.
    batches: list[dict[str, object]] = []
    recording = streams.StreamReader(stage_env["TABLE_NAME"])
    post_json(client, "/requests", SUPPORTER)
    client.http.post(link(sent_mail()[0], "/confirm"))
    streams.deliver(recording, batches.append)
    assert len(sent_mail()) == 3  # verification, letter, notice
    for batch in batches:
        client.lambda_.invoke("send_stored", batch)
    assert len(sent_mail()) == 3
    assert items_of(table_items, "request")[0]["status"] == "sent"


def test_a_lambda_that_dies_after_confirming_is_healed_by_the_retry_job(
    make_client, sent_mail, table_items, env
) -> None:  # type: ignore[no-untyped-def]
    client = make_client(SEND_MODE="inline")
    post_json(client, "/requests", SUPPORTER)
    confirm = link(sent_mail()[0], "/confirm")
    fault = faults.Fault(lambda _: True, faults.crash("Lambda stopped"))
    with faults.inject(aws.sesv2(), "SendEmail", fault):
        client.http.post(confirm)
    _letter_healed(sent_mail, table_items)


def _letter_healed(sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    [stored] = items_of(table_items, "request")
    assert stored["status"] == "queued"  # the claim was given back
    assert journey.retry_queued(later(6))["letters"] == 1
    assert len(addressed_to(sent_mail(), TARGET)) == 1
    assert items_of(table_items, "request")[0]["status"] == "sent"


def test_a_stream_consumer_that_dies_sending_the_letter_is_healed_by_the_retry_job(
    client, sent_mail, table_items, env
) -> None:  # type: ignore[no-untyped-def]
    post_json(client, "/requests", SUPPORTER)
    confirm = link(sent_mail()[0], "/confirm")
    fault = faults.Fault(lambda _: True, faults.crash("Lambda stopped"))
    with faults.inject(aws.sesv2(), "SendEmail", fault), pytest.raises(RuntimeError):
        client.http.post(confirm)
    _letter_healed(sent_mail, table_items)


@pytest.mark.parametrize("mode", ["inline", "stream"])
def test_forgotten_while_the_letter_is_in_flight(make_client, sent_mail, table_items, mode) -> None:  # type: ignore[no-untyped-def]
    client = make_client(SEND_MODE=mode)
    request_id = body(post_json(client, "/requests", SUPPORTER))["id"]
    confirm = link(sent_mail()[0], "/confirm")

    def forget_now(**_: object) -> None:
        journey.forget(request_id)  # the supporter's click lands mid-send

    fault = faults.Fault(lambda call: call == 1, forget_now)
    with faults.inject(aws.sesv2(), "SendEmail", fault):
        response = client.http.post(confirm, headers={"accept": "application/json"})
    assert response.status_code == 200
    # Inline, the answer comes after the letter; with the stream, before it.
    assert body(response)["status"] == {"inline": "forgotten", "stream": "queued"}[mode]
    [stored] = items_of(table_items, "request")
    assert stored["status"] == "forgotten" and "email" not in stored
    assert len(addressed_to(sent_mail(), TARGET)) == 1  # SES had it before the forget
    assert addressed_to(sent_mail(), SUPPORTER["email"])[1:] == []  # no notice afterwards


def test_transaction_conflicts_on_counters_are_retried(client, sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    # DynamoDB refuses a write to an item another transaction holds; moto
    # never does, so the conflicts are injected.
    conflict = faults.Fault(lambda call: call == 1, faults.error("TransactionCanceledException"))
    with faults.inject(aws.dynamodb(), "TransactWriteItems", conflict):
        first = post_json(client, "/requests", SUPPORTER)
    assert first.status_code == 202 and conflict.injected == 1 and conflict.calls == 2
    held = faults.Fault(lambda call: call == 1, faults.error("TransactionConflictException"))
    with faults.inject(aws.dynamodb(), "UpdateItem", held):
        again = post_json(client, "/requests", SUPPORTER)  # a duplicate: counted on its own
    assert again.status_code == 202 and held.injected == 1
    assert body(again)["id"] == body(first)["id"]
    assert len(items_of(table_items, "request")) == 1
