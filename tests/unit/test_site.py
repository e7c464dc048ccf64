"""The static campaign site as built: files, languages, links, form, privacy.

These read the build output only (no browser); tests/browser drives it.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from chalicelib.models import PROVINCES
from tools import local_stack, site

API = "https://api.campaign.example"
SITE_URL = "https://campaign.example"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}

PAGES = {
    "index.html": "en",
    "fr/index.html": "fr",
    "thanks/index.html": "en",
    "fr/merci/index.html": "fr",
    "embed/index.html": "en",
    "fr/integrer/index.html": "fr",
}
TWINS = {
    "index.html": "fr/index.html",
    "thanks/index.html": "fr/merci/index.html",
    "embed/index.html": "fr/integrer/index.html",
}
SNIPPETS = {"embed/form.html": "en", "embed/form.fr.html": "fr"}


def squash(text: str) -> str:
    """Collapse white space as a browser does, keeping no-break spaces."""
    return re.sub(r"[ \t\n\r\f]+", " ", text).strip(" ")


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parent: Element | None
    children: list[Element] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def ancestors(self) -> list[Element]:
        found, node = [], self.parent
        while node is not None:
            found.append(node)
            node = node.parent
        return found

    def all_text(self) -> str:
        return squash(" ".join(self.text + [child.all_text() for child in self.children]))


class Document(HTMLParser):
    """Just enough of a DOM for these checks (the pages are hand-written)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.elements: list[Element] = []
        self.visible: list[str] = []
        self._open = self.root
        self._hidden_depth = 0
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs}, self._open)
        self._open.children.append(element)
        self.elements.append(element)
        if tag not in VOID:
            self._open = element

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self._open
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self._open = node.parent

    def handle_data(self, data: str) -> None:
        self._open.text.append(data)
        chain = [self._open, *self._open.ancestors()]
        if not any(e.tag in ("script", "style", "title") or "hidden" in e.attrs for e in chain):
            self.visible.append(data)

    def find(self, tag: str | None = None, **attrs: str) -> list[Element]:
        return [
            e
            for e in self.elements
            if (tag is None or e.tag == tag)
            and all(
                e.attrs.get(name.rstrip("_").replace("_", "-")) == v for name, v in attrs.items()
            )
        ]

    def one(self, tag: str | None = None, **attrs: str) -> Element:
        found = self.find(tag, **attrs)
        assert len(found) == 1, f"expected one {tag} {attrs}, found {len(found)}"
        return found[0]

    def by_id(self, ident: str) -> Element:
        return self.one(None, id=ident)

    @property
    def text(self) -> str:
        return squash(" ".join(self.visible))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    site.build(api_url=API + "/", out=out, site_url=SITE_URL)
    return out


def read(built: Path, path: str) -> Document:
    return Document((built / path).read_text(encoding="utf-8"))


def resolve(page: str, href: str) -> str:
    """The built file a relative link from ``page`` leads to."""
    path = urlsplit(href).path
    target = posixpath.normpath(posixpath.join(posixpath.dirname(page), path))
    if path.endswith("/") or path in ("", "."):
        target = posixpath.normpath(posixpath.join(target, "index.html"))
    return target


def test_build_writes_every_page_asset_and_snippet(built: Path) -> None:
    expected = {*PAGES, *SNIPPETS, "site.css", "form.js", "favicon.svg"}
    written = {str(path.relative_to(built)) for path in built.rglob("*") if path.is_file()}
    assert written == expected


def test_stylesheet_is_the_shared_one_and_the_script_is_copied_as_is(built: Path) -> None:
    assert (built / "site.css").read_bytes() == site.STYLESHEET.read_bytes()
    assert (built / "form.js").read_bytes() == (site.SITE_DIR / "form.js").read_bytes()


@pytest.mark.parametrize("page", PAGES)
def test_each_page_has_its_language_and_links_its_twin(built: Path, page: str) -> None:
    doc = read(built, page)
    lang = PAGES[page]
    assert doc.one("html").attrs["lang"] == lang
    twin = TWINS.get(page) or next(key for key, value in TWINS.items() if value == page)
    switch = [
        a
        for a in doc.find("a")
        if a.attrs.get("hreflang") and a.parent and a.parent.tag == "header"
    ]
    assert len(switch) == 1
    other = "fr" if lang == "en" else "en"
    assert switch[0].attrs["lang"] == other
    assert resolve(page, switch[0].attrs["href"]) == twin
    assert switch[0].all_text() == ("Français" if other == "fr" else "English")


@pytest.mark.parametrize("page", PAGES)
def test_every_local_link_and_anchor_leads_somewhere(built: Path, page: str) -> None:
    doc = read(built, page)
    ids = {e.attrs["id"] for e in doc.elements if "id" in e.attrs}
    for element in doc.elements:
        for attr in ("href", "src"):
            link = element.attrs.get(attr)
            if link is None or link.startswith(("mailto:", API)):
                continue
            parts = urlsplit(link)
            assert not parts.scheme and not parts.netloc, f"{page}: absolute link {link}"
            if parts.path:
                target = resolve(page, link)
                assert (built / target).is_file(), f"{page}: {link} -> {target} is missing"
                if parts.fragment:
                    assert f'id="{parts.fragment}"' in (built / target).read_text()
            elif parts.fragment:
                assert parts.fragment in ids, f"{page}: #{parts.fragment} names no element"


