"""The supporter's journey through the app (chalice.test.Client + moto server)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from chalicelib.lifecycle import Status
from tests.integration.helpers import (
    SUPPORTER,
    addressed_to,
    body,
    headers,
    link,
    post_form,
    post_json,
    text,
)

TARGET = "privacy@clearview.ai"


def requests_in(items: list[dict[str, object]]) -> list[dict[str, object]]:
    return [item for item in items if item["record_type"] == "request"]


def personal(items: list[dict[str, object]]) -> list[dict[str, object]]:
    """Requests and duplicate locks (rate counters are not about anyone)."""
    return [item for item in items if item["record_type"] in ("request", "email_lock")]


def submit_and_confirm(client, sent_mail, supporter=SUPPORTER):  # type: ignore[no-untyped-def]
    created = post_json(client, "/requests", supporter)
    assert created.status_code == 202
    confirm = link(sent_mail()[-1], "/confirm")
    confirmed = client.http.post(confirm, headers={"accept": "application/json"})
    assert confirmed.status_code == 200
    return body(created)["id"], confirm


def test_health(client) -> None:  # type: ignore[no-untyped-def]
    response = client.http.get("/health")
    assert response.status_code == 200
    assert body(response) == {"status": "ok"}


def test_json_submission_is_stored_and_verification_sent(client, sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    response = post_json(client, "/requests", SUPPORTER)

    assert response.status_code == 202
    reply = body(response)
    assert reply["status"] == "pending_verification"
    [stored] = requests_in(table_items())
    assert stored["request_id"] == reply["id"]
    assert stored["first_name"] == "Zoë"
    assert stored["last_name"] == "Côté-Lévesque"
    assert stored["email"] == "Zoe.Cote@example.com"
    assert stored["province"] == "QC"
    assert stored["consent_updates"] is False
    assert "consent_given_at" not in stored
    assert int(stored["expires_at"]) > 0  # unverified requests expire
    [verification] = sent_mail()
    assert verification["To"].addresses[0].addr_spec == "Zoe.Cote@example.com"
    assert "Confirmez" in verification["Subject"]  # the supporter's language
    assert f"/requests/{reply['id']}/confirm?token=" in text(verification)


def test_consent_is_stored_with_time_and_wording(client, table_items) -> None:  # type: ignore[no-untyped-def]
    post_json(client, "/requests", {**SUPPORTER, "consent_updates": True})
    [stored] = requests_in(table_items())
    assert stored["consent_updates"] is True
    assert str(stored["consent_given_at"]).startswith(str(date.today().year))
    assert stored["consent_wording_version"] == "2026-11-en-fr-2"


def test_form_post_redirects_to_the_thank_you_page(client, table_items) -> None:  # type: ignore[no-untyped-def]
    response = post_form(client, "/requests", {**SUPPORTER, "consent_updates": "on"})
    assert response.status_code == 303
    assert headers(response)["location"] == "http://127.0.0.1:8080/fr/merci/"
    assert requests_in(table_items())[0]["consent_updates"] is True
    english = post_form(
        client, "/requests", {**SUPPORTER, "email": "b@example.org", "language": "en"}
    )
    assert headers(english)["location"] == "http://127.0.0.1:8080/thanks/"


def test_invalid_json_names_every_bad_field(client, table_items, sent_mail) -> None:  # type: ignore[no-untyped-def]
    response = post_json(
        client, "/requests", {"first_name": "", "email": "nope", "province": "XX", "language": "en"}
    )
    assert response.status_code == 422
    errors = body(response)["errors"]
    assert set(errors) == {"first_name", "last_name", "email", "province"}
    assert errors["email"] == "This email address is not valid."
    assert personal(table_items()) == [] and sent_mail() == []


def test_invalid_form_gets_an_html_page_in_the_supporters_language(client) -> None:  # type: ignore[no-untyped-def]
    response = post_form(
        client,
        "/requests",
        {"first_name": "Zoë", "last_name": "", "email": "x", "language": "fr"},
        referer="http://127.0.0.1:8080/fr/",
    )
    assert response.status_code == 422
    assert headers(response)["content-type"].startswith("text/html")
    page = response.body.decode()
    assert '<html lang="fr">' in page
    assert "Veuillez entrer votre nom de famille." in page
    assert "Cette adresse courriel n&#39;est pas valide." in page
    assert 'href="http://127.0.0.1:8080/fr/"' in page


def test_errors_follow_accept_language_when_the_language_field_is_bad(client) -> None:  # type: ignore[no-untyped-def]
    response = post_json(
        client, "/requests", {**SUPPORTER, "language": "xx"}, **{"accept-language": "fr-CA"}
    )
    assert response.status_code == 422
    assert body(response)["errors"] == {"language": "Choisissez le français ou l'anglais."}


def test_malformed_bodies(client, table_items) -> None:  # type: ignore[no-untyped-def]
    headers = {"content-type": "application/json"}
    assert client.http.post("/requests", headers=headers, body="{nope").status_code == 400
    assert client.http.post("/requests", headers=headers, body="[1, 2]").status_code == 400
    assert client.http.post("/requests", headers=headers, body=b"\xff\xfe").status_code == 400
    assert client.http.post("/requests", headers=headers, body="").status_code == 400
    text_plain = client.http.post("/requests", headers={"content-type": "text/plain"}, body="hi")
    assert text_plain.status_code == 415
    assert "body" in body(text_plain)["errors"]
    xml = client.http.post("/requests", headers={"content-type": "application/xml"}, body="<a/>")
    assert xml.status_code == 415
    huge = post_json(client, "/requests", {**SUPPORTER, "padding": "x" * 17000})
    assert huge.status_code == 413
    assert personal(table_items()) == []


def test_form_with_charset_parameter_is_accepted(client) -> None:  # type: ignore[no-untyped-def]
    response = client.http.post(
        "/requests",
        headers={"content-type": "application/x-www-form-urlencoded; charset=UTF-8"},
        body="first_name=Zo%C3%AB&last_name=O%27Brien&email=z%40example.org",
    )
    assert response.status_code == 303


def test_honeypot_looks_like_success_but_stores_and_sends_nothing(
    client, table_items, sent_mail
) -> None:  # type: ignore[no-untyped-def]
    response = post_json(client, "/requests", {**SUPPORTER, "website": "http://spam.example"})
    assert response.status_code == 202
    assert body(response)["status"] == "pending_verification"
    assert personal(table_items()) == []
    assert sent_mail() == []


def test_duplicate_email_returns_the_same_request(client, table_items, sent_mail) -> None:  # type: ignore[no-untyped-def]
    first = body(post_json(client, "/requests", SUPPORTER))
    again = body(post_json(client, "/requests", {**SUPPORTER, "email": "ZOE.COTE@example.com "}))
    assert again["id"] == first["id"]
    assert len(requests_in(table_items())) == 1
    assert len(sent_mail()) == 1


def test_submitting_again_later_resends_the_confirmation_email(
    client, table_items, sent_mail
) -> None:  # type: ignore[no-untyped-def]
    import boto3

    first = body(post_json(client, "/requests", SUPPORTER))
    assert len(sent_mail()) == 1
    # The supporter lost the email and comes back a quarter of an hour later.
    [stored] = requests_in(table_items())
    boto3.client("dynamodb").update_item(
        TableName="takeback-local",
        Key={"pk": {"S": str(stored["pk"])}},
        UpdateExpression="SET created_at = :earlier",
        ExpressionAttributeValues={":earlier": {"S": "2026-01-01T00:00:00+00:00"}},
    )
    with ThreadPoolExecutor(max_workers=5) as pool:  # a double click among them
        again = list(pool.map(lambda _: post_json(client, "/requests", SUPPORTER), range(5)))
    assert {body(response)["id"] for response in again} == {first["id"]}
    assert len(sent_mail()) == 2  # one more, not five
    assert len(requests_in(table_items())) == 1
    # At most two resends in all: anyone can submit someone else's address.
    for resent in (3, 3):
        boto3.client("dynamodb").update_item(
            TableName="takeback-local",
            Key={"pk": {"S": str(stored["pk"])}},
            UpdateExpression="SET verification_resent_at = :earlier",
            ExpressionAttributeValues={":earlier": {"S": "2026-01-01T00:00:00+00:00"}},
        )
        post_json(client, "/requests", SUPPORTER)
        assert len(sent_mail()) == resent
    # The newest link confirms, like the first would have.
    assert client.http.post(link(sent_mail()[-1], "/confirm")).status_code == 303
    assert requests_in(table_items())[0]["status"] == "sent"
    assert len(addressed_to(sent_mail(), TARGET)) == 1


def test_twenty_concurrent_identical_submissions_make_one_request_and_one_letter(
    client, table_items, sent_mail
) -> None:  # type: ignore[no-untyped-def]
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: post_json(client, "/requests", SUPPORTER), range(20)))
    assert {response.status_code for response in responses} == {202}
    ids = {body(response)["id"] for response in responses}
    assert len(ids) == 1
    assert len(requests_in(table_items())) == 1
    confirm = link(sent_mail()[0], "/confirm")
    with ThreadPoolExecutor(max_workers=20) as pool:
        confirms = list(pool.map(lambda _: client.http.post(confirm), range(20)))
    assert {response.status_code for response in confirms} == {303}
    assert len(addressed_to(sent_mail(), TARGET)) == 1


def test_get_confirm_shows_a_button_and_changes_nothing(client, sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    post_json(client, "/requests", SUPPORTER)
    confirm = link(sent_mail()[0], "/confirm")
    for _ in range(3):  # mail scanners prefetch links
        page = client.http.get(confirm)
        assert page.status_code == 200
        assert '<form method="post">' in page.body.decode()
    assert requests_in(table_items())[0]["status"] == "pending_verification"
    assert addressed_to(sent_mail(), TARGET) == []


def test_post_confirm_sends_the_letter_once(client, sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    request_id, confirm = submit_and_confirm(client, sent_mail)
    [stored] = requests_in(table_items())
    assert stored["status"] == "sent"
    assert "expires_at" not in stored  # verified requests no longer expire in 7 days
    assert [event["event"] for event in stored["history"]] == [
        "verify",
        "claim_send",
        "letter_sent",
    ]
    again = client.http.post(confirm, headers={"accept": "text/html"})
    assert again.status_code == 303
    # Relative, so it works under API Gateway's stage prefix too.
    assert headers(again)["location"].startswith(f"../{request_id}?token=")
    assert len(addressed_to(sent_mail(), TARGET)) == 1
    assert len(sent_mail()) == 3  # verification, letter, confirmation to the supporter
    page = client.http.get(confirm)
    assert "Déjà confirmée" in page.body.decode()
    assert request_id in page.body.decode()


def test_the_letter(client, sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    submit_and_confirm(client, sent_mail)
    [letter] = addressed_to(sent_mail(), TARGET)
    [stored] = requests_in(table_items())

    sender = letter["From"].addresses[0]
    assert sender.display_name == "Zoë Côté-Lévesque via Take Back Your Data"
    assert sender.addr_spec == "requests@takeback.example"
    assert letter["Reply-To"].addresses[0].addr_spec == "Zoe.Cote@example.com"
    assert letter["Reply-To"].addresses[0].display_name == "Zoë Côté-Lévesque"
    assert letter["Cc"].addresses[0].addr_spec == "Zoe.Cote@example.com"
    assert letter["Message-ID"] == stored["message_id"]
    assert stored["ses_message_id"]
    letter_text = " ".join(text(letter).split())
    letter_text = letter_text.replace("\u00a0", " ")
    assert "Zoë Côté-Lévesque" in letter_text and "Zoe.Cote@example.com" in letter_text
    sent_on = date.fromisoformat(str(stored["sent_at"])[:10])
    due = date.fromisoformat(str(stored["due_date"]))
    assert f"{sent_on.day} {sent_on:%B %Y}" in letter_text
    assert f"{due.day} {due:%B %Y}" in letter_text
    for citation in ("8(3)", "8(5)", "8(4)", "8(6)", "8(8)", "4.9", "4.3.8", "4.5.3"):
        assert citation in letter_text, citation
    for thing in ("source URL", "biometric", "disclosed", "delete"):
        assert thing in letter_text, thing
    assert "CQLR c P-39.1" in letter_text  # Quebec supporter: the provincial law too


def test_confirmation_to_the_supporter_has_status_link_and_deadline(
    client, sent_mail, table_items
) -> None:  # type: ignore[no-untyped-def]
    submit_and_confirm(client, sent_mail)
    _verification, notice = addressed_to(sent_mail(), "Zoe.Cote@example.com")
    [stored] = requests_in(table_items())
    due = date.fromisoformat(str(stored["due_date"]))
    months = "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"
    assert f"{due.day} {months.split()[due.month - 1]} {due.year}" in " ".join(text(notice).split())
    status = re.search(r"https?://\S+(/requests/\S+\?token=\S+)", text(notice))
    assert status
    page = client.http.get(status.group(1), headers={"accept": "application/json"})
    assert page.status_code == 200
    reply = body(page)
    assert reply["id"] == stored["request_id"]
    assert reply["status"] == "sent"
    assert reply["sent_at"] == stored["sent_at"]
    assert reply["due_date"] == stored["due_date"]
    assert reply["extended"] is False
    html = client.http.get(status.group(1)).body.decode()
    assert f'datetime="{stored["due_date"]}"' in html
    assert '<html lang="fr">' in html


def test_english_supporter_without_province(client, sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    supporter = {"first_name": "Nguyễn Thị", "last_name": "Minh Khai", "email": "minh@example.org"}
    submit_and_confirm(client, sent_mail, supporter)
    [letter] = addressed_to(sent_mail(), TARGET)
    assert letter["Reply-To"].addresses[0].display_name == "Nguyễn Thị Minh Khai"
    assert "Quebec" not in text(letter) and "CQLR" not in text(letter)
    verification = addressed_to(sent_mail(), "minh@example.org")[0]
    assert "Confirm" in verification["Subject"]
    [stored] = requests_in(table_items())
    assert "provincial_due_date" not in stored
    assert stored["due_date"] == stored["federal_due_date"]


def test_tampered_and_misused_tokens_are_refused(client, sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    post_json(client, "/requests", SUPPORTER)
    confirm = link(sent_mail()[0], "/confirm")
    tampered = confirm[:-3] + ("aaa" if not confirm.endswith("aaa") else "bbb")
    assert client.http.get(tampered).status_code == 403
    assert client.http.post(tampered).status_code == 403
    no_token = confirm.split("?")[0]
    assert client.http.post(no_token).status_code == 403
    other = body(post_json(client, "/requests", {**SUPPORTER, "email": "other@example.org"}))["id"]
    token = confirm.split("token=")[1]
    assert client.http.post(f"/requests/{other}/confirm?token={token}").status_code == 403
    # A confirmation token does not open the status page, and vice versa.
    request_id = confirm.split("/")[2]
    assert client.http.get(f"/requests/{request_id}?token={token}").status_code == 403
    refused = client.http.get(tampered, headers={"accept-language": "fr"})
    assert "Ce lien ne fonctionne pas" in refused.body.decode()
    assert all(item["status"] == "pending_verification" for item in requests_in(table_items()))
    assert addressed_to(sent_mail(), TARGET) == []


def test_expired_confirmation_token_is_refused(client, sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    from itsdangerous import URLSafeTimedSerializer

    from tests.conftest import TEST_SECRET

    class EightDaysAgo(URLSafeTimedSerializer):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)

            class OldSigner(self.signer):  # type: ignore[name-defined,misc]
                def get_timestamp(self) -> int:
                    import time

                    return int(time.time()) - 8 * 86400

            self.signer = OldSigner

    request_id = body(post_json(client, "/requests", SUPPORTER))["id"]
    old = EightDaysAgo(TEST_SECRET, salt="takeback.confirm").dumps(request_id)
    response = client.http.post(f"/requests/{request_id}/confirm?token={old}")
    assert response.status_code == 403
    assert requests_in(table_items())[0]["status"] == "pending_verification"
    fresh = link(sent_mail()[0], "/confirm")
    assert client.http.post(fresh).status_code == 303


def test_unknown_request_with_a_valid_token_is_404(client, sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    import boto3

    post_json(client, "/requests", SUPPORTER)
    confirm = link(sent_mail()[0], "/confirm")
    [stored] = requests_in(table_items())
    boto3.client("dynamodb").delete_item(
        TableName="takeback-local", Key={"pk": {"S": str(stored["pk"])}}
    )
    assert client.http.get(confirm).status_code == 404
    assert client.http.post(confirm, headers={"accept": "application/json"}).status_code == 404


def test_status_page_language_switch_keeps_the_token(client, sent_mail) -> None:  # type: ignore[no-untyped-def]
    post_json(client, "/requests", SUPPORTER)
    confirm = link(sent_mail()[0], "/confirm")
    page = client.http.get(confirm).body.decode()
    switch = re.search(r'href="\?([^"]+)" lang="en"', page)
    assert switch and "token=" in switch.group(1)
    english = client.http.get(confirm.split("?")[0] + "?" + switch.group(1).replace("&amp;", "&"))
    assert english.status_code == 200
    assert '<html lang="en">' in english.body.decode()


def test_cors_allow_list(client) -> None:  # type: ignore[no-untyped-def]
    allowed = post_json(client, "/requests", SUPPORTER, origin="http://127.0.0.1:8080")
    assert headers(allowed)["access-control-allow-origin"] == "http://127.0.0.1:8080"
    other = post_json(
        client, "/requests", {**SUPPORTER, "email": "x@example.org"}, origin="https://evil.example"
    )
    assert "access-control-allow-origin" not in headers(other)
    preflight = client.http.request(
        "OPTIONS",
        "/requests",
        headers={"origin": "http://127.0.0.1:8080", "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 204
    assert "POST" in headers(preflight)["access-control-allow-methods"]
    refused = client.http.request(
        "OPTIONS", "/requests", headers={"origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in headers(refused)


def test_dynamodb_down_gives_503_and_nothing_is_sent(client, sent_mail, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from chalicelib import aws
    from tools.local_stack import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{free_port()}")
    aws.dynamodb.cache_clear()
    response = post_json(client, "/requests", SUPPORTER)
    assert response.status_code == 503
    assert headers(response)["retry-after"]
    assert sent_mail() == []
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
    aws.dynamodb.cache_clear()


def test_status_is_reported_in_the_record(client, sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    submit_and_confirm(client, sent_mail)
    assert requests_in(table_items())[0]["status"] == Status.SENT.value


def test_pages_escape_what_they_show(client) -> None:  # type: ignore[no-untyped-def]
    response = post_form(
        client,
        "/requests",
        {"first_name": "<b>x</b>", "last_name": "Côté", "email": "z@example.org"},
        referer='http://127.0.0.1:8080/"><script>alert(1)</script>',
    )
    page = response.body.decode()
    assert response.status_code == 422
    assert "<script>" not in page and "<b>" not in page


def test_without_verification_the_letter_goes_at_once(make_client, sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    client = make_client(VERIFICATION_REQUIRED="false")
    response = post_json(client, "/requests", SUPPORTER)
    assert response.status_code == 202
    # Verified and queued by the API; the stream consumer sent the letter.
    assert body(response)["status"] == "queued"
    assert len(addressed_to(sent_mail(), TARGET)) == 1
    assert not any("/confirm?token=" in text(m) for m in sent_mail())
