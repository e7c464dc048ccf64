"""The same journey over real HTTP through `chalice local` (stage local)."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from email import message_from_bytes, policy
from urllib.parse import urlencode, urljoin

import pytest

from tests.integration.helpers import SUPPORTER, addressed_to, link

pytestmark = pytest.mark.slow


def call(url: str, data: bytes | None = None, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        url, data=data, headers=headers, method="POST" if data is not None else "GET"
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def test_journey_over_http_writes_every_email_to_the_outbox(live_stack, aws, sent_mail) -> None:  # type: ignore[no-untyped-def]
    # The live stack is shared by the session: start from an empty outbox.
    shutil.rmtree(live_stack.outbox, ignore_errors=True)
    status, headers, body = call(
        f"{live_stack.api}/requests",
        json.dumps(SUPPORTER).encode(),
        **{"Content-Type": "application/json", "Origin": live_stack.page},
    )
    assert status == 202, body
    assert headers["access-control-allow-origin"] == live_stack.page
    request_id = json.loads(body)["id"]

    confirm = link(sent_mail(at_least=1)[0], "/confirm")
    status, _, page = call(f"{live_stack.api}{confirm}")
    assert status == 200 and b'<form method="post">' in page
    status, headers, _ = call(
        f"{live_stack.api}{confirm}", b"", **{"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 303
    status_url = urljoin(f"{live_stack.api}{confirm}", headers["location"])
    status, _, page = call(status_url)
    assert status == 200
    assert request_id.encode() in page

    # The stream consumer sends the letter and the notice a moment later.
    mail = sent_mail(at_least=3)
    letters = addressed_to(mail, "privacy@clearview.ai")
    assert len(letters) == 1
    deadline = time.monotonic() + 5  # each .eml is written just after SES accepts it
    outbox = sorted(live_stack.outbox.glob("*.eml"))
    while len(outbox) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
        outbox = sorted(live_stack.outbox.glob("*.eml"))
    assert len(outbox) == 3
    parsed = [message_from_bytes(path.read_bytes(), policy=policy.default) for path in outbox]
    assert {m["Message-ID"] for m in parsed} == {m["Message-ID"] for m in mail}
    letter = next(m for m in parsed if m["To"].addresses[0].addr_spec == "privacy@clearview.ai")
    assert letter["Reply-To"].addresses[0].display_name == "Zoë Côté-Lévesque"


def test_plain_form_post_redirects_and_bad_input_gets_a_page(live_stack, aws) -> None:  # type: ignore[no-untyped-def]
    form = {**SUPPORTER, "email": "form@example.org", "language": "en"}
    status, headers, _ = call(
        f"{live_stack.api}/requests",
        urlencode(form).encode(),
        **{"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 303
    assert headers["location"] == f"{live_stack.page}/thanks/"
    status, headers, page = call(
        f"{live_stack.api}/requests",
        urlencode({**form, "email": "nope"}).encode(),
        **{"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 422
    assert headers["content-type"].startswith("text/html")
    assert b"This email address is not valid." in page


def test_preflight_from_the_page_origin(live_stack, aws) -> None:  # type: ignore[no-untyped-def]
    request = urllib.request.Request(
        f"{live_stack.api}/requests",
        method="OPTIONS",
        headers={"Origin": live_stack.page, "Access-Control-Request-Method": "POST"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 204)
        assert response.headers["Access-Control-Allow-Origin"] == live_stack.page
