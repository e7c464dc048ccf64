"""The status page's buttons post to URLs that work as they stand (chalice local)."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable

import pytest

from tests.browser.conftest import OpenTab, reload_until_sent
from tests.conftest import LiveStack

pytestmark = pytest.mark.browser

TARGET = "privacy@clearview.ai"


def submit(stack: LiveStack, email: str, consent: bool = False) -> None:
    data = {
        "first_name": "Zoë",
        "last_name": "Côté",
        "email": email,
        "language": "en",
        "consent_updates": consent,
    }
    request = urllib.request.Request(
        f"{stack.api}/requests",
        data=json.dumps(data).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202


def confirm_in_browser(
    stack: LiveStack,
    open_tab: OpenTab,
    sent_mail: Callable[..., list],
    csp: bool = True,  # type: ignore[type-arg]
) -> object:
    [verification] = sent_mail(at_least=1)
    link = re.search(r"https?://\S+/confirm\?token=\S+", verification.get_content())
    assert link
    tab = open_tab(link.group(0), csp=csp)
    tab.page.get_by_role("button", name="Confirm and send my request").click()
    tab.page.get_by_text("Thank you. Your address is confirmed.").wait_for()
    # Once the letter is out, the supporter reloads and the report buttons are there.
    reload_until_sent(tab.page)
    tab.page.get_by_text("Sent to the organisation.").wait_for()
    return tab


def test_report_buttons_record_what_happened(
    stack: LiveStack,
    open_tab: OpenTab,
    sent_mail: Callable[..., list],
    table_items: Callable[[], list],
    check_accessibility: Callable[..., None],
    screenshot: Callable[..., object],  # type: ignore[type-arg]
) -> None:
    submit(stack, "buttons@example.org", consent=True)  # every section, for axe
    # CSP bypassed here only so that axe-core can be injected.
    tab = confirm_in_browser(stack, open_tab, sent_mail, csp=False)
    page = tab.page  # type: ignore[attr-defined]
    assert page.url.startswith(f"{stack.api}/requests/")
    check_accessibility(page)
    screenshot(page, "api-status-buttons-en")
    page.get_by_role("button", name="It asked me for a photo, ID or other information").click()
    page.get_by_text("The follow-up is paused").wait_for()
    assert page.locator("[data-status]").get_attribute("data-status") == "info_requested"
    page.get_by_role("button", name="I sent it the information it asked for").click()
    page.get_by_text("Thank you: the follow-up resumes.").wait_for()
    page.get_by_role("button", name="It answered my request").click()
    page.get_by_text("Thank you: we have noted that the organisation answered.").wait_for()
    [stored] = [i for i in table_items() if i["record_type"] == "request"]
    events = [entry["event"] for entry in stored["history"]]
    assert events[-3:] == ["info_requested", "info_provided", "response_received"]
    assert stored["status"] == "answered"


def test_forget_button_deletes_the_supporters_data(
    stack: LiveStack,
    open_tab: OpenTab,
    sent_mail: Callable[..., list],
    table_items: Callable[[], list],  # type: ignore[type-arg]
) -> None:
    submit(stack, "forget.me@example.org")
    tab = confirm_in_browser(stack, open_tab, sent_mail)
    page = tab.page  # type: ignore[attr-defined]
    status_url = page.url
    page.get_by_role("button", name="Delete my data now").click()
    page.get_by_role("heading", name="Your data has been deleted").wait_for()
    assert "forget.me" not in json.dumps(table_items(), default=str)
    page.goto(status_url)
    assert page.get_by_role("heading", name="We cannot find this request").is_visible()
    assert len([m for m in sent_mail() if TARGET in str(m["To"])]) == 1


def test_stop_news_button_withdraws_consent_and_keeps_the_request(
    stack: LiveStack,
    open_tab: OpenTab,
    sent_mail: Callable[..., list],
    table_items: Callable[[], list],  # type: ignore[type-arg]
) -> None:
    submit(stack, "news@example.org", consent=True)
    tab = confirm_in_browser(stack, open_tab, sent_mail)
    page = tab.page  # type: ignore[attr-defined]
    page.get_by_role("button", name="Stop campaign news").click()
    page.get_by_text("Done: you will get no more campaign news from us.").wait_for()
    assert page.get_by_role("button", name="Stop campaign news").count() == 0
    [stored] = [i for i in table_items() if i["record_type"] == "request"]
    assert stored["consent_updates"] is False and stored["status"] == "sent"
