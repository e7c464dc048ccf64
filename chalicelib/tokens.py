"""Signed tokens for supporters' links, and the keyed hash of addresses.

Links carry an HMAC-signed token (itsdangerous) bound to one request and one
purpose, so a confirmation token cannot open someone else's status page and a
status token cannot confirm. Nothing about a token is stored.

A confirmation token also carries the address's fingerprint (the key of its
duplicate lock), so the confirmation is one write, with no read before it.
The fingerprint is a keyed hash: it does not reveal the address.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

from chalicelib import aws


class Purpose(StrEnum):
    CONFIRM = "confirm"
    STATUS = "status"


class BadToken(Exception):
    """Tampered, expired, or made for another request or purpose."""


def _serializer(purpose: Purpose):  # type: ignore[no-untyped-def]
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(aws.signing_secret(), salt=f"takeback.{purpose.value}")


def issue(request_id: str, purpose: Purpose, email_key: str | None = None) -> str:
    payload: str | list[str] = request_id if email_key is None else [request_id, email_key]
    token: str = _serializer(purpose).dumps(payload)
    return token


def check(
    token: str | None, request_id: str, purpose: Purpose, max_age_days: int | None
) -> str | None:
    """The address fingerprint the token carries (None if it carries none).

    Raises BadToken unless ``token`` was issued for this request and purpose.
    """
    from itsdangerous import BadData

    if not token:
        raise BadToken("missing")
    max_age = max_age_days * 86400 if max_age_days is not None else None
    try:
        payload = _serializer(purpose).loads(token, max_age=max_age)
    except BadData:
        raise BadToken("invalid") from None
    # Links sent before fingerprints were carried hold the request id alone.
    subject, email_key = (
        payload if isinstance(payload, list) and len(payload) == 2 else (payload, None)
    )
    if not isinstance(subject, str) or not hmac.compare_digest(subject, request_id):
        raise BadToken("wrong request")
    return email_key if isinstance(email_key, str) else None


def email_fingerprint(email: str) -> str:
    """Keyed hash of an address: finds duplicates without storing it in a key."""
    key = aws.signing_secret().encode()
    return hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()
