"""The campaign page in a real browser, against the real local stack.

Each flow goes as far as a supporter would: the form, the verification email
(read back from SES), the confirm page served by the API, and its button.
Screenshots of every page land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import reload_until_sent
from tools import site

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from tests.browser.conftest import OpenTab, Tab
    from tests.conftest import LiveStack

pytestmark = pytest.mark.browser

SentMail = Callable[..., list[EmailMessage]]
Items = Callable[[], list[dict[str, object]]]
Check = Callable[["Page"], None]
Shoot = Callable[["Page", str], list[Path]]

CONFIRM_LINK = re.compile(r"https?://\S+/requests/[^/\s]+/confirm\?token=\S+")
TARGET = "privacy@clearview.ai"

TEXT = {
    "en": {
        "path": "/",
        "first": "First name",
        "last": "Last name",
        "email": "Email address",
        "province": "Province or territory",
        "consent": "may email me news",
        "submit": "Prepare my request",
        "success": "Check your inbox",
        "confirm": "Confirm and send my request",
        "confirmed": "Your address is confirmed",
        "subject": "Confirm your email address",
        "retry": "We could not reach our server",
        "empty_first": "Please enter your first name.",
        "bad_email": "This email address is not valid.",
        "thanks": "/thanks/",
    },
    "fr": {
        "path": "/fr/",
        "first": "Prénom",
        "last": "Nom de famille",
        "email": "Adresse courriel",
        "province": "Province ou territoire",
        "consent": "peut m’envoyer par courriel des nouvelles",
        "submit": "Préparer ma demande",
        "success": "Consultez votre boîte de réception",
        "confirm": "Confirmer et envoyer ma demande",
        "confirmed": "Votre adresse est confirmée",
        "subject": "Confirmez votre adresse courriel",
        "retry": "Nous n’avons pas pu joindre notre serveur",
        "empty_first": "Veuillez entrer votre prénom.",
        "bad_email": "Cette adresse courriel n'est pas valide.",
        "thanks": "/fr/merci/",
    },
}

STATIC_PAGES = {
    "index-en": "/",
    "index-fr": "/fr/",
    "thanks-en": "/thanks/",
    "thanks-fr": "/fr/merci/",
    "embed-en": "/embed/",
    "embed-fr": "/fr/integrer/",
}


# --- helpers ----------------------------------------------------------------


def fill_form(page: Page, lang: str, first: str, last: str, email: str) -> None:
    t = TEXT[lang]
    page.get_by_label(t["first"], exact=True).fill(first)
    page.get_by_label(t["last"], exact=True).fill(last)
    page.get_by_label(t["email"], exact=True).fill(email)


def confirm_link(sent: list[EmailMessage], to: str) -> tuple[EmailMessage, str]:
    [message] = [m for m in sent if to in str(m["To"])]
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    match = CONFIRM_LINK.search(body.get_content())
    assert match, body.get_content()
    return message, match.group(0)


def sent_after_reload(page: Page, sent_mail: SentMail) -> list[EmailMessage]:
    """The letters, once sent; the status page, reloaded as the supporter would.

    The API answers the confirmation before the letter goes (the stream
    consumer sends it a moment later), so the page says "on its way" first.
    """
    reload_until_sent(page)
    return [m for m in sent_mail(at_least=1, to=TARGET) if TARGET in str(m["To"])]


def watch_button(page: Page) -> None:
    """Remember whether the submit button was ever disabled (while sending)."""
    page.evaluate(
        """() => {
            const button = document.querySelector('form[data-takeback-form] button[type=submit]');
            window.__buttonWasDisabled = false;
            new MutationObserver(() => { if (button.disabled) window.__buttonWasDisabled = true; })
                .observe(button, { attributes: true, attributeFilter: ['disabled'] });
        }"""
    )


def requests_of(items: Items) -> list[dict[str, object]]:
    return [item for item in items() if item.get("record_type") == "request"]


def only_own_hosts(tab: Tab, *origins: str) -> None:
    allowed = {urlsplit(origin).netloc for origin in origins}
    assert tab.hosts() <= allowed, f"requests to other hosts: {tab.hosts() - allowed}"


def no_csp_errors(tab: Tab) -> None:
    assert not [e for e in tab.console_errors if "Content Security Policy" in e], tab.console_errors


def active(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(
        """() => { const e = document.activeElement; const s = getComputedStyle(e);
                   return { name: e.name || '', tag: e.tagName, id: e.id, type: e.type || '',
                            outline: s.outlineStyle, outlineWidth: s.outlineWidth }; }"""
    )
    return result


def tab_to(page: Page, name: str, limit: int = 40) -> None:
    """Press Tab until the control named ``name`` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if active(page)["name"] == name:
            return
    raise AssertionError(f"Tab never reached {name!r}")


