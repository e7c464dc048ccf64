"""Small helpers shared by the integration tests."""

from __future__ import annotations

import json
import re
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlencode

JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}
FORM_HEADERS = {"content-type": "application/x-www-form-urlencoded", "accept": "text/html"}

SUPPORTER = {
    "first_name": "Zoë",
    "last_name": "Côté-Lévesque",
    "email": "Zoe.Cote@Example.COM",
    "province": "QC",
    "language": "fr",
}


def post_json(client: Any, path: str, data: Any, **headers: str) -> Any:
    return client.http.post(path, headers={**JSON_HEADERS, **headers}, body=json.dumps(data))


def post_form(client: Any, path: str, data: dict[str, str], **headers: str) -> Any:
    return client.http.post(path, headers={**FORM_HEADERS, **headers}, body=urlencode(data))


def body(response: Any) -> Any:
    return json.loads(response.body)


def text(message: EmailMessage) -> str:
    content = message.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def link(message: EmailMessage, kind: str) -> str:
    """The path (with query) of the first API link of a kind in a message."""
    match = re.search(rf"https?://[^/\s]+(/requests/[^\s?]+{kind}\?token=[\w.\-]+)", text(message))
    assert match, f"no {kind!r} link in message"
    return match.group(1)


def addressed_to(messages: list[EmailMessage], address: str) -> list[EmailMessage]:
    return [m for m in messages if any(a.addr_spec == address for a in m["To"].addresses)]


def headers(response: Any) -> dict[str, str]:
    """Response headers with lower-case names (HTTP names are case-blind)."""
    return {name.lower(): value for name, value in response.headers.items()}
