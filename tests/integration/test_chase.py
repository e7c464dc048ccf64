"""Reports and the daily chase, against the moto server (issue 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta

import pytest

from chalicelib import aws, chase
from tests import faults
from tests.integration.helpers import SUPPORTER, addressed_to, body, headers, link, post_json
from tools.local_stack import ROOT, aws_environment

TARGET = "privacy@clearview.ai"


def sent_request(client, sent_mail, email: str = "zoe@example.org", **fields: str):  # type: ignore[no-untyped-def]
    """A confirmed request whose letter went out; returns (id, status path)."""
    before = len(sent_mail())
    created = post_json(client, "/requests", {**SUPPORTER, "email": email, **fields})
    request_id = body(created)["id"]
    client.http.post(link(sent_mail()[before], "/confirm"))
    status_path = link(sent_mail()[-1], "")
    return request_id, status_path


def record(client, status_path: str) -> dict:  # type: ignore[type-arg,no-untyped-def]
    response = client.http.get(status_path, headers={"accept": "application/json"})
    assert response.status_code == 200
    return body(response)  # type: ignore[no-any-return]


def report(client, status_path: str, kind: str):  # type: ignore[no-untyped-def]
    path = status_path.replace("?token=", "/events?token=")
    return post_json(client, path, {"type": kind})


def due(client, status_path: str) -> date:  # type: ignore[no-untyped-def]
    return date.fromisoformat(record(client, status_path)["due_date"])


def letters_to_target(sent_mail):  # type: ignore[no-untyped-def]
    return addressed_to(sent_mail(), TARGET)


def test_status_link_opens_the_status_page(client, sent_mail) -> None:  # type: ignore[no-untyped-def]
    _, status_path = sent_request(client, sent_mail)
    assert record(client, status_path)["status"] == "sent"


def test_chase_stages_in_order(client, sent_mail, env) -> None:  # type: ignore[no-untyped-def]
    request_id, status_path = sent_request(client, sent_mail)
    deadline = due(client, status_path)
    [original] = letters_to_target(sent_mail)

    on_deadline = chase.run(deadline)
    assert (on_deadline.followed_up, on_deadline.kits) == (0, 0)
    assert len(sent_mail()) == 3

    day_after = chase.run(deadline + timedelta(days=1))
    assert (day_after.followed_up, day_after.kits, day_after.reminders) == (1, 1, 0)
    follow_up = letters_to_target(sent_mail)[-1]
    assert follow_up["In-Reply-To"].endswith("@email.amazonses.com>")
    assert original["Message-ID"] in follow_up["References"]
    assert follow_up["Reply-To"].addresses[0].addr_spec == "zoe@example.org"
    assert follow_up["Cc"].addresses[0].addr_spec == "zoe@example.org"
    kit = addressed_to(sent_mail(), "zoe@example.org")[-1]
    kit_text = kit.get_content()
    assert "priv.gc.ca" in kit_text
    assert "cai.gouv.qc.ca" in kit_text  # Quebec supporter: the CAI too
    assert record(client, status_path)["status"] == "kit_sent"

    again = chase.run(deadline + timedelta(days=1))
    assert (again.followed_up, again.kits, again.reminders) == (0, 0, 0)
    before_grace = chase.run(deadline + timedelta(days=14))
    assert before_grace.reminders == 0
    count = len(sent_mail())
    reminder = chase.run(deadline + timedelta(days=15))
    assert reminder.reminders == 1
    assert len(sent_mail()) == count + 1
    assert record(client, status_path)["status"] == "closed"
    assert chase.run(deadline + timedelta(days=90)).checked == 0
    history = [entry["event"] for entry in record(client, status_path)["history"]]
    assert history[-6:] == [
        "claim_follow_up",
        "follow_up_sent",
        "claim_kit",
        "kit_sent",
        "claim_reminder",
        "reminder_sent",
    ]
    assert request_id in follow_up["Subject"] or request_id in follow_up.get_content()


def test_a_request_answered_in_time_is_never_chased(client, sent_mail, env) -> None:  # type: ignore[no-untyped-def]
    _, status_path = sent_request(client, sent_mail)
    deadline = due(client, status_path)
    assert report(client, status_path, "response_received").status_code == 200
    for days in (1, 15, 60):
        summary = chase.run(deadline + timedelta(days=days))
        assert summary.checked == 0
    assert len(letters_to_target(sent_mail)) == 1
    assert record(client, status_path)["status"] == "answered"


def test_info_requested_pauses_the_chase_until_the_supporter_reports_again(
    client, sent_mail, env
) -> None:  # type: ignore[no-untyped-def]
    _, status_path = sent_request(client, sent_mail)
    deadline = due(client, status_path)
    assert report(client, status_path, "info_requested").status_code == 200
    assert chase.run(deadline + timedelta(days=5)).followed_up == 0
    assert report(client, status_path, "info_provided").status_code == 200
    assert chase.run(deadline + timedelta(days=5)).followed_up == 1


def test_refusal_sends_the_kit_at_once_then_the_reminder(client, sent_mail, env) -> None:  # type: ignore[no-untyped-def]
    _, status_path = sent_request(client, sent_mail)
    count = len(sent_mail())
    response = report(client, status_path, "refused")
    assert response.status_code == 200
    assert body(response)["status"] == "kit_sent"
    assert len(sent_mail()) == count + 1
    kit = sent_mail()[-1]
    assert kit["To"].addresses[0].addr_spec == "zoe@example.org"
    today = date.today()
    assert chase.run(today + timedelta(days=13)).reminders == 0
    assert chase.run(today + timedelta(days=14)).reminders == 1
    assert len(letters_to_target(sent_mail)) == 1  # no follow-up after a refusal


def test_extension_within_the_window_moves_the_deadline_once(client, sent_mail, env) -> None:  # type: ignore[no-untyped-def]
    _, status_path = sent_request(client, sent_mail)
    original = due(client, status_path)
    response = report(client, status_path, "extension_notice")
    assert response.status_code == 200
    extended = date.fromisoformat(body(response)["due_date"])
    assert timedelta(days=28) <= extended - original <= timedelta(days=32)
    assert body(response)["extended"] is True
    assert chase.run(original + timedelta(days=1)).followed_up == 0
    twice = report(client, status_path, "extension_notice")
    assert twice.status_code == 409
    assert chase.run(extended + timedelta(days=1)).followed_up == 1


def test_extension_reported_too_late_is_refused(client, sent_mail, env, table_items) -> None:  # type: ignore[no-untyped-def]
    import boto3

    request_id, status_path = sent_request(client, sent_mail)
    # Sent 31 days ago, the deadline passed yesterday (as time would have it).
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    sent = (date.today() - timedelta(days=31)).isoformat() + "T12:00:00+00:00"
    boto3.client("dynamodb").update_item(
        TableName=env["TABLE_NAME"],
        Key={"pk": {"S": f"request#{request_id}"}},
        UpdateExpression="SET due_date = :d, federal_due_date = :d, provincial_due_date = :d, sent_at = :s",
        ExpressionAttributeValues={":d": {"S": yesterday}, ":s": {"S": sent}},
    )
    response = report(client, status_path, "extension_notice")
    assert response.status_code == 409
    assert "avant l'échéance" in body(response)["errors"]["type"]
    assert record(client, status_path)["extended"] is False


def test_bad_reports_change_nothing(client, sent_mail) -> None:  # type: ignore[no-untyped-def]
    _, status_path = sent_request(client, sent_mail)
    before = record(client, status_path)
    assert report(client, status_path, "maybe").status_code == 422
    assert report(client, status_path, "info_provided").status_code == 409
    events = status_path.replace("?token=", "/events?token=")
    assert post_json(client, events[:-4] + "abcd", {"type": "refused"}).status_code == 403
    assert client.http.get(events).status_code in (403, 405)
    assert record(client, status_path) == before


def test_reports_from_html_buttons_redirect_to_the_status_page(client, sent_mail) -> None:  # type: ignore[no-untyped-def]
    request_id, status_path = sent_request(client, sent_mail)
    page = client.http.get(status_path).body.decode()
    assert f'action="{request_id}/events?token=' in page
    assert 'value="response_received"' in page
    events = status_path.replace("?token=", "/events?token=")
    response = client.http.post(
        events,
        headers={"content-type": "application/x-www-form-urlencoded", "accept": "text/html"},
        body="type=info_requested",
    )
    assert response.status_code == 303
    location = headers(response)["location"]
    assert location.startswith(f"../{request_id}?token=")
    shown = client.http.get(f"/requests/{location[3:]}").body.decode()
    assert "Le suivi est suspendu" in shown  # the supporter's language (fr)
    assert 'value="info_provided"' in shown


def test_a_crash_after_some_sends_then_a_rerun_sends_each_stage_once(
    client, sent_mail, env
) -> None:  # type: ignore[no-untyped-def]
    paths = [sent_request(client, sent_mail, f"s{i}@example.org")[1] for i in range(4)]
    deadline = max(due(client, path) for path in paths)
    fault = faults.Fault(when=lambda call: call == 3, make=faults.crash())
    with faults.inject(aws.sesv2(), "SendEmail", fault), pytest.raises(RuntimeError):
        chase.run(deadline + timedelta(days=1))
    assert fault.injected == 1
    chase.run(deadline + timedelta(days=1))
    follow_ups = letters_to_target(sent_mail)[4:]
    assert len(follow_ups) == 4
    assert len({m["In-Reply-To"] for m in follow_ups}) == 4
    assert {record(client, path)["status"] for path in paths} == {"kit_sent"}
    kits = [m for m in sent_mail() if "priv.gc.ca" in m.get_content()]
    assert len(kits) == 4


def test_ses_throttling_leaves_requests_due_for_the_next_run(client, sent_mail, env) -> None:  # type: ignore[no-untyped-def]
    paths = [sent_request(client, sent_mail, f"t{i}@example.org")[1] for i in range(3)]
    deadline = max(due(client, path) for path in paths)
    fault = faults.Fault(
        when=lambda call: call >= 2, make=faults.error("TooManyRequestsException", 429)
    )
    with faults.inject(aws.sesv2(), "SendEmail", fault):
        throttled = chase.run(deadline + timedelta(days=1))
    assert throttled.deferred == 1
    statuses = sorted(record(client, path)["status"] for path in paths)
    assert statuses.count("sent") == 2
    assert statuses.count("overdue") == 1  # follow-up out, its kit throttled
    rerun = chase.run(deadline + timedelta(days=1))
    assert (rerun.followed_up, rerun.kits) == (2, 3)
    assert {record(client, path)["status"] for path in paths} == {"kit_sent"}
    assert len(letters_to_target(sent_mail)) == 3 + 3


def test_the_chase_reads_only_due_requests(client, sent_mail, env) -> None:  # type: ignore[no-untyped-def]
    paths = [sent_request(client, sent_mail, f"r{i}@example.org")[1] for i in range(5)]
    for path in paths[:3]:
        report(client, path, "response_received")
    summary = chase.run(due(client, paths[0]) + timedelta(days=1), dry_run=True)
    assert summary.read.items == 2
    assert len(summary.plan) == 2
    assert len(letters_to_target(sent_mail)) == 5  # dry run sent nothing


def test_stops_before_the_timeout(client, sent_mail, env) -> None:  # type: ignore[no-untyped-def]
    _, path = sent_request(client, sent_mail)
    remaining = iter([100.0, 5.0])  # plenty at the start, then under the margin
    summary = chase.run(due(client, path) + timedelta(days=1), time_left=lambda: next(remaining))
    assert summary.stopped_early and summary.followed_up == 0
    assert record(client, path)["status"] == "sent"


def test_the_scheduled_lambda(client, sent_mail, env) -> None:  # type: ignore[no-untyped-def]
    import boto3

    request_id, path = sent_request(client, sent_mail)
    past = (date.today() - timedelta(days=1)).isoformat()
    boto3.client("dynamodb").update_item(
        TableName=env["TABLE_NAME"],
        Key={"pk": {"S": f"request#{request_id}"}},
        UpdateExpression="SET chase_on = :d, due_date = :d",
        ExpressionAttributeValues={":d": {"S": past}},
    )
    result = client.lambda_.invoke(
        "chase_overdue",
        client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        ),
    )
    assert result.payload["followed_up"] == 1
    assert result.payload["kits"] == 1
    assert record(client, path)["status"] == "kit_sent"


def test_command_line_dry_run_and_real_run(client, sent_mail, aws, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, path = sent_request(client, sent_mail)
    as_of = (due(client, path) + timedelta(days=1)).isoformat()
    env = {**os.environ, **aws_environment(aws), "OUTBOX_DIR": str(tmp_path / "outbox")}
    command = [sys.executable, "manage.py", "chase", "--stage", "local", "--as-of", as_of]
    dry = subprocess.run(
        [*command, "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert dry.returncode == 0, dry.stderr
    assert "(dry run)" in dry.stdout and "follow_up" in dry.stdout
    assert len(letters_to_target(sent_mail)) == 1
    real = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert real.returncode == 0, real.stderr
    assert "follow-ups 1, complaint kits 1" in real.stdout
    assert len(letters_to_target(sent_mail)) == 2
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2  # follow-up and kit