# --- the flows ----------------------------------------------------------------


def test_english_flow_with_javascript_reaches_the_letter(
    stack: LiveStack, open_tab: OpenTab, sent_mail: SentMail, table_items: Items, screenshot: Shoot
) -> None:
    t = TEXT["en"]
    tab = open_tab(stack.page + "/")
    page = tab.page
    assert page.locator("html").get_attribute("lang") == "en"
    fill_form(page, "en", "Zoë", "Côté-Lévesque", "zoe@example.org")
    page.get_by_label(t["province"]).select_option("ON")
    page.get_by_label(re.compile(t["consent"])).check()
    watch_button(page)
    page.get_by_role("button", name=t["submit"]).click()

    success = page.locator("[data-takeback-success]")
    success.wait_for(state="visible")
    assert t["success"] in success.inner_text()
    assert "zoe@example.org" in success.inner_text()
    assert page.locator("form[data-takeback-form]").is_hidden()
    assert page.evaluate("window.__buttonWasDisabled") is True
    assert page.evaluate("document.activeElement.hasAttribute('data-takeback-success')")
    screenshot(page, "index-en-success")

    [record] = requests_of(table_items)
    assert record["status"] == "pending_verification"
    assert (record["language"], record["province"], record["consent_updates"]) == ("en", "ON", True)

    message, link = confirm_link(sent_mail(at_least=1, to="zoe@example.org"), "zoe@example.org")
    assert message["Subject"].startswith(t["subject"])
    assert link.startswith(stack.api + "/")
    page.goto(link)
    assert page.locator("html").get_attribute("lang") == "en"
    screenshot(page, "api-confirm-en")
    page.get_by_role("button", name=t["confirm"]).click()
    page.get_by_text(t["confirmed"]).wait_for()
    letters = sent_after_reload(page, sent_mail)
    screenshot(page, "api-status-en")
    assert len(letters) == 1
    assert "zoe@example.org" in str(letters[0]["Cc"]) + str(letters[0]["Reply-To"])
    assert "Côté-Lévesque" in str(letters[0]["From"])
    only_own_hosts(tab, stack.page, stack.api)
    no_csp_errors(tab)


