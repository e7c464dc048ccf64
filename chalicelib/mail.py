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


# Header lines stay within 78 characters (RFC 5322), as the email package
# folds them too. (RFC 2047 asks 76 of lines with encoded words; 78 keeps
# more names in one word, which some decoders, the email package's own
# among them, need: they keep the space between two adjacent words.)
_LINE = 78
# Headers are folded here; the ``email`` package must write them as they
# are: its refolding reparses them, which is slow and, for adjacent encoded
# words, wrong (it inserts a space between them). A line can only pass 76
# for an address longer than that, which no fold can split; RFC 5322 allows
# lines of 998.
_POLICY = SMTP.clone(max_line_length=998)


@dataclass(frozen=True)
class Mailbox:
    address: str  # ASCII (models.py keeps supporters' addresses so)
    name: str = ""

    def header(self, room: int = _LINE, after: int = 0) -> str:
        """The mailbox as it goes on the wire.

        ``room``: what its first line may hold; ``after``: characters that
        follow it on its last line (a comma).
        """
        if not self.address.isascii() or _UNSAFE_IN_ADDRESS.search(self.address):
            raise ValueError("not a plain ASCII address")
        name = " ".join(self.name.split())
        if not name:
            return self.address
        if name.isascii():  # quoted as needed
            lines = [formataddr((name, self.address)).rpartition(" <")[0]]
        else:
            lines = _encoded_words(name, room).split("\r\n")
        used = len(lines[-1]) + (_LINE - room if len(lines) == 1 else 0)
        fold = "\r\n " if used + len(self.address) + 3 + after > _LINE else " "
        return "\r\n".join(lines) + f"{fold}<{self.address}>"


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
    message = EmailMessage(policy=_POLICY)
    domain = outgoing.sender.address.rpartition("@")[2]
    message.set_raw("Message-ID", make_msgid(domain=domain))
    message.set_raw("Date", format_datetime(when or datetime.now(UTC)))
    message.set_raw("From", _mailboxes("From", (outgoing.sender,)))
    message.set_raw("To", _mailboxes("To", outgoing.to))
    if outgoing.cc:
        message.set_raw("Cc", _mailboxes("Cc", outgoing.cc))
    if outgoing.reply_to:
        message.set_raw("Reply-To", _mailboxes("Reply-To", outgoing.reply_to))
    if outgoing.in_reply_to:
        message.set_raw("In-Reply-To", _message_ids([outgoing.in_reply_to]))
    if outgoing.references:
        message.set_raw("References", _message_ids(outgoing.references))
    message.set_raw("Subject", _encoded_text("Subject", outgoing.subject))
    for name, value in outgoing.headers.items():
        message[name] = value
    message.set_raw("MIME-Version", "1.0")
    # Parsed once here: the generator reads it back several times.
    message["Content-Type"] = 'text/plain; charset="utf-8"'
    message.set_raw("Content-Transfer-Encoding", "quoted-printable")
    message.set_payload(_quoted_printable(outgoing.body))
    return message


def _quoted_printable(text: str) -> str:
    """The body as ``set_content(..., cte="quoted-printable")`` encodes it."""
    from email import quoprimime

    lines = text.encode("utf-8").splitlines()
    normal = b"\r\n".join(lines) + b"\r\n" if lines else b""
    return quoprimime.body_encode(normal.decode("latin-1"), 76)


def _mailboxes(header: str, mailboxes: tuple[Mailbox, ...]) -> str:
    """One mailbox per line, each line within ``_LINE`` (the comma included)."""
    last = len(mailboxes) - 1
    return ",\r\n ".join(
        mailbox.header(
            room=(_LINE - len(header) - 2 if index == 0 else _LINE - 1),
            after=0 if index == last else 1,
        )
        for index, mailbox in enumerate(mailboxes)
    )


def _message_ids(ids: list[str] | tuple[str, ...]) -> str:
    for value in ids:
        if not (value.startswith("<") and value.endswith(">")) or _UNSAFE_IN_ID.search(value):
            raise ValueError("not a message id")
    return "\r\n ".join(ids)


_UNSAFE_IN_ID = re.compile(r"[\s,]")


def _encoded_words(value: str, room: int) -> str:
    """All of ``value`` as RFC 2047 encoded words, one per line.

    ``email.header.Header`` leaves ASCII runs unencoded, which breaks a
    display name holding a comma or a quote, and is slow. Here every
    character is in a word; each word takes as many characters as fit in 75
    (and the first in ``room``), Q- or B-encoded, whichever is shorter, so
    most names are a single word. Whitespace between words is not part of
    the text (RFC 2047, 6.2).
    """
    words: list[str] = []
    start, q_length, size = 0, 0, 0
    for index, char in enumerate(value):
        encoded = char.encode()
        char_q = sum(1 if byte in _Q_PLAIN else 3 for byte in encoded)
        limit = (room if not words else _LINE - 1) - _WORD_OVERHEAD
        fits = min(q_length + char_q, 4 * -(-(size + len(encoded)) // 3)) <= min(limit, 63)
        if not fits and index > start:
            words.append(_encoded_word(value[start:index]))
            start, q_length, size = index, 0, 0
        q_length += char_q
        size += len(encoded)
    words.append(_encoded_word(value[start:]))
    return "\r\n ".join(words)


_WORD_OVERHEAD = len("=?utf-8?b??=")
# Bytes a Q-encoded word carries as themselves (RFC 2047, 5(3)); space is "_".
_Q_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!*+-/ ")


def _encoded_word(text: str) -> str:
    from email import quoprimime

    data = text.encode()
    b_word = f"=?utf-8?b?{b64encode(data).decode()}?="
    q_word = quoprimime.header_encode(data, "utf-8")
    return q_word if len(q_word) <= len(b_word) else b_word


def _encoded_text(header: str, value: str) -> str:
    """An unstructured header value, folded so that it unfolds unchanged.

    The ``email`` package folds a mixed ASCII/non-ASCII subject with the
    space before the fold kept, which readers unfold as a double space;
    encoding the whole value as RFC 2047 words avoids that.
    """
    value = " ".join(value.split())
    if value.isascii():
        return value
    return _encoded_words(value, _LINE - len(header) - 2)


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
    try:
        message = build(outgoing)
    except ValueError:
        # An address no header can carry (e.g. stored before such
        # addresses were refused): no retry will cure it.
        raise MailError("InvalidAddress", transient=False) from None
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
