"""Logs over the whole journey carry no name, address or token (issue 6).

Every log line the app writes while supporters submit (JSON and form),
confirm, open their status page, report each kind of answer, get chased,
bounce, complain and forget, plus refusals (a bad address, a tampered
token), is captured two ways:

- the output of the app logger's own handlers (the Powertools JSON lines and
  Chalice's plain ones) exactly as formatted for CloudWatch, by pointing
  their streams at a buffer for the test; ``capfd`` for anything else that
  reaches stdout or stderr;
- ``caplog`` at DEBUG on every logger, with each record's message, arguments,
  ``extra`` fields and traceback, so a field no formatter prints is seen too.

botocore, boto3, s3transfer and urllib3 are held at WARNING: their DEBUG
output is the HTTP wire dump (request bodies included) that Lambda never
enables; the app does not choose what goes into it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib import chase, journey
from tests.integration.helpers import FORM_HEADERS, body, headers, link, post_json
from tests.integration.helpers import text as mail_text

TARGET = "privacy@clearview.ai"
ACCEPT_JSON = {"accept": "application/json"}
# Wire logs of the AWS SDK and its HTTP library: not enabled in Lambda.
LIBRARY_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")

# Names nobody logs by chance; each supporter takes a different road.
ZEBULON = {
    "first_name": "Zébulon",
    "last_name": "Quisquillé-Marchetti",
    "email": "zebulon.q@example.org",
    "province": "QC",
    "language": "fr",
}
YSOLDE = {
    "first_name": "Ysolde",
    "last_name": "Brzęczyszczykiewicz-Hautecœur",
    "email": "ysolde.b@example.net",
    "province": "ON",
    "language": "en",
}
WENCESLAS = {
    "first_name": "Wenceslas",
    "last_name": "Ökvist-Ravanelli",
    "email": "wenceslas.o@example.com",
    "province": "BC",
    "language": "en",
}
SUPPORTERS = (ZEBULON, YSOLDE, WENCESLAS)


class Captured:
    """Everything logged during the test, as one searchable text."""

    def __init__(self, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
        self.capfd = capfd
        self.caplog = caplog
        self.handlers = io.StringIO()
        self.streams: list[str] = []

    def text(self) -> str:
        out, err = self.capfd.readouterr()
        self.streams += [out, err]
        parts = [self.handlers.getvalue(), *self.streams]
        for line in "\n".join(parts).splitlines():
            # JSON lines escape non-ASCII ("Z\u00e9bulon"): search them decoded too.
            try:
                parts.append(json.dumps(json.loads(line), ensure_ascii=False))
            except ValueError:
                continue
        for record in self.caplog.records:
            parts.append(record.getMessage())
            parts.append(repr(record.args))
            parts.append(repr(vars(record)))  # extra fields included
            if record.exc_info:
                parts.append(logging.Formatter().formatException(record.exc_info))
            if record.stack_info:
                parts.append(record.stack_info)
        return unicodedata.normalize("NFC", "\n".join(parts))


@pytest.fixture
def logs(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, client: Any
) -> Iterator[Captured]:
    """Capture every logger at DEBUG (the libraries' wire logs at WARNING)."""
    from chalicelib.log import logger

    logger()  # the app imported (``client``) and Powertools' logger made
    caplog.set_level(logging.DEBUG)
    for name in LIBRARY_LOGGERS:
        caplog.set_level(logging.WARNING, logger=name)
    captured = Captured(capfd, caplog)
    registry = logging.Logger.manager.loggerDict
    attached: list[logging.Logger] = []
    swapped: list[tuple[logging.StreamHandler[Any], Any]] = []
    for name in sorted(registry):
        item = registry[name]
        if not isinstance(item, logging.Logger) or name.startswith(LIBRARY_LOGGERS):
            continue
        if item.level != logging.NOTSET:
            # Powertools sets INFO on "takeback": lowered for the test.
            caplog.set_level(logging.DEBUG, logger=name)
        if not item.propagate:
            item.addHandler(caplog.handler)
            attached.append(item)
        for handler in item.handlers:
            # Powertools' and Chalice's handlers hold the stdout of the moment
            # they were made (under pytest, maybe a capture since closed):
            # they write to the buffer for the test.
            if type(handler) is logging.StreamHandler:
                with handler.lock or contextlib.nullcontext():
                    swapped.append((handler, handler.stream))
                    handler.stream = captured.handlers
    try:
        yield captured
    finally:
        for handler, stream in swapped:
            with handler.lock or contextlib.nullcontext():
                handler.stream = stream
        for item in attached:
            item.removeHandler(caplog.handler)


# --- the journey --------------------------------------------------------------


def tokens_in(messages: list[EmailMessage], *locations: str) -> set[str]:
    found = set()
    for source in [*(mail_text(message) for message in messages), *locations]:
        found.update(re.findall(r"token=([\w.\-]+)", source))
    return found


def ses_event(
    kind: str, request_id: str | None, sent_as: str, recipients: list[str], **detail: Any
) -> dict[str, Any]:
    """An SES event as the configuration set publishes it to SNS.

    SES hands back the tags the app gave the message (none: not ours).
    """
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    ses_id = f"0100017a-{request_id}-{sent_as}-000000"
    tags = {"ses:configuration-set": ["takeback-local"]}
    if request_id is not None:
        tags |= {"takeback_request": [request_id], "takeback_kind": [sent_as]}
    names = {"zebulon.q@example.org": "Zébulon Quisquillé-Marchetti"}
    event: dict[str, Any] = {
        "eventType": kind,
        "mail": {
            "timestamp": now,
            "source": "requests@takeback.example",
            "sourceArn": "arn:aws:ses:ca-central-1:123456789012:identity/takeback.example",
            "sendingAccountId": "123456789012",
            "messageId": ses_id,
            "destination": recipients,
            "headersTruncated": False,
            "headers": [
                {"name": "From", "value": "Zébulon Quisquillé-Marchetti via Take Back Your Data"},
                {"name": "To", "value": ", ".join(recipients)},
            ],
            "commonHeaders": {
                "from": [
                    "Zébulon Quisquillé-Marchetti via Take Back Your Data <requests@takeback.example>"
                ],
                "replyTo": ["Zébulon Quisquillé-Marchetti <zebulon.q@example.org>"],
                "to": [f"{names.get(address, '')} <{address}>" for address in recipients],
                "messageId": ses_id,
                "subject": "Demande d'accès — Zébulon Quisquillé-Marchetti",
            },
            "tags": tags,
        },
    }
    if kind == "Delivery":
        event["delivery"] = {
            "timestamp": now,
            "processingTimeMillis": 812,
            "recipients": recipients,
            "smtpResponse": "250 2.0.0 OK",
            "reportingMTA": "a8-70.smtp-out.amazonses.com",
        }
    elif kind == "Bounce":
        event["bounce"] = {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": address,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": f"smtp; 550 5.1.1 <{address}>: user unknown",
                }
                for address in recipients
            ],
            "timestamp": now,
            "feedbackId": "0100017a-bounce-feedback",
            "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
        }
    elif kind == "Complaint":
        event["complaint"] = {
            "complainedRecipients": [{"emailAddress": address} for address in recipients],
            "timestamp": now,
            "feedbackId": "0100017a-complaint-feedback",
            "complaintFeedbackType": "abuse",
            "userAgent": "Mail/1.0",
            "arrivalDate": now,
        }
    event.update(detail)
    return event


