"""MIME messages built with the ``email`` package, sent through SES v2.

Headers go through ``email.headerregistry``: non-ASCII display names are
RFC 2047-encoded and a name cannot smuggle a line break into a header.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
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
    address: str
    name: str = ""

    def header(self) -> Address:
        local, _, domain = self.address.rpartition("@")
        return Address(display_name=self.name, username=local, domain=domain)


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
    message["Message-ID"] = make_msgid(domain=domain)
    message["Date"] = format_datetime(when or datetime.now(UTC))
    message["From"] = outgoing.sender.header()
    message["To"] = [mailbox.header() for mailbox in outgoing.to]
    if outgoing.cc:
        message["Cc"] = [mailbox.header() for mailbox in outgoing.cc]
    if outgoing.reply_to:
        message["Reply-To"] = [mailbox.header() for mailbox in outgoing.reply_to]
    if outgoing.in_reply_to:
        message["In-Reply-To"] = outgoing.in_reply_to
    if outgoing.references:
        message["References"] = " ".join(outgoing.references)
    message.set_raw("Subject", _encoded_text(outgoing.subject))
    for name, value in outgoing.headers.items():
        message[name] = value
    message.set_content(outgoing.body, charset="utf-8", cte="quoted-printable")
    return message


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
    sent = Sent(message_id=str(message["Message-ID"]), ses_message_id=response["MessageId"])
    if settings.outbox_dir:
        _write_outbox(Path(settings.outbox_dir), message, sent)
    return sent


def _write_outbox(folder: Path, message: EmailMessage, sent: Sent) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    (folder / f"{stamp}-{sent.ses_message_id}.eml").write_bytes(message.as_bytes())
