"""Rate limits on submissions: per client IP and per email address.

Fixed one-hour windows counted in DynamoDB items that expire with their
window. IPs are keyed-hashed like addresses, so no IP is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from chalicelib import aws, store, tokens
from chalicelib.settings import get_settings

WINDOW_SECONDS = 3600


def _ip_key(ip: str) -> str:
    secret = aws.signing_secret().encode()
    return "ip#" + hmac.new(secret, ip.encode(), hashlib.sha256).hexdigest()[:32]


def _over(key: str, limit: int) -> int | None:
    hits, window_end = store.count_hit(key, WINDOW_SECONDS, time.time())
    if hits > limit:
        return max(1, window_end - int(time.time()))
    return None


def ip_retry_after(ip: str | None) -> int | None:
    """Seconds to wait if this IP is over its limit, else None."""
    if not ip:
        return None
    return _over(_ip_key(ip), get_settings().rate_limit_per_ip)


def email_retry_after(email: str) -> int | None:
    key = "email#" + tokens.email_fingerprint(email)[:32]
    return _over(key, get_settings().rate_limit_per_email)