def scheduled_event(rule: str) -> dict[str, Any]:
    """An EventBridge schedule's event, as Lambda receives it."""
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "ca-central-1",
        "resources": [f"arn:aws:events:ca-central-1:123456789012:rule/takeback-local-{rule}"],
        "detail": {},
    }


def publish(client: Any, event: dict[str, Any]) -> None:
    sns = client.events.generate_sns_event(
        message=json.dumps(event, ensure_ascii=False), subject=""
    )
    client.lambda_.invoke("ses_events", sns)


def request_item(items: list[dict[str, Any]], request_id: str) -> dict[str, Any]:
    [item] = [i for i in items if i["record_type"] == "request" and i["request_id"] == request_id]
    return item


def with_token(path: str, token: str) -> str:
    return path.split("token=", maxsplit=1)[0] + "token=" + token


def token_of(path: str) -> str:
    return path.split("token=")[1]


class Journey:
    """The supporters' roads through the app; collects the tokens it meets."""

    def __init__(self, client: Any, sent_mail: Callable[[], list[EmailMessage]]) -> None:
        self.client = client
        self.sent_mail = sent_mail
        self.locations: list[str] = []  # redirects carry status tokens
        self.crafted: list[str] = []  # tampered tokens are not logged either

    def status_path_of(self, address: str) -> str:
        notices = [m for m in self.sent_mail() if m["To"].addresses[0].addr_spec == address]
        return link(notices[-1], "")

    def tampered(self, path: str) -> str:
        token = token_of(path)
        bad = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
        self.crafted.append(bad)
        return with_token(path, bad)

    def zebulon(self) -> tuple[str, str]:
        """JSON all the way: submit twice, confirm, status, reports."""
        client = self.client
        created = post_json(client, "/requests", ZEBULON)
        assert created.status_code == 202
        request_id = body(created)["id"]
        again = post_json(client, "/requests", {**ZEBULON, "email": ZEBULON["email"].upper()})
        assert body(again)["id"] == request_id  # the duplicate path logs too
        confirm = link(self.sent_mail()[-1], "/confirm")
        assert client.http.get(confirm).status_code == 200
        assert client.http.get(confirm, headers=ACCEPT_JSON).status_code == 200
        assert client.http.post(self.tampered(confirm), headers=ACCEPT_JSON).status_code == 403
        assert client.http.post(confirm, headers=ACCEPT_JSON).status_code == 200
        status = self.status_path_of(ZEBULON["email"])
        assert client.http.get(status).status_code == 200
        assert client.http.get(status, headers=ACCEPT_JSON).status_code == 200
        events = status.replace("?token=", "/events?token=")
        for kind in ("extension_notice", "info_requested", "info_provided"):
            assert post_json(client, events, {"type": kind}).status_code == 200, kind
        assert post_json(client, events, {"type": "extension_notice"}).status_code == 409
        assert post_json(client, events, {"type": "no such thing"}).status_code == 422
        assert client.http.get(self.tampered(status)).status_code == 403
        refused = post_json(client, self.tampered(events), {"type": "refused"})
        assert refused.status_code == 403
        return request_id, status

    def ysolde(self) -> tuple[str, str]:
        """The HTML form: submit, confirm, report an answer."""
        client = self.client
        form = client.http.post("/requests", headers=FORM_HEADERS, body=urlencode(YSOLDE))
        assert form.status_code == 303
        confirm = link(self.sent_mail()[-1], "/confirm")
        confirmed = client.http.post(confirm, headers=FORM_HEADERS, body="")
        assert confirmed.status_code == 303
        self.locations.append(headers(confirmed)["location"])
        status = self.status_path_of(YSOLDE["email"])
        answered = client.http.post(
            status.replace("?token=", "/events?token="),
            headers=FORM_HEADERS,
            body=urlencode({"type": "response_received"}),
        )
        assert answered.status_code == 303
        self.locations.append(headers(answered)["location"])
        return status.split("/")[2].split("?")[0], status

    def wenceslas(self) -> tuple[str, str]:
        """A refusal, which sends the complaint kit at once."""
        request_id = body(post_json(self.client, "/requests", WENCESLAS))["id"]
        confirm = link(self.sent_mail()[-1], "/confirm")
        assert self.client.http.post(confirm, headers=ACCEPT_JSON).status_code == 200
        status = self.status_path_of(WENCESLAS["email"])
        events = status.replace("?token=", "/events?token=")
        assert post_json(self.client, events, {"type": "refused"}).status_code == 200
        return request_id, status

    def refusals(self) -> None:
        """A bad address (JSON and form), a bad name, a bot."""
        client = self.client
        bad = post_json(client, "/requests", {**ZEBULON, "email": "zebulon.q@@example.org"})
        assert bad.status_code == 422 and "email" in body(bad)["errors"]
        form = urlencode({**YSOLDE, "email": "ysolde.b@"})
        assert client.http.post("/requests", headers=FORM_HEADERS, body=form).status_code == 422
        bad_name = post_json(client, "/requests", {**WENCESLAS, "last_name": "Ökvist<script>"})
        assert bad_name.status_code == 422
        bot = {**ZEBULON, "email": "zebulon.bot@example.org", "website": "http://spam.example"}
        assert post_json(client, "/requests", bot).status_code == 202

    def forget(self, status: str, as_json: bool) -> None:
        path = status.replace("?token=", "/forget?token=")
        if as_json:
            assert self.client.http.post(path, headers=ACCEPT_JSON).status_code == 200
        else:
            assert self.client.http.post(path, headers=FORM_HEADERS, body="").status_code == 200
        assert self.client.http.get(status).status_code == 404

    def tokens(self) -> set[str]:
        return tokens_in(self.sent_mail(), *self.locations) | set(self.crafted)