def test_french_flow_by_keyboard_only(
    stack: LiveStack, open_tab: OpenTab, sent_mail: SentMail, table_items: Items
) -> None:
    t = TEXT["fr"]
    tab = open_tab(stack.page + "/fr/")
    page = tab.page
    assert page.locator("html").get_attribute("lang") == "fr"

    # The first Tab reaches the skip link, which is visible once focused.
    page.keyboard.press("Tab")
    assert active(page)["tag"] == "A"
    assert page.locator(".skip-link").bounding_box()["y"] >= 0  # type: ignore[index]

    tab_to(page, "first_name")
    assert active(page)["outline"] != "none", "no visible focus on the first field"
    page.keyboard.type("Émilie")
    page.keyboard.press("Tab")
    assert active(page)["name"] == "last_name"
    page.keyboard.type("O'Brien-Tremblay")
    page.keyboard.press("Tab")
    assert active(page)["name"] == "email"
    page.keyboard.type("emilie@example.org")
    page.keyboard.press("Tab")
    assert active(page)["name"] == "province"
    page.keyboard.type("Qu")  # type-ahead in the closed select
    page.keyboard.press("Tab")
    focused = active(page)
    assert (focused["name"], focused["id"]) == ("language", "tb-fr-language-fr")
    page.keyboard.press("Tab")
    assert active(page)["name"] == "consent_updates"  # left unticked
    page.keyboard.press("Tab")  # the honeypot is skipped
    assert active(page)["tag"] == "BUTTON"
    assert active(page)["outline"] != "none", "no visible focus on the button"
    page.keyboard.press("Enter")

    page.get_by_text(t["success"]).wait_for()
    assert "emilie@example.org" in page.locator("[data-takeback-success]").inner_text()

    [record] = requests_of(table_items)
    assert (record["first_name"], record["last_name"]) == ("Émilie", "O'Brien-Tremblay")
    assert (record["language"], record["province"], record["consent_updates"]) == (
        "fr",
        "QC",
        False,
    )

    message, link = confirm_link(
        sent_mail(at_least=1, to="emilie@example.org"), "emilie@example.org"
    )
    assert message["Subject"].startswith(t["subject"])
    page.goto(link)
    assert page.locator("html").get_attribute("lang") == "fr"
    button = page.get_by_role("button", name=t["confirm"])
    button.focus()
    page.keyboard.press("Enter")
    page.get_by_text(t["confirmed"]).wait_for()
    assert len(sent_after_reload(page, sent_mail)) == 1
    only_own_hosts(tab, stack.page, stack.api)
    no_csp_errors(tab)


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_without_javascript_the_form_posts_and_lands_on_the_thank_you_page(
    stack: LiveStack, open_tab: OpenTab, sent_mail: SentMail, table_items: Items, lang: str
) -> None:
    t = TEXT[lang]
    tab = open_tab(stack.page + t["path"], js=False)
    page = tab.page
    fill_form(page, lang, "Nguyễn Thị", "Minh Khai", f"minh.{lang}@example.org")
    with page.expect_navigation():
        page.get_by_role("button", name=t["submit"]).click()
    assert page.url == stack.page + t["thanks"]
    assert page.locator("h1").inner_text() == t["success"]
    [record] = requests_of(table_items)
    assert (record["first_name"], record["language"], record["consent_updates"]) == (
        "Nguyễn Thị",
        lang,
        False,
    )
    message, _ = confirm_link(
        sent_mail(at_least=1, to=f"minh.{lang}@example.org"), f"minh.{lang}@example.org"
    )
    assert message["Subject"].startswith(t["subject"])
    only_own_hosts(tab, stack.page, stack.api)


def test_without_javascript_problems_come_back_as_a_page(
    stack: LiveStack, open_tab: OpenTab, table_items: Items, screenshot: Shoot
) -> None:
    tab = open_tab(stack.page + "/", js=False)
    page = tab.page
    # Passes the browser's own check for type=email, not the API's.
    fill_form(page, "en", "Sam", "Lee", "sam@localhost")
    with page.expect_navigation():
        page.get_by_role("button", name=TEXT["en"]["submit"]).click()
    assert page.url.startswith(stack.api + "/requests")
    assert TEXT["en"]["bad_email"] in page.get_by_role("alert").inner_text()
    screenshot(page, "api-problems-en")
    assert not requests_of(table_items)


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_field_errors_appear_next_to_their_fields_and_are_announced(
    stack: LiveStack,
    open_tab: OpenTab,
    sent_mail: SentMail,
    table_items: Items,
    screenshot: Shoot,
    lang: str,
) -> None:
    t = TEXT[lang]
    tab = open_tab(stack.page + t["path"])
    page = tab.page
    fill_form(page, lang, "", "Lee", "not-an-email")
    page.get_by_role("button", name=t["submit"]).click()

    first = page.get_by_label(t["first"], exact=True)
    email = page.get_by_label(t["email"], exact=True)
    page.locator(f"#tb-{lang}-email-error").wait_for(state="visible")
    for control, error_id, message in (
        (first, f"tb-{lang}-first-name-error", t["empty_first"]),
        (email, f"tb-{lang}-email-error", t["bad_email"]),
    ):
        assert control.get_attribute("aria-invalid") == "true"
        assert error_id in (control.get_attribute("aria-describedby") or "").split()
        assert page.locator(f"#{error_id}").inner_text() == message
        # What a screen reader says for the field includes its error.
        assert message in control.evaluate(
            "e => e.getAttribute('aria-describedby').split(' ')"
            ".map(id => document.getElementById(id).textContent).join(' ')"
        )
    last = page.get_by_label(t["last"], exact=True)
    assert last.get_attribute("aria-invalid") is None
    live = page.locator("[data-takeback-status]")
    assert live.get_attribute("aria-live") == "polite"
    assert t["empty_first"] in live.inner_text() and t["bad_email"] in live.inner_text()
    assert active(page)["name"] == "first_name"
    assert page.get_by_role("button", name=t["submit"]).is_enabled()
    screenshot(page, f"index-{lang}-errors")
    assert not requests_of(table_items) and not sent_mail()

    # Corrected, the same form goes through and the errors disappear.
    first.fill("Sam")
    email.fill(f"sam.{lang}@example.org")
    page.get_by_role("button", name=t["submit"]).click()
    page.get_by_text(t["success"]).wait_for()
    assert len(requests_of(table_items)) == 1
    no_csp_errors(tab)


