"""The optional human check: Cloudflare Turnstile or hCaptcha, verified server-side."""

from __future__ import annotations

import functools
import json
import urllib.parse
import urllib.request

from chalicelib import aws
from chalicelib.settings import get_settings

FIELDS = {"turnstile": "cf-turnstile-response", "hcaptcha": "h-captcha-response"}
VERIFY_URLS = {
    "turnstile": "https://challenges.cloudflare.com/turnstile/v0/siteverify",
    "hcaptcha": "https://api.hcaptcha.com/siteverify",
}


class CaptchaUnavailable(Exception):
    """The verifier could not be reached: a server-side problem (503)."""


@functools.cache
def _secret(name: str) -> str:
    return aws.ssm().get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]


def required() -> bool:
    return get_settings().captcha_provider != "none"


def passed(form: dict[str, object], client_ip: str | None) -> bool:
    """Whether the form carries a token the provider accepts."""
    settings = get_settings()
    provider = settings.captcha_provider
    token = form.get(FIELDS.get(provider, ""))
    if not isinstance(token, str) or not token or len(token) > 4096:
        return False
    assert settings.captcha_secret_param is not None  # checked by settings
    data = {"secret": _secret(settings.captcha_secret_param), "response": token}
    if client_ip:
        data["remoteip"] = client_ip
    url = settings.captcha_verify_url or VERIFY_URLS[provider]
    request = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.load(response)
    except (OSError, ValueError) as exc:
        raise CaptchaUnavailable(type(exc).__name__) from None
    return isinstance(answer, dict) and answer.get("success") is True