def test_logs_never_carry_names_addresses_or_tokens(
    client: Any,
    sent_mail: Callable[[], list[EmailMessage]],
    table_items: Callable[[], list[dict[str, Any]]],
    env: dict[str, str],
    logs: Captured,
) -> None:
    journey_ = Journey(client, sent_mail)
    zebulon_id, zebulon_status = journey_.zebulon()
    ysolde_id, _ = journey_.ysolde()
    wenceslas_id, wenceslas_status = journey_.wenceslas()
    journey_.refusals()

    # The chase, the day after Zébulon's deadline: follow-up and kit; then
    # each scheduled Lambda once.
    due = date.fromisoformat(str(request_item(table_items(), zebulon_id)["due_date"]))
    assert chase.run(due + timedelta(days=1)).followed_up == 1
    for job in ("retry_queued", "chase_overdue", "purge_expired"):
        client.lambda_.invoke(job, scheduled_event(job))

    # SES events: delivery of the letter, the target's and a supporter's
    # address bouncing, a complaint, and a message nobody knows.
    publish(client, ses_event("Delivery", zebulon_id, "letter", [TARGET]))
    publish(client, ses_event("Bounce", zebulon_id, "follow_up", [TARGET]))
    publish(client, ses_event("Bounce", zebulon_id, "verification", [ZEBULON["email"]]))
    publish(client, ses_event("Bounce", ysolde_id, "sent_notice", [YSOLDE["email"]]))
    publish(client, ses_event("Complaint", wenceslas_id, "kit", [WENCESLAS["email"]]))
    publish(client, ses_event("Delivery", None, "letter", [ZEBULON["email"]]))
    assert request_item(table_items(), zebulon_id).get("letter_bounced_at")

    # Two forget themselves; retention ends for Ysolde's answered request.
    journey_.forget(zebulon_status, as_json=True)
    journey_.forget(wenceslas_status, as_json=False)
    retention = timedelta(days=int(env["RETENTION_DAYS"]))
    assert journey.purge_due(date.today() + retention, 1) == 1

    logged = logs.text()
    assert logged.strip(), "nothing was logged: the test would prove nothing"
    for request_id in (zebulon_id, ysolde_id, wenceslas_id):
        assert request_id in logged, f"request {request_id} never logged: logs lack the request id"
    assert "letter sent" in logged and "SES event" in logged
    tokens = journey_.tokens()
    assert len(tokens) >= 8, tokens
    secrets = forbidden(tokens)
    folded = logged.casefold()
    leaks = sorted({label for label, value in secrets if value.casefold() in folded})
    lines = [line for line in folded.splitlines() if any(v.casefold() in line for _, v in secrets)]
    assert not leaks, f"personal data or tokens in the logs: {leaks}\n" + "\n".join(lines[:5])


def forbidden(tokens: set[str]) -> list[tuple[str, str]]:
    """What must never be logged, with a label that does not repeat it."""
    found: list[tuple[str, str]] = []
    for index, person in enumerate(SUPPORTERS):
        first, last, email = person["first_name"], person["last_name"], person["email"]
        local = email.split("@")[0]
        found += [
            (f"supporter {index} email", email),
            (f"supporter {index} email, percent-encoded", email.replace("@", "%40")),
            (f"supporter {index} email local part", local),
            (f"supporter {index} first name", first),
            (f"supporter {index} last name", last),
            (f"supporter {index} full name", f"{first} {last}"),
        ]
        # The ASCII stretches of each name: a name logged escaped or encoded
        # (JSON, RFC 2047, percent-encoding) still shows these.
        for part in re.findall(r"[A-Za-z]{5,}", f"{first} {last}"):
            found.append((f"supporter {index} name fragment", part))
    for index, token in enumerate(sorted(tokens)):
        found.append((f"token {index}", token))
        found.append((f"token {index} signature", token.rsplit(".", 1)[-1]))
    return found