def test_api_down_shows_a_retry_message_and_keeps_the_answers(
    dead_api_site: str, open_tab: OpenTab, screenshot: Shoot
) -> None:
    t = TEXT["en"]
    tab = open_tab(dead_api_site + "/")
    page = tab.page
    fill_form(page, "en", "Sam", "Lee", "sam@example.org")
    page.get_by_label(t["province"]).select_option("NS")
    watch_button(page)
    page.get_by_role("button", name=t["submit"]).click()
    live = page.locator("[data-takeback-status]")
    live.get_by_text(t["retry"]).wait_for()
    assert page.evaluate("window.__buttonWasDisabled") is True
    assert page.get_by_role("button", name=t["submit"]).is_enabled()
    assert page.get_by_label(t["first"], exact=True).input_value() == "Sam"
    assert page.get_by_label(t["email"], exact=True).input_value() == "sam@example.org"
    assert page.get_by_label(t["province"]).input_value() == "NS"
    assert page.locator("[data-takeback-success]").is_hidden()
    screenshot(page, "index-en-retry")


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_a_503_from_the_api_also_asks_to_retry(
    stack: LiveStack, open_tab: OpenTab, table_items: Items, lang: str
) -> None:
    t = TEXT[lang]
    tab = open_tab()
    page = tab.page
    page.route(
        f"{stack.api}/requests*",
        lambda route: route.fulfill(
            status=503,
            headers={"Retry-After": "30", "Access-Control-Allow-Origin": stack.page},
            json={"errors": {"service": "temporarily unavailable, please retry"}},
        ),
    )
    page.goto(stack.page + t["path"])
    fill_form(page, lang, "Sam", "Lee", "sam@example.org")
    page.get_by_role("button", name=t["submit"]).click()
    page.locator("[data-takeback-status]").get_by_text(t["retry"]).wait_for()
    assert page.get_by_label(t["last"], exact=True).input_value() == "Lee"
    # Once the API is back, the same click sends it.
    page.unroute(f"{stack.api}/requests*")
    page.get_by_role("button", name=t["submit"]).click()
    page.get_by_text(t["success"]).wait_for()
    assert len(requests_of(table_items)) == 1


def test_the_snippet_works_pasted_into_another_page(
    stack: LiveStack,
    open_tab: OpenTab,
    sent_mail: SentMail,
    tmp_path: Path,
    check_accessibility: Check,
) -> None:
    """The embeddable snippet, verbatim, in a bare page with no site.css."""
    site.build(api_url=stack.api, out=tmp_path, site_url=stack.page)
    snippet = (tmp_path / "embed" / "form.html").read_text()
    host = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>An ally</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        f"<body><main><h1>An ally’s page</h1>{snippet}</main></body></html>"
    )
    # Served by the stack's own static server, from the one origin the API
    # allows here. (A page fulfilled by page.route would count as a public
    # page, and Chromium blocks public pages from calling loopback APIs.)
    served = stack.outbox.parent / "site" / "ally.html"
    assert served.parent.joinpath("index.html").is_file()
    served.write_text(host, encoding="utf-8")
    try:
        tab = open_tab(f"{stack.page}/ally.html")
    finally:
        served.unlink()
    page = tab.page
    trap = page.locator("input[name=website]").bounding_box()
    assert trap is not None and trap["x"] + trap["width"] <= 0, "honeypot visible without site.css"
    check_accessibility(page)
    fill_form(page, "en", "Ada", "Lovelace", "ada@example.org")
    page.get_by_role("button", name=TEXT["en"]["submit"]).click()
    page.get_by_text(TEXT["en"]["success"]).wait_for()
    confirm_link(sent_mail(at_least=1, to="ada@example.org"), "ada@example.org")


