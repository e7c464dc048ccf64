"""The static campaign site: the pages, the embeddable form and its script.

    python manage.py build-page --api-url https://api.takeback.example --out build/site

Renders the Jinja templates in ``templates/site/`` into plain files that any
static host can serve (a CMS, S3 behind CloudFront, ``python -m http.server``).
The API's address is fixed at build time. Every link between the built files
is relative, so the site also works from a subfolder. Nothing in the output
points at a host other than the API's and the site's own: no web fonts, no
scripts, images or analytics from elsewhere.

What the build writes (English and French on equal footing)::

    index.html              fr/index.html           the campaign page
    thanks/index.html       fr/merci/index.html     after a form post without JS
    embed/index.html        fr/integrer/index.html  how to embed the form, with a preview
    embed/form.html         embed/form.fr.html      the snippet organisers paste
    site.css  form.js  favicon.svg

The campaign's identity (name, postal address, contact and sender addresses)
and the verification delay come from a stage's settings in
``.chalice/config.json`` (``local`` by default); keyword arguments override
any of them.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tools import local_stack

ROOT = local_stack.ROOT
TEMPLATES_DIR = ROOT / "templates"
SITE_DIR = TEMPLATES_DIR / "site"
STYLESHEET = TEMPLATES_DIR / "static" / "site.css"

LANGUAGES = ("en", "fr")


@dataclass(frozen=True)
class Campaign:
    """Who runs the campaign, as the privacy notice and consent box name it."""

    name: str
    postal_address: str
    contact_email: str
    sender_email: str
    website: str
    verify_days: int

    @property
    def address(self) -> str:
        """The postal address without a leading repeat of the campaign's name."""
        prefix = self.name + ","
        address = self.postal_address.strip()
        if address.lower().startswith(prefix.lower()):
            return address[len(prefix) :].strip()
        return address


@dataclass(frozen=True)
class Page:
    """One full HTML page: its template, where it goes, its language twin."""

    template: str
    path: str
    lang: str
    twin: str
    index: bool = True  # whether search engines may list it


PAGES = (
    Page("index.en.html.j2", "index.html", "en", "fr/index.html"),
    Page("index.fr.html.j2", "fr/index.html", "fr", "index.html"),
    Page("thanks.html.j2", "thanks/index.html", "en", "fr/merci/index.html", index=False),
    Page("thanks.html.j2", "fr/merci/index.html", "fr", "thanks/index.html", index=False),
    Page("embed.html.j2", "embed/index.html", "en", "fr/integrer/index.html", index=False),
    Page("embed.html.j2", "fr/integrer/index.html", "fr", "embed/index.html", index=False),
)

# The snippets organisers paste into their own pages, one per language.
SNIPPETS = {"en": "embed/form.html", "fr": "embed/form.fr.html"}

# Copied as they are (the stylesheet is shared with the API's own pages).
ASSETS = {
    "site.css": STYLESHEET,
    "form.js": SITE_DIR / "form.js",
    "favicon.svg": SITE_DIR / "favicon.svg",
}


def build(
    api_url: str,
    out: Path,
    *,
    stage: str = "local",
    campaign_name: str | None = None,
    postal_address: str | None = None,
    contact_email: str | None = None,
    sender_email: str | None = None,
    site_url: str | None = None,
    verify_days: int | None = None,
) -> None:
    """Render the campaign site for the API at ``api_url`` into ``out``.

    ``site_url`` is where the site itself will be served; only the
    embeddable snippet uses it (its script must load from the site, not from
    the page it is pasted into). It defaults to the stage's CAMPAIGN_WEBSITE.
    """
    settings = local_stack.stage_environment(stage)
    api = _absolute_url(api_url, "api_url")
    campaign = Campaign(
        name=campaign_name or settings["CAMPAIGN_NAME"],
        postal_address=postal_address or settings["CAMPAIGN_POSTAL_ADDRESS"],
        contact_email=contact_email or settings["CAMPAIGN_CONTACT_EMAIL"],
        sender_email=sender_email or settings["SENDER_EMAIL"],
        website=_absolute_url(site_url or settings["CAMPAIGN_WEBSITE"], "site_url"),
        verify_days=verify_days or int(settings.get("VERIFY_DAYS", "7")),
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    versions = {}
    for name, source in ASSETS.items():
        content = source.read_bytes()
        _write(out / name, content)
        versions[name] = hashlib.sha256(content).hexdigest()[:12]

    env = _environment()
    common = {"api_url": api, "campaign": campaign}
    snippets = {lang: _snippet(env, common, lang, campaign, versions) for lang in LANGUAGES}
    for page in PAGES:
        up = _up(page.path)
        html = env.get_template(f"site/{page.template}").render(
            **common,
            lang=page.lang,
            root=up,
            path=page.path,
            twin=_link(page.path, page.twin),
            home=_link(page.path, "fr/index.html" if page.lang == "fr" else "index.html"),
            stylesheet=f"{up}site.css?v={versions['site.css']}",
            script=f"{up}form.js?v={versions['form.js']}",
            favicon=f"{up}favicon.svg?v={versions['favicon.svg']}",
            csp=_content_security_policy(api),
            indexable=page.index,
            snippets=snippets,
            snippet_paths={lang: _link(page.path, path) for lang, path in SNIPPETS.items()},
        )
        _write(out / page.path, html.encode("utf-8"))
    for lang, path in SNIPPETS.items():
        _write(out / path, snippets[lang].encode("utf-8"))


def _snippet(
    env: Any, common: dict[str, Any], lang: str, campaign: Campaign, versions: dict[str, str]
) -> str:
    template = env.get_template("site/snippet.html.j2")
    script = f"{campaign.website}/form.js?v={versions['form.js']}"
    return str(template.render(**common, lang=lang, script=script)).strip() + "\n"


def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _absolute_url(value: str, what: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{what} must be an absolute http(s) URL, not {value!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"{what} must not carry a query or fragment: {value!r}")
    return value.strip().rstrip("/")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _content_security_policy(api_url: str) -> str:
    """What the page may load: its own files, and the API for the form only.

    A meta CSP cannot carry frame-ancestors or reporting; a host adding the
    header version should copy this and add those.
    """
    api = _origin(api_url)
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"connect-src 'self' {api}; form-action 'self' {api}; base-uri 'none'"
    )


def _up(path: str) -> str:
    """The relative prefix from a built file back to the site's root."""
    depth = path.count("/")
    return "../" * depth


def _link(from_path: str, to_path: str) -> str:
    """A relative link between two built files; folders for index pages."""
    start = posixpath.dirname(from_path) or "."
    if posixpath.basename(to_path) == "index.html":
        target = posixpath.dirname(to_path) or "."
        relative = posixpath.relpath(target, start)
        return "./" if relative == "." else relative + "/"
    return posixpath.relpath(to_path, start)


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
