"""Run inside an unzipped deployment package: import the app, render everything.

Usage: python render_all.py  (cwd = the unzipped package; stage env set)
Prints one line per rendered template and exits non-zero on any failure.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))

import app
from chalicelib import compose, letters
from chalicelib.lifecycle import Status
from chalicelib.models import RequestRecord
from chalicelib.settings import get_settings

assert Path.cwd() / "templates" == letters.TEMPLATES_DIR, letters.TEMPLATES_DIR
assert Path(app.__file__).parent == Path.cwd(), app.__file__

settings = get_settings()
rendered = []
for province in (None, "QC", "BC", "AB"):
    for language in ("en", "fr"):
        record = RequestRecord(
            request_id="pkg-test",
            status=Status.SENT,
            first_name="Zoë",
            last_name="Côté-Lévesque",
            email="zoe@example.org",
            language=language,  # type: ignore[arg-type]
            province=province,
            created_at=datetime.now(UTC),
            sent_at=datetime.now(UTC),
            due_date=date(2026, 12, 28),
        )
        for make in (compose.verification_email, compose.sent_notice):
            message = make(settings, record)
            assert "Zoë" in message.body
            rendered.append(message.subject)
        for letter_language in ("en", "fr"):
            letter = compose.request_letter(
                settings.model_copy(update={"letter_language": letter_language}),
                record,
                date(2026, 11, 27),
                date(2026, 12, 28),
            )
            assert "Côté-Lévesque" in letter.body
            rendered.append(letter.subject)
        chased = dataclasses.replace(
            record,
            federal_due_date=date(2026, 12, 28),
            message_id="<m@takeback.example>",
            ses_message_id="ses-id",
            followed_up_on=date(2026, 12, 29),
        )
        refused = dataclasses.replace(chased, refused_at=datetime.now(UTC), followed_up_on=None)
        for chase_record in (chased, refused):
            for chase_message in (
                compose.follow_up_letter,
                compose.complaint_kit,
                compose.complaint_reminder,
            ):
                for letter_language in ("en", "fr"):
                    message = chase_message(
                        settings.model_copy(update={"letter_language": letter_language}),
                        chase_record,
                        date(2026, 12, 29),
                    )
                    assert "Zoë" in message.body
                    rendered.append(message.subject)

record = RequestRecord(
    request_id="pkg-test",
    status=Status.SENT,
    first_name="Zoë",
    last_name="Côté",
    email="zoe@example.org",
    language="fr",
    created_at=datetime.now(UTC),
    sent_at=datetime.now(UTC),
    due_date=date(2026, 12, 28),
)
pages = {
    "confirm": {"record": record, "pending": True, "status_token": "t"},
    "status": {
        "record": record,
        "notice": "confirmed",
        "problem": None,
        "status_token": "t",
        "reports": ["response_received", "extension_notice", "info_requested", "refused"],
    },
    "problems": {"problems": [("Email", "bad")], "back": "https://example.org"},
    "refused": {"reason": "bad_token"},
    "forgotten": {},
}
for name, context in pages.items():
    for language in ("en", "fr"):
        html = letters.render_page(name, language, {"campaign_website": "https://x", **context})
        assert f'lang="{language}"' in html
        rendered.append(name)
runtime = {p.name for p in (Path.cwd() / "templates" / "pages").glob("*.html.j2")} - {
    "base.html.j2"
}
assert runtime == {f"{name}.html.j2" for name in pages}, runtime
loaded = {name for _, name in letters.environment().cache or {}}
shipped = {
    str(path.relative_to(Path.cwd() / "templates"))
    for folder in ("letters", "emails", "pages")
    for path in (Path.cwd() / "templates" / folder).glob("*.j2")
}
assert shipped <= loaded, shipped - loaded
print(f"rendered {len(rendered)} messages and pages from all {len(shipped)} runtime templates")