@pytest.mark.parametrize("path", [*PAGES, *SNIPPETS])
def test_ids_are_unique_and_every_reference_names_one(built: Path, path: str) -> None:
    doc = read(built, path)
    ids = [e.attrs["id"] for e in doc.elements if "id" in e.attrs]
    assert len(ids) == len(set(ids))
    for element in doc.elements:
        for attr in ("for", "aria-describedby", "aria-labelledby"):
            for ident in element.attrs.get(attr, "").split():
                assert ident in ids, f"{path}: {element.tag}[{attr}] names missing #{ident}"


def test_no_built_file_points_at_another_host(built: Path) -> None:
    allowed = {urlsplit(API).netloc, urlsplit(SITE_URL).netloc}
    for path in built.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        # The SVG namespace is a name, not something a browser fetches.
        text = text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        for url in re.findall(r"(?:https?:)?//[\w.-]+(?::\d+)?", text):
            host = url.split("//", 1)[1]
            if host.startswith("www.example.org"):  # documentation text, not a link
                continue
            assert host in allowed, f"{path.relative_to(built)} mentions {url}"
        assert "@import" not in text and "fonts.googleapis" not in text


def test_pages_only_load_their_own_files_and_may_only_talk_to_the_api(built: Path) -> None:
    for page in PAGES:
        doc = read(built, page)
        for element in doc.find("script") + doc.find("link"):
            source = element.attrs.get("src") or element.attrs.get("href", "")
            assert not urlsplit(source).netloc, f"{page} loads {source}"
        policy = doc.one("meta", http_equiv="Content-Security-Policy").attrs["content"]
        assert "default-src 'none'" in policy
        assert f"connect-src 'self' {API};" in policy
        assert f"form-action 'self' {API};" in policy
        assert not doc.find("img") and not doc.find("iframe")


@pytest.mark.parametrize("path", ["index.html", "fr/index.html", *SNIPPETS, "embed/index.html"])
def test_the_form_posts_every_field_to_the_api(built: Path, path: str) -> None:
    doc = read(built, path)
    lang = "fr" if "fr" in path else "en"
    form = doc.one("form")
    assert form.attrs["method"] == "post"
    assert form.attrs["action"] == f"{API}/requests?lang={lang}"
    names = {e.attrs.get("name") for e in doc.elements if e.tag in ("input", "select")}
    assert names == {
        "first_name",
        "last_name",
        "email",
        "province",
        "language",
        "consent_updates",
        "website",
    }
    for name in ("first_name", "last_name", "email"):
        assert "required" in doc.one("input", name=name).attrs
    assert "required" not in doc.one("select", name="province").attrs
    codes = [o.attrs["value"] for o in doc.find("option")]
    assert codes[0] == ""
    assert sorted(codes[1:]) == sorted(PROVINCES)
    checked = [e.attrs["value"] for e in doc.find("input", name="language") if "checked" in e.attrs]
    assert checked == [lang]
    # Every control has a visible label.
    labelled = {e.attrs["for"] for e in doc.find("label")}
    for control in doc.elements:
        if control.tag in ("input", "select"):
            assert control.attrs["id"] in labelled
    # Each field that can be wrong has a place for its message.
    errors = {e.attrs["data-error-for"] for e in doc.elements if "data-error-for" in e.attrs}
    assert errors >= {"first_name", "last_name", "email", "province", "language", "consent_updates"}
    live = doc.one(None, data_takeback_status="")
    assert live.attrs["aria-live"] == "polite"


@pytest.mark.parametrize("path", ["index.html", "fr/index.html", *SNIPPETS])
def test_honeypot_is_hidden_from_people_keyboards_and_autofill(built: Path, path: str) -> None:
    doc = read(built, path)
    trap = doc.one("input", name="website")
    assert trap.attrs["tabindex"] == "-1"
    assert trap.attrs["autocomplete"] == "off"
    assert trap.attrs.get("value", "") == ""
    wrapper = trap.parent
    assert wrapper is not None
    assert wrapper.attrs["aria-hidden"] == "true"
    assert "hp" in wrapper.attrs["class"].split()
    if path in SNIPPETS:  # no site.css on the host page: it hides itself
        assert "left:-10000px" in wrapper.attrs["style"]


@pytest.mark.parametrize(
    ("path", "withdraw"),
    [
        ("index.html", "withdraw your consent at any time"),
        ("fr/index.html", "retirer votre consentement en tout temps"),
    ],
)
def test_consent_box_is_unticked_and_says_who_asks_what_for_and_how_to_withdraw(
    built: Path, path: str, withdraw: str
) -> None:
    settings = local_stack.stage_environment("local")
    doc = read(built, path)
    box = doc.one("input", name="consent_updates")
    assert box.attrs["type"] == "checkbox"
    assert "checked" not in box.attrs and "required" not in box.attrs
    label = doc.one("label", for_=box.attrs["id"]).all_text()
    details = " ".join(doc.by_id(i).all_text() for i in box.attrs["aria-describedby"].split())
    wording = label + " " + details
    assert settings["CAMPAIGN_NAME"] in label
    assert settings["CAMPAIGN_CONTACT_EMAIL"] in details
    assert "100 Example Street, Ottawa ON K1A 0A1" in details
    assert withdraw in wording


