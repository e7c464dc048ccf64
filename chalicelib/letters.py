"""Rendering of letters, emails and pages from the Jinja templates.

Templates live in the top-level ``templates/`` folder so campaigners can edit
them. ``chalice package`` ships only app.py, chalicelib/ and vendor/, and the
contents of vendor/ land at the root of the zip: ``vendor/templates`` is a
symlink to ``../templates``, so in Lambda they sit at ``/var/task/templates``,
beside chalicelib/ exactly as in the repository.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib import i18n

if TYPE_CHECKING:
    from jinja2 import Environment, Template

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


@functools.cache
def environment() -> Environment:
    from jinja2 import (
        Environment,
        FileSystemLoader,
        StrictUndefined,
        pass_context,
        select_autoescape,
    )

    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        # Pages are HTML and escape everything; letters are text/plain.
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )
    # The filter needs the template's language, so it reads the context.
    env.filters["longdate"] = pass_context(_longdate)
    return env


def _longdate(context: Any, value: date) -> str:
    return i18n.longdate(value, context.get("lang", "en"))


def _template(name: str) -> Template:
    return environment().get_template(name)


def render_message(name: str, lang: str, context: dict[str, Any]) -> Rendered:
    """Render ``<name>.<lang>.txt.j2``'s subject and body blocks."""
    template = _template(f"{name}.{lang}.txt.j2")
    ctx = template.new_context({**context, "lang": lang})
    subject = "".join(template.blocks["subject"](ctx)).strip()
    body = "".join(template.blocks["body"](ctx)).strip() + "\n"
    return Rendered(subject=" ".join(subject.split()), body=body)


def render_page(name: str, lang: str, context: dict[str, Any]) -> str:
    return _template(f"pages/{name}.html.j2").render({**context, "lang": lang})
