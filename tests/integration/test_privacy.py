"""SES events, abuse limits, CORS, forgetting and retention (issue 6)."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import boto3
import pytest

from chalicelib import journey
from tests.integration.helpers import (
    SUPPORTER,
    addressed_to,
    body,
    headers,
    link,
    post_form,
    post_json,
)

TARGET = "privacy@clearview.ai"


def sent_request(client, sent_mail, email: str = "zoe@example.org"):  # type: ignore[no-untyped-def]
    before = len(sent_mail())
    request_id = body(post_json(client, "/requests", {**SUPPORTER, "email": email}))["id"]
    client.http.post(link(sent_mail()[before], "/confirm"))
    return request_id, link(sent_mail()[-1], "")


def item(table_items, request_id: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return next(i for i in table_items() if i.get("pk") == f"request#{request_id}")


def ses_event(client, event_type: str, stored, kind: str = "letter", **detail: object):  # type: ignore[no-untyped-def]
    """An SES event about the request's ``kind`` of message, tagged as the app sent it."""
    tags = {
        "ses:configuration-set": ["takeback-local"],
        "takeback_request": [stored["request_id"]],
        "takeback_kind": [kind],
    }
    ses_mail = {"messageId": stored["ses_message_id"], "destination": [], "tags": tags}
    message = {"eventType": event_type, "mail": ses_mail, **detail}
    event = client.events.generate_sns_event(message=json.dumps(message), subject="")
    return client.lambda_.invoke("ses_events", event).payload


# --- SES events ---------------------------------------------------------------


def test_delivery_is_recorded_and_the_deadline_counts_from_it(
    client, sent_mail, table_items
) -> None:  # type: ignore[no-untyped-def]
    request_id, _ = sent_request(client, sent_mail)
    stored = item(table_items, request_id)
    tomorrow = date.fromisoformat(stored["sent_at"][:10]) + timedelta(days=5)
    outcome = ses_event(
        client,
        "Delivery",
        stored,
        delivery={"timestamp": f"{tomorrow.isoformat()}T09:00:00.000Z", "recipients": [TARGET]},
    )
    assert outcome == {"outcome": "delivered: deadline counted from delivery"}
    updated = item(table_items, request_id)
    assert updated["delivered_at"].startswith(tomorrow.isoformat())
    moved = date.fromisoformat(updated["due_date"]) - date.fromisoformat(stored["due_date"])
    assert moved >= timedelta(days=3)  # five days later, give or take a holiday
    assert updated["chase_on"] > stored["chase_on"]


def test_a_permanent_bounce_of_the_supporter_stops_all_mail_to_them(
    client, sent_mail, table_items, env
) -> None:  # type: ignore[no-untyped-def]
    from chalicelib import chase

    request_id, _ = sent_request(client, sent_mail)
    stored = item(table_items, request_id)
    bounce = {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "zoe@example.org"}]}
    assert ses_event(client, "Bounce", stored, bounce=bounce) == {"outcome": "supporter suppressed"}
    assert "supporter_bounced_at" in item(table_items, request_id)
    count = len(sent_mail())
    chase.run(date.fromisoformat(stored["due_date"]) + timedelta(days=1))
    # The organisation still gets its follow-up; the supporter gets nothing.
    assert len(sent_mail()) == count + 1
    assert addressed_to(sent_mail()[count:], TARGET)


