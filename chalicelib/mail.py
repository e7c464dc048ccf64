"""MIME messages built with the ``email`` package, sent through SES v2.

Headers are encoded here (RFC 2047 words for non-ASCII display names and
subjects, via ``email.header`` and ``email.utils``) and set as they go on
the wire: parsing them back through ``email.headerregistry`` cost more than
the rest of a request. Whitespace, line breaks included, is collapsed in
every value, so nothing can smuggle a header in.
"""

from __future__ import annotations

import re
import time
from base64 import b64encode
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path

from chalicelib import aws
from chalicelib.settings import get_settings

# SES errors that another attempt later may cure, and those it will not.
_TRANSIENT = frozenset(
    {
        "TooManyRequestsException",
        "Throttling",
        "ThrottlingException",
        "LimitExceededException",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalServerError",
    }
)


class MailError(Exception):
    """Sending failed.

    ``transient``: a later retry may succeed. ``maybe_sent``: the outcome is
    unknown (the request reached SES but no answer came back), so retrying
    could send twice.
    """

    def __init__(self, code: str, transient: bool, maybe_sent: bool = False) -> None:
        super().__init__(code)
        self.code = code
        self.transient = transient
        self.maybe_sent = maybe_sent


@dataclass(frozen=True)
class Mailbox:
    address: str  # ASCII (models.py keeps supporters' addresses so)
    name: str = ""

    def header(self) -> str:
        if not self.address.isascii() or _UNSAFE_IN_ADDRESS.search(self.address):
            raise ValueError("not a plain ASCII address")
        name = " ".join(self.name.split())
        if name.isascii():
            return formataddr((name, self.address))
        words = _encoded_words(name)
        last_line = words.rpartition("\n")[2]
        fold = "\r\n " if len(last_line) + len(self.address) > 70 else " "
        return f"{words}{fold}<{self.address}>"


_UNSAFE_IN_ADDRESS = re.compile(r"[\s<>,;\"]")


@dataclass(frozen=True)
class Outgoing:
    sender: Mailbox
    to: tuple[Mailbox, ...]
    subject: str
    body: str
    cc: tuple[Mailbox, ...] = ()
    reply_to: tuple[Mailbox, ...] = ()
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sent:
    message_id: str
    ses_message_id: str


def build(outgoing: Outgoing, when: datetime | None = None) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    domain = outgoing.sender.address.rpartition("@")[2]
    message.set_raw("Message-ID", make_msgid(domain=domain))
    message.set_raw("Date", format_datetime(when or datetime.now(UTC)))
    message.set_raw("From", outgoing.sender.header())
    message.set_raw("To", _mailboxes(outgoing.to))
    if outgoing.cc:
        message.set_raw("Cc", _mailboxes(outgoing.cc))
    if outgoing.reply_to:
        message.set_raw("Reply-To", _mailboxes(outgoing.reply_to))
    if outgoing.in_reply_to:
        message.set_raw("In-Reply-To", _message_ids([outgoing.in_reply_to]))
    if outgoing.references:
        message.set_raw("References", _message_ids(outgoing.references))
    message.set_raw("Subject", _encoded_text(outgoing.subject))
    for name, value in outgoing.headers.items():
        message[name] = value
    message.set_raw("MIME-Version", "1.0")
    message.set_raw("Content-Type", 'text/plain; charset="utf-8"')
    message.set_raw("Content-Transfer-Encoding", "quoted-printable")
    message.set_payload(_quoted_printable(outgoing.body))
    return message


def _quoted_printable(text: str) -> str:
    """The body as ``set_content(..., cte="quoted-printable")`` encodes it."""
    from email import quoprimime

    lines = text.encode("utf-8").splitlines()
    normal = b"\r\n".join(lines) + b"\r\n" if lines else b""
    return quoprimime.body_encode(normal.decode("latin-1"), SMTP.max_line_length or 78)


def _mailboxes(mailboxes: tuple[Mailbox, ...]) -> str:
    # One per line: the policy then has no long line to refold.
    return ",\r\n ".join(mailbox.header() for mailbox in mailboxes)


def _message_ids(ids: list[str] | tuple[str, ...]) -> str:
    for value in ids:
        if not (value.startswith("<") and value.endswith(">")) or _UNSAFE_IN_ID.search(value):
            raise ValueError("not a message id")
    return "\r\n ".join(ids)


_UNSAFE_IN_ID = re.compile(r"[\s,]")


def _encoded_words(value: str) -> str:
    """All of ``value`` as RFC 2047 words, one per line, none over 75 characters.

    ``email.header.Header`` leaves ASCII runs unencoded, which breaks a
    display name holding a comma or a quote; here every character is in a
    word (45 bytes of UTF-8 each, never splitting a character).
    """
    chunks, chunk = [], b""
    for char in value:
        encoded = char.encode()
        if len(chunk) + len(encoded) > 45:
            chunks.append(chunk)
            chunk = b""
        chunk += encoded
    chunks.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{b64encode(chunk).decode()}?=" for chunk in chunks)


def _encoded_text(value: str) -> str:
    """An unstructured header value, folded so that it unfolds unchanged.

    The ``email`` package folds a mixed ASCII/non-ASCII subject with the
    space before the fold kept, which readers unfold as a double space;
    encoding the whole value as RFC 2047 words avoids that.
    """
    from email.header import Header

    value = " ".join(value.split())
    if value.isascii():
        return value
    return Header(value, "utf-8", header_name="Subject").encode(linesep="\r\n")


def send(outgoing: Outgoing, tags: dict[str, str] | None = None) -> Sent:
    """Send one message; raise MailError on failure.

    ``tags`` come back in the message's SES events (``mail.tags``).
    """
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
    )

    settings = get_settings()
    message = build(outgoing)
    recipients = [mailbox.address for mailbox in (*outgoing.to, *outgoing.cc)]
    request: dict[str, object] = {
        "FromEmailAddress": outgoing.sender.address,
        "Destination": {"ToAddresses": recipients},
        "Content": {"Raw": {"Data": message.as_bytes()}},
    }
    if settings.ses_configuration_set:
        request["ConfigurationSetName"] = settings.ses_configuration_set
    if tags:
        request["EmailTags"] = [{"Name": name, "Value": value} for name, value in tags.items()]
    try:
        response = aws.sesv2().send_email(**request)  # type: ignore[arg-type]
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        raise MailError(code, transient=code in _TRANSIENT) from None
    except (EndpointConnectionError, ConnectTimeoutError) as exc:
        # Never reached SES: nothing was sent, try again later.
        raise MailError(type(exc).__name__, transient=True) from None
    except BotoCoreError as exc:
        # Reached SES, no answer (read timeout and the like): it may have
        # been sent. Callers must not send it again automatically.
        raise MailError(type(exc).__name__, transient=False, maybe_sent=True) from None
    sent = Sent(message_id=message.get("Message-ID", ""), ses_message_id=response["MessageId"])
    if settings.outbox_dir:
        _write_outbox(Path(settings.outbox_dir), message, sent)
    return sent


def _write_outbox(folder: Path, message: EmailMessage, sent: Sent) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    (folder / f"{stamp}-{sent.ses_message_id}.eml").write_bytes(message.as_bytes())