def test_identity_and_contact_can_be_overridden(tmp_path: Path) -> None:
    site.build(
        api_url=API,
        out=tmp_path,
        campaign_name="Citizens for Faces",
        postal_address="PO Box 12, Halifax NS B3H 0A1",
        contact_email="privacy@faces.example",
        sender_email="requests@faces.example",
        site_url="https://faces.example",
        verify_days=5,
    )
    for page in ("index.html", "fr/index.html"):
        text = read(tmp_path, page).text
        assert "Citizens for Faces" in text and "PO Box 12, Halifax NS B3H 0A1" in text
        assert "privacy@faces.example" in text and "hello@takeback.example" not in text
        assert re.search(r"after 5 days|après 5 jours", text)
    assert "requests@faces.example" in read(tmp_path, "thanks/index.html").text
    assert 'src="https://faces.example/form.js?v=' in (tmp_path / "embed/form.html").read_text()


def test_defaults_come_from_the_local_stage(tmp_path: Path) -> None:
    settings = local_stack.stage_environment("local")
    site.build(api_url=API, out=tmp_path)
    snippet = (tmp_path / "embed/form.html").read_text()
    assert f'src="{settings["CAMPAIGN_WEBSITE"]}/form.js?v=' in snippet
    text = read(tmp_path, "index.html").text
    assert settings["CAMPAIGN_NAME"] in text and settings["CAMPAIGN_CONTACT_EMAIL"] in text


@pytest.mark.parametrize(
    ("page", "phrases"),
    [
        (
            "index.html",
            [
                "billions",
                "2021",
                "joint investigation",
                "biometric identifiers",
                "web address where each image was found",
                "disclosed",
                "delete",
                "Within 30 days",
                "follow-up letter",
                "complaint kit",
                "Privacy notice",
                "deleted after 7 days",
                "deletion link on your status page",
                "province or territory",
                "language",
                "agreed to receive news",
            ],
        ),
        (
            "fr/index.html",
            [
                "milliards",
                "2021",
                "enquête conjointe",
                "identifiants biométriques",
                "adresse Web où chaque image a été trouvée",
                "communiqués",
                "supprimer",
                "Dans les 30 jours",
                "lettre de relance",
                "trousse de plainte",
                "Avis de confidentialité",
                "supprimé après 7 jours",
                "lien de suppression",
                "province ou territoire",
                "langue",
                "recevoir ou non des nouvelles",
            ],
        ),
    ],
)
def test_campaign_page_explains_the_request_and_the_privacy_notice(
    built: Path, page: str, phrases: list[str]
) -> None:
    text = read(built, page).text.replace("\u00a0", " ")
    for phrase in phrases:
        assert phrase in text, phrase


@pytest.mark.parametrize(
    ("page", "phrase"),
    [
        ("thanks/index.html", "Check your inbox"),
        ("fr/merci/index.html", "Consultez votre boîte de réception"),
    ],
)
def test_thank_you_pages_send_people_to_their_inbox(built: Path, page: str, phrase: str) -> None:
    doc = read(built, page)
    assert doc.one("h1").all_text() == phrase
    assert "7" in doc.text and "requests@takeback.example" in doc.text
    assert doc.one("meta", name="robots").attrs["content"] == "noindex"


@pytest.mark.parametrize(
    "path", ["fr/index.html", "fr/merci/index.html", "fr/integrer/index.html", "embed/form.fr.html"]
)
def test_french_text_uses_non_breaking_spaces_before_colons(built: Path, path: str) -> None:
    doc = read(built, path)
    assert not re.search(r"[^\S\u00a0]:", doc.text), re.findall(r".{20}[^\S\u00a0]:.{10}", doc.text)


def test_embed_page_shows_the_snippet_it_links(built: Path) -> None:
    snippet = (built / "embed/form.html").read_text()
    doc = read(built, "embed/index.html")
    shown = doc.one("pre").children[0]
    assert shown.tag == "code"
    assert "".join(shown.text).strip() == snippet.strip()
    assert snippet.count("<form") == 1 and snippet.rstrip().endswith("</script>")


def test_build_is_reproducible_and_normalises_the_api_url(tmp_path: Path) -> None:
    site.build(api_url=API, out=tmp_path / "a", site_url=SITE_URL)
    site.build(api_url=API + "/", out=tmp_path / "b", site_url=SITE_URL + "/")
    for path in (tmp_path / "a").rglob("*"):
        if path.is_file():
            twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
            assert path.read_bytes() == twin.read_bytes(), path


@pytest.mark.parametrize(
    "bad", ["api.example.org", "/api", "ftp://api.example", "https://api.example/?x=1"]
)
def test_bad_api_urls_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="api_url"):
        site.build(api_url=bad, out=tmp_path)