# --- every page: accessibility, screenshots, requests ------------------------


@pytest.mark.parametrize("name", STATIC_PAGES)
def test_page_loads_only_from_its_own_host_and_fits_small_screens(
    stack: LiveStack, open_tab: OpenTab, screenshot: Shoot, name: str
) -> None:
    tab = open_tab(stack.page + STATIC_PAGES[name])
    page = tab.page
    page.wait_for_load_state("networkidle")
    only_own_hosts(tab, stack.page)
    no_csp_errors(tab)
    assert not tab.console_errors, tab.console_errors
    # The stylesheet and (where there is a form) the script did load.
    assert page.evaluate("getComputedStyle(document.body).marginTop") == "0px"
    for path in screenshot(page, name):
        assert path.stat().st_size > 5_000
    for width in (375, 320):
        page.set_viewport_size({"width": width, "height": 800})
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width, f"{name} scrolls sideways at {width}px ({overflow}px wide)"


@pytest.mark.parametrize("name", STATIC_PAGES)
def test_axe_finds_no_violations_on_static_pages(
    stack: LiveStack, open_tab: OpenTab, check_accessibility: Check, name: str
) -> None:
    tab = open_tab(stack.page + STATIC_PAGES[name], csp=False)
    check_accessibility(tab.page)
    if tab.page.locator("form[data-takeback-form]").count():
        tab.page.set_viewport_size({"width": 375, "height": 800})
        check_accessibility(tab.page)


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_axe_finds_no_violations_in_each_state_of_the_form(
    stack: LiveStack, open_tab: OpenTab, check_accessibility: Check, lang: str
) -> None:
    t = TEXT[lang]
    page = open_tab(stack.page + t["path"], csp=False).page
    fill_form(page, lang, "", "", "nope")
    page.get_by_role("button", name=t["submit"]).click()
    page.locator(f"#tb-{lang}-email-error").wait_for(state="visible")
    check_accessibility(page)
    fill_form(page, lang, "Sam", "Lee", f"sam.{lang}@example.org")
    page.get_by_role("button", name=t["submit"]).click()
    page.get_by_text(t["success"]).wait_for()
    check_accessibility(page)


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_axe_finds_no_violations_on_the_api_pages_the_form_leads_to(
    stack: LiveStack,
    open_tab: OpenTab,
    sent_mail: SentMail,
    check_accessibility: Check,
    screenshot: Shoot,
    lang: str,
) -> None:
    t = TEXT[lang]
    page = open_tab(stack.page + t["path"], csp=False).page
    fill_form(page, lang, "Sam", "Lee", f"sam.{lang}@example.org")
    page.get_by_role("button", name=t["submit"]).click()
    page.get_by_text(t["success"]).wait_for()
    _, link = confirm_link(
        sent_mail(at_least=1, to=f"sam.{lang}@example.org"), f"sam.{lang}@example.org"
    )
    page.goto(link)
    check_accessibility(page)
    page.get_by_role("button", name=t["confirm"]).click()
    page.get_by_text(t["confirmed"]).wait_for()
    check_accessibility(page)
    if lang == "fr":
        screenshot(page, "api-status-fr")
    # A tampered link: the refusal page (its language from ?lang, as no record opens).
    page.goto(link.replace("token=", "token=x") + f"&lang={lang}")
    check_accessibility(page)
    screenshot(page, f"api-refused-{lang}")
