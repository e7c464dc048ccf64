"""Rate limits on submissions: per client IP and per email address.

Fixed one-hour windows counted in DynamoDB items that expire with their
window. IPs are keyed-hashed like addresses, so no IP is stored. A new
request is counted in the transaction that stores it; attempts that store
nothing (bad input, duplicates) are counted on their own.
"""

from __future__ import annotations

import hashlib
import hmac

from chalicelib import aws, store, tokens
from chalicelib.settings import get_settings

WINDOW_SECONDS = 3600
IP_PREFIX = "ip#"


def _ip_key(ip: str) -> str:
    secret = aws.signing_secret().encode()
    return IP_PREFIX + hmac.new(secret, ip.encode(), hashlib.sha256).hexdigest()[:32]


def for_ip(ip: str | None) -> tuple[store.Allowance, ...]:
    if not ip:
        return ()
    return (store.Allowance(_ip_key(ip), get_settings().rate_limit_per_ip, WINDOW_SECONDS),)


def for_submission(ip: str | None, email: str) -> tuple[store.Allowance, ...]:
    key = "email#" + tokens.email_fingerprint(email)[:32]
    email_allowance = store.Allowance(key, get_settings().rate_limit_per_email, WINDOW_SECONDS)
    return (*for_ip(ip), email_allowance)


def is_ip(over: store.OverLimit) -> bool:
    """Whether the client's IP (rather than the address) is over its limit."""
    return over.allowance.key.startswith(IP_PREFIX)
