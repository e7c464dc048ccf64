"""MIME building: encoded names survive, nothing leaks into other headers."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.utils import getaddresses

import pytest

from chalicelib.mail import Mailbox, Outgoing, build

NAMES = ["Zoë Côté-Lévesque", "Nguyễn Thị Minh Khai", "O'Brien, Seán", "李小龍"]


def roundtrip(outgoing: Outgoing):  # type: ignore[no-untyped-def]
    raw = build(outgoing).as_bytes()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    raw.decode("ascii")  # everything on the wire is 7-bit
    return message_from_bytes(raw, policy=policy.default)


@pytest.mark.parametrize("name", NAMES)
def test_display_names_and_subject_survive_encoding(name: str) -> None:
    parsed = roundtrip(
        Outgoing(
            sender=Mailbox("requests@takeback.example", f"{name} via Take Back"),
            to=(Mailbox("privacy@clearview.ai", "Clearview AI"),),
            cc=(Mailbox("zoe@example.com", name),),
            reply_to=(Mailbox("zoe@example.com", name),),
            subject=f"Demande d'accès – {name} (réf. abc)",
            body=f"Bonjour {name},\n",
        )
    )
    assert parsed["From"].addresses[0].display_name == f"{name} via Take Back"
    assert parsed["From"].addresses[0].addr_spec == "requests@takeback.example"
    assert parsed["Cc"].addresses[0].display_name == name
    assert parsed["Reply-To"].addresses[0].addr_spec == "zoe@example.com"
    assert parsed["Subject"] == f"Demande d'accès – {name} (réf. abc)"
    assert parsed.get_content().replace("\r\n", "\n") == f"Bonjour {name},\n"


def test_message_id_date_and_threading_headers() -> None:
    parsed = roundtrip(
        Outgoing(
            sender=Mailbox("requests@takeback.example"),
            to=(Mailbox("privacy@clearview.ai"),),
            subject="Follow-up",
            body="text\n",
            in_reply_to="<original@takeback.example>",
            references=("<original@takeback.example>",),
        )
    )
    assert parsed["Message-ID"].endswith("@takeback.example>")
    assert parsed["Date"]
    assert parsed["In-Reply-To"] == "<original@takeback.example>"
    assert parsed["References"] == "<original@takeback.example>"


def test_a_subject_cannot_inject_headers() -> None:
    parsed = roundtrip(
        Outgoing(
            sender=Mailbox("requests@takeback.example"),
            to=(Mailbox("privacy@clearview.ai"),),
            subject="Hello\r\nBcc: victim@example.org",
            body="x\n",
        )
    )
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Hello Bcc: victim@example.org"


def test_long_body_lines_are_wrapped_on_the_wire() -> None:
    raw = build(
        Outgoing(
            sender=Mailbox("requests@takeback.example"),
            to=(Mailbox("privacy@clearview.ai"),),
            subject="x",
            body="é" * 3000 + "\n",
        )
    ).as_bytes()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78


@pytest.mark.parametrize(
    "name",
    [
        "李" * 100,  # 300 bytes of UTF-8: several encoded words
        "Zoë " * 25,
        'Ada "the Countess" Lovelace\\',
        "Smith, John",
    ],
)
def test_long_and_awkward_names_roundtrip_within_line_limits(name: str) -> None:
    outgoing = Outgoing(
        sender=Mailbox("requests@takeback.example", f"{name} via Take Back"),
        to=(Mailbox("privacy@clearview.ai", "Clearview AI"), Mailbox("b@example.org", name)),
        cc=(Mailbox("averyveryverylongaddress.of.someone@subdomain.example.org", name),),
        subject=f"Demande d'accès – {name}",
        body="x\n",
    )
    raw = build(outgoing).as_bytes()
    lines = raw.split(b"\r\n")
    assert max(len(line) for line in lines) <= 78
    # Decoded as RFC 2047 says (whitespace between encoded words ignored);
    # the email package's own phrase parser gets long encoded names wrong,
    # even those it folds itself.
    parsed = message_from_bytes(raw, policy=policy.compat32)

    def names(header: str) -> list[str]:
        return [
            str(make_header(decode_header(name))).strip()
            for name, _ in getaddresses([str(parsed[header])])
        ]

    clean = " ".join(name.split())
    assert names("To") == ["Clearview AI", clean]
    assert names("Cc") == [clean]
    assert names("From") == [f"{clean} via Take Back"]
    assert str(make_header(decode_header(str(parsed["Subject"])))) == f"Demande d'accès – {clean}"


@pytest.mark.parametrize(
    "address", ["a@b.org\r\nBcc: victim@example.org", "a b@c.org", "a@b.org>", "josé@example.org"]
)
def test_an_address_that_could_break_a_header_is_refused(address: str) -> None:
    with pytest.raises(ValueError):
        build(
            Outgoing(
                sender=Mailbox("requests@takeback.example"),
                to=(Mailbox(address, "Someone"),),
                subject="x",
                body="x\n",
            )
        )


def test_threading_ids_cannot_inject_headers() -> None:
    with pytest.raises(ValueError):
        build(
            Outgoing(
                sender=Mailbox("requests@takeback.example"),
                to=(Mailbox("privacy@clearview.ai"),),
                subject="x",
                body="x\n",
                in_reply_to="<a@b>\r\nBcc: victim@example.org",
            )
        )


def test_a_very_long_address_after_a_long_name_is_not_refolded_wrongly() -> None:
    # No fold can split an address: its line may pass 76 (RFC 5322 allows
    # 998), and the email package must not reparse the encoded words.
    address = "a" * 64 + "@" + "sub." * 10 + "example.org"
    name = "Émilie-Geneviève Fontaine-Côté de la Rochefoucauld"
    raw = build(
        Outgoing(
            sender=Mailbox("requests@takeback.example"),
            to=(Mailbox(address, name), Mailbox("b@example.org", name)),
            subject="x",
            body="x\n",
        )
    ).as_bytes()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    parsed = message_from_bytes(raw, policy=policy.compat32)
    decoded = [
        (str(make_header(decode_header(n))).strip(), a) for n, a in getaddresses([parsed["To"]])
    ]
    assert decoded == [(name, address), (name, "b@example.org")]