def test_a_bounce_of_the_target_marks_the_letter_undelivered(
    client, sent_mail, table_items, caplog
) -> None:  # type: ignore[no-untyped-def]
    request_id, _ = sent_request(client, sent_mail)
    stored = item(table_items, request_id)
    bounce = {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": TARGET}]}
    assert ses_event(client, "Bounce", stored, bounce=bounce) == {"outcome": "target bounced"}
    assert "letter_bounced_at" in item(table_items, request_id)
    assert any(r.levelname == "ERROR" and "target" in r.getMessage() for r in caplog.records)


def test_a_complaint_suppresses_the_address(client, sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    request_id, _ = sent_request(client, sent_mail)
    stored = item(table_items, request_id)
    complaint = {"complainedRecipients": [{"emailAddress": "zoe@example.org"}]}
    assert ses_event(client, "Complaint", stored, complaint=complaint) == {"outcome": "suppressed"}
    suppressions = [i for i in table_items() if i["record_type"] == "suppression"]
    assert len(suppressions) == 1 and "zoe" not in json.dumps(suppressions, default=str)


def test_a_suppressed_address_may_submit_again_but_is_never_mailed(
    client, sent_mail, table_items
) -> None:  # type: ignore[no-untyped-def]
    request_id, status_path = sent_request(client, sent_mail)
    complaint = {"complainedRecipients": [{"emailAddress": "zoe@example.org"}]}
    ses_event(client, "Complaint", item(table_items, request_id), complaint=complaint)
    client.http.post(status_path.replace("?token=", "/forget?token="))  # frees the address
    before = len(sent_mail())
    again = post_json(client, "/requests", {**SUPPORTER, "email": "zoe@example.org"})
    assert again.status_code == 202
    stored = item(table_items, body(again)["id"])
    assert stored["status"] == "pending_verification"
    assert "mail_queue" not in stored and "retry_at" not in stored  # nothing left to send
    assert len(sent_mail()) == before
    # A new address is still mailed at once (its suppression check passes).
    assert (
        post_json(client, "/requests", {**SUPPORTER, "email": "new@example.org"}).status_code == 202
    )
    assert addressed_to(sent_mail(), "new@example.org")


def test_no_sent_notice_when_the_verification_email_bounced(client, sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    request_id = body(post_json(client, "/requests", SUPPORTER))["id"]
    confirm = link(sent_mail()[0], "/confirm")
    bounce = {
        "bounceType": "Permanent",
        "bouncedRecipients": [{"emailAddress": SUPPORTER["email"]}],
    }
    stored = {"request_id": request_id, "ses_message_id": "0100-verification"}
    assert ses_event(client, "Bounce", stored, "verification", bounce=bounce) == {
        "outcome": "supporter suppressed"
    }
    # A forwarded link still confirms: the letter goes, nothing more to the address.
    assert client.http.post(confirm).status_code == 303
    assert item(table_items, request_id)["status"] == "sent"
    assert len(addressed_to(sent_mail(), TARGET)) == 1
    assert len(sent_mail()) == 2  # the verification and the letter: no sent notice


def test_without_verification_a_suppressed_supporter_still_gets_the_letter_sent(
    make_client, sent_mail, table_items
) -> None:  # type: ignore[no-untyped-def]
    client = make_client(VERIFICATION_REQUIRED="false")
    first = body(post_json(client, "/requests", SUPPORTER))["id"]
    complaint = {"complainedRecipients": [{"emailAddress": "zoe.cote@example.com"}]}
    assert ses_event(client, "Complaint", item(table_items, first), complaint=complaint) == {
        "outcome": "suppressed"
    }
    status = link(sent_mail()[-1], "")
    client.http.post(status.replace("?token=", "/forget?token="))
    before = len(sent_mail())
    again = body(post_json(client, "/requests", SUPPORTER))["id"]
    stored = item(table_items, again)
    assert stored["status"] == "sent" and stored["mail_suppressed"] is True
    [letter] = sent_mail()[before:]  # the letter only: no notice to the supporter
    assert letter["To"].addresses[0].addr_spec == TARGET
    assert letter["Cc"] is None  # no copy to the suppressed address
    assert "zoe.cote@example.com" in str(letter["Reply-To"]).lower()


def test_an_address_no_header_can_carry_is_a_permanent_mail_error(env) -> None:  # type: ignore[no-untyped-def]
    from chalicelib import mail

    # Such addresses are refused at the form; one stored before that rule
    # must fail its send for good, not stop the job that meets it.
    outgoing = mail.Outgoing(
        sender=mail.Mailbox("requests@takeback.example"),
        to=(mail.Mailbox("josé@example.org", "José"),),
        subject="x",
        body="x\n",
    )
    with pytest.raises(mail.MailError) as raised:
        mail.send(outgoing)
    assert raised.value.code == "InvalidAddress" and not raised.value.transient


def test_sent_mail_is_tagged_with_its_request_for_ses_events(client, sent_mail) -> None:  # type: ignore[no-untyped-def]
    from chalicelib import aws

    tags: list[dict[str, str]] = []

    def observe(params: dict, **_: object) -> None:  # type: ignore[type-arg]
        tags.append({tag["Name"]: tag["Value"] for tag in params.get("EmailTags", [])})

    ses = aws.sesv2()
    ses.meta.events.register("provide-client-params.sesv2.SendEmail", observe)
    try:
        request_id, _ = sent_request(client, sent_mail)
    finally:
        ses.meta.events.unregister("provide-client-params.sesv2.SendEmail", observe)
    assert tags == [
        {"takeback_request": request_id, "takeback_kind": kind}
        for kind in ("verification", "letter", "sent_notice")
    ]


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        json.dumps([1, 2]),
        json.dumps({"eventType": "Delivery"}),
        json.dumps({"eventType": "Delivery", "mail": {"messageId": "unknown-id"}}),
        json.dumps({"eventType": "Delivery", "mail": {"messageId": "x", "tags": {"a": ["b"]}}}),
        json.dumps(
            {
                "eventType": "Delivery",
                "mail": {
                    "messageId": "x",
                    "tags": {"takeback_request": ["no-such"], "takeback_kind": ["letter"]},
                },
            }
        ),
        json.dumps({"eventType": "Bounce", "mail": {"messageId": "x"}, "bounce": None}),
    ],
)
def test_unknown_or_malformed_events_are_ignored_safely(client, message: str) -> None:  # type: ignore[no-untyped-def]
    event = client.events.generate_sns_event(message=message, subject="")
    assert client.lambda_.invoke("ses_events", event).payload["outcome"].startswith("ignored")


# --- abuse ----------------------------------------------------------------------


def test_rate_limit_per_ip_gives_429_with_retry_after(make_client, table_items) -> None:  # type: ignore[no-untyped-def]
    client = make_client(RATE_LIMIT_PER_IP="3")
    codes = [
        post_json(client, "/requests", {**SUPPORTER, "email": f"p{i}@example.org"}).status_code
        for i in range(5)
    ]
    assert codes == [202, 202, 202, 429, 429]
    response = post_json(client, "/requests", {**SUPPORTER, "email": "late@example.org"})
    assert 0 < int(headers(response)["retry-after"]) <= 3600
    assert "body" in body(response)["errors"]
    assert len([i for i in table_items() if i["record_type"] == "request"]) == 3


def test_bad_input_counts_against_the_ip_limit_too(make_client, table_items) -> None:  # type: ignore[no-untyped-def]
    client = make_client(RATE_LIMIT_PER_IP="3")
    codes = [
        client.http.post(
            "/requests", headers={"content-type": "application/json"}, body=b"{"
        ).status_code
        for _ in range(3)
    ]
    assert codes == [400, 400, 400]
    late = post_json(client, "/requests", {**SUPPORTER, "email": "valid@example.org"})
    assert late.status_code == 429 and "body" in body(late)["errors"]
    assert [i for i in table_items() if i["record_type"] == "request"] == []


def test_rate_limit_per_email(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(RATE_LIMIT_PER_EMAIL="2")
    codes = [post_json(client, "/requests", SUPPORTER).status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    french = post_form(client, "/requests", SUPPORTER)
    assert french.status_code == 429
    assert "Trop d&#39;envois pour cette adresse" in french.body.decode()


def test_the_local_stage_allows_hundreds_of_submissions_a_minute(client) -> None:  # type: ignore[no-untyped-def]
    codes = {
        post_json(client, "/requests", {**SUPPORTER, "email": f"many{i}@example.org"}).status_code
        for i in range(200)
    }
    assert codes == {202}


class _Verifier(BaseHTTPRequestHandler):
    """A fake Turnstile siteverify endpoint on 127.0.0.1."""

    calls = 0

    def do_POST(self) -> None:
        type(self).calls += 1
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        ok = form.get("secret") == ["captcha-secret"] and form.get("response") == ["good-token"]
        payload = json.dumps({"success": ok}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def verifier():  # type: ignore[no-untyped-def]
    server = HTTPServer(("127.0.0.1", 0), _Verifier)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/siteverify"
    server.shutdown()


@pytest.fixture
def with_turnstile(make_client, verifier):  # type: ignore[no-untyped-def]
    """``with_turnstile(**settings)``: a client whose stage checks Turnstile tokens."""
    boto3.client("ssm").put_parameter(
        Name="/takeback/local/captcha-secret", Value="captcha-secret", Type="SecureString"
    )
    _Verifier.calls = 0

    def make(**overrides: str):  # type: ignore[no-untyped-def]
        return make_client(
            CAPTCHA_PROVIDER="turnstile",
            CAPTCHA_SECRET_PARAM="/takeback/local/captcha-secret",
            CAPTCHA_VERIFY_URL=verifier,
            **overrides,
        )

    return make


def test_captcha_is_verified_server_side(with_turnstile, table_items) -> None:  # type: ignore[no-untyped-def]
    client = with_turnstile()
    missing = post_json(client, "/requests", SUPPORTER)
    assert missing.status_code == 422 and "captcha" in body(missing)["errors"]
    bad = post_json(client, "/requests", {**SUPPORTER, "cf-turnstile-response": "bad"})
    assert bad.status_code == 422
    assert [i for i in table_items() if i["record_type"] == "request"] == []
    good = post_json(client, "/requests", {**SUPPORTER, "cf-turnstile-response": "good-token"})
    assert good.status_code == 202


def test_a_blocked_ip_costs_no_call_to_the_captcha_provider(with_turnstile) -> None:  # type: ignore[no-untyped-def]
    client = with_turnstile(RATE_LIMIT_PER_IP="2")
    codes = [
        post_json(
            client,
            "/requests",
            {**SUPPORTER, "email": f"c{i}@example.org", "cf-turnstile-response": "good-token"},
        ).status_code
        for i in range(4)
    ]
    assert codes == [202, 202, 429, 429]
    assert _Verifier.calls == 2


def test_captcha_verifier_down_is_a_503(make_client) -> None:  # type: ignore[no-untyped-def]
    from tools.local_stack import free_port

    boto3.client("ssm").put_parameter(
        Name="/takeback/local/captcha-secret", Value="s", Type="SecureString", Overwrite=True
    )
    client = make_client(
        CAPTCHA_PROVIDER="hcaptcha",
        CAPTCHA_SECRET_PARAM="/takeback/local/captcha-secret",
        CAPTCHA_VERIFY_URL=f"http://127.0.0.1:{free_port()}/siteverify",
    )
    response = post_json(client, "/requests", {**SUPPORTER, "h-captcha-response": "x"})
    assert response.status_code == 503 and headers(response)["retry-after"]


def test_cors_allows_several_origins_per_stage(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(ALLOWED_ORIGINS="https://a.example,https://b.example")
    for origin in ("https://a.example", "https://b.example"):
        response = post_json(
            client, "/requests", {**SUPPORTER, "email": f"{origin[8]}@example.org"}, origin=origin
        )
        assert headers(response)["access-control-allow-origin"] == origin
    other = post_json(client, "/requests", SUPPORTER, origin="http://127.0.0.1:8080")
    assert "access-control-allow-origin" not in headers(other)


# --- the supporter's privacy ---------------------------------------------------


def test_forget_leaves_no_trace_of_the_email_or_name(client, sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    request_id, status_path = sent_request(client, sent_mail)
    forget = status_path.replace("?token=", "/forget?token=")
    page = client.http.post(forget, headers={"accept-language": "fr"})
    assert page.status_code == 200
    assert "Vos données ont été supprimées" in page.body.decode()
    everything = json.dumps(table_items(), default=str).lower()
    for trace in ("zoe@example.org", "zoë", "côté", "lévesque", "zoe.cote"):
        assert trace not in everything, trace
    stored = item(table_items, request_id)
    assert stored["status"] == "forgotten" and stored["forgotten_reason"] == "supporter"
    assert stored["province"] == "QC" and stored["sent_at"]  # anonymous statistics stay
    assert [i for i in table_items() if i["record_type"] == "email_lock"] == []
    assert client.http.get(status_path).status_code == 404
    assert client.http.post(forget).status_code == 404
    # The address is free again: a new request can start.
    assert (
        post_json(client, "/requests", {**SUPPORTER, "email": "zoe@example.org"}).status_code == 202
    )


def test_withdrawing_consent_stops_news_and_keeps_the_request(
    client, sent_mail, table_items
) -> None:  # type: ignore[no-untyped-def]
    request_id = body(post_json(client, "/requests", {**SUPPORTER, "consent_updates": True}))["id"]
    client.http.post(link(sent_mail()[0], "/confirm"))
    status_path = link(sent_mail()[-1], "")
    assert item(table_items, request_id)["consent_updates"] is True
    page = client.http.get(status_path, headers={"accept-language": "fr"}).body.decode()
    assert "data-withdraw-consent" in page and "Ne plus recevoir de nouvelles" in page
    withdraw = status_path.replace("?token=", "/withdraw-consent?token=")
    done = client.http.post(withdraw)
    assert done.status_code == 303
    assert headers(done)["location"].startswith(f"../{request_id}?token=")
    assert "notice=consent_withdrawn" in headers(done)["location"]
    stored = item(table_items, request_id)
    assert stored["consent_updates"] is False and stored["consent_withdrawn_at"]
    assert stored["status"] == "sent" and stored["email"]  # the request goes on
    after = client.http.get(status_path).body.decode()
    assert "data-withdraw-consent" not in after
    again = post_json(client, withdraw, {})
    assert again.status_code == 200 and body(again) == {"id": request_id, "consent_updates": False}
    # Only with the status link: the confirmation link does not open it.
    confirm = link(sent_mail()[0], "/confirm").replace(
        "/confirm?token=", "/withdraw-consent?token="
    )
    assert client.http.post(confirm).status_code == 403


def test_organisers_withdraw_consent_for_a_written_request(
    client, sent_mail, table_items, aws
) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    from tools.local_stack import ROOT, aws_environment

    consenting = {**SUPPORTER, "email": "written@example.org", "consent_updates": "on"}
    request_id = body(post_json(client, "/requests", consenting))["id"]
    assert item(table_items, request_id)["consent_updates"] is True
    env = {**os.environ, **aws_environment(aws)}
    command = [sys.executable, "manage.py", "withdraw-consent", "--stage", "local"]
    done = subprocess.run(
        [*command, "--email", "Written@Example.org"], cwd=ROOT, env=env, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"request {request_id}: consent_updates is now False" in done.stdout
    assert "written@example.org" not in done.stdout + done.stderr.lower()  # not logged
    assert item(table_items, request_id)["consent_updates"] is False
    unknown = subprocess.run(
        [*command, "--email", "nobody@example.org"], cwd=ROOT, env=env, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    assert unknown.returncode == 1 and "no open request" in unknown.stdout


def test_forget_before_confirmation_from_a_json_client(client, sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    request_id = body(post_json(client, "/requests", SUPPORTER))["id"]
    confirm = link(sent_mail()[0], "/confirm")
    status_link = confirm.replace("/confirm?token=", "?token=")
    # The confirmation token does not open the forget route.
    assert client.http.post(status_link.replace("?token=", "/forget?token=")).status_code == 403
    assert item(table_items, request_id)["status"] == "pending_verification"


def test_retention_purges_personal_data_of_finished_requests(
    client, sent_mail, table_items, env
) -> None:  # type: ignore[no-untyped-def]
    request_id, status_path = sent_request(client, sent_mail)
    kept_id, _ = sent_request(client, sent_mail, "kept@example.org")
    events = status_path.replace("?token=", "/events?token=")
    assert post_json(client, events, {"type": "response_received"}).status_code == 200
    answered = item(table_items, request_id)
    purge_on = date.fromisoformat(answered["purge_on"])
    assert purge_on - date.today() == timedelta(days=210)
    assert journey.purge_due(purge_on - timedelta(days=1), 400) == 0
    assert journey.purge_due(purge_on, 400) == 1
    purged = item(table_items, request_id)
    assert purged["status"] == "forgotten" and purged["forgotten_reason"] == "retention"
    assert "email" not in purged and "first_name" not in purged
    assert item(table_items, kept_id)["email"] == "kept@example.org"  # still open
    assert journey.purge_due(purge_on, 400) == 0


def test_the_purge_lambda_runs(client) -> None:  # type: ignore[no-untyped-def]
    result = client.lambda_.invoke(
        "purge_expired",
        client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        ),
    )
    assert result.payload == {"purged": 0}


def test_unverified_requests_expire_after_seven_days(client, table_items) -> None:  # type: ignore[no-untyped-def]
    import time

    request_id = body(post_json(client, "/requests", SUPPORTER))["id"]
    stored = item(table_items, request_id)
    assert abs(int(stored["expires_at"]) - (time.time() + 7 * 86400)) < 120
    lock = next(i for i in table_items() if i["record_type"] == "email_lock")
    assert lock["expires_at"] == stored["expires_at"]


@pytest.mark.filterwarnings("ignore:IAMAuthorizer is not a supported in local mode")
def test_admin_stats_is_open_locally_and_closed_elsewhere_without_iam(
    client, sent_mail, make_client
) -> None:  # type: ignore[no-untyped-def]
    sent_request(client, sent_mail)
    figures = client.http.get("/admin/stats")
    assert figures.status_code == 200
    text = json.dumps(body(figures))
    assert "zoe@example.org" not in text and "Zoë" not in text
    assert body(figures)["compliance"]["sent"] == 1
    assert body(figures)["by_province"] == {"QC": 1}
    closed = make_client(STAGE="dev").http.get("/admin/stats")
    assert closed.status_code == 403
