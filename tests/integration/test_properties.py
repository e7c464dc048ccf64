"""Property-based tests of ``POST /requests`` (Hypothesis; issue 6).

Arbitrary JSON, form bodies, headers and unicode go through
``chalice.test.Client`` to the app, which stores into the moto server. The
properties: never a 5xx; every 4xx JSON answer names the fields in an
``errors`` object; nothing but clean, re-validating requests is stored, and
no item carries an attribute the store does not define.

The ``aws`` fixture resets the moto server once per test function, not per
generated example, so invariants are checked per example on the item a
submission created (by id), and over every item of the table after the
examples. The local stage allows 100000 submissions an hour per IP and 1000
per email address, and the generated addresses vary, so the rate limits never
answer. The number of generated inputs is printed per test (run with ``-s``)
and once more for the module.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chalicelib.models import PROVINCES, RequestRecord, parse_submission
from tests.integration.helpers import headers as lower_headers

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MAX_BODY_BYTES = 16 * 1024
ALLOWED_ORIGINS = ("http://127.0.0.1:8080", "http://localhost:8080")
THANK_YOU = ("http://127.0.0.1:8080/thanks/", "http://127.0.0.1:8080/fr/merci/")
FIELDS = ("first_name", "last_name", "email", "province", "language", "consent_updates")
# Every field a 4xx answer may name: the form's, the body's, the human check's.
ERROR_FIELDS = frozenset(FIELDS) | {"website", "body", "email", "captcha"}

# What each kind of item may hold: the request's own fields and the store's
# bookkeeping, the duplicate lock, the rate counters.
STORE_OWN = frozenset(
    {"pk", "record_type", "email_key", "expires_at", "updated_at", "history"}
    | {"mail_queue", "retry_at", "send_attempts"}
)
ALLOWED_ATTRIBUTES = {
    "request": frozenset(RequestRecord.__dataclass_fields__) | STORE_OWN,
    "email_lock": frozenset({"pk", "record_type", "request_id", "expires_at"}),
    "rate_counter": frozenset({"pk", "record_type", "hits", "expires_at"}),
    "suppression": frozenset({"pk", "record_type", "reason", "suppressed_at"}),
}

# Generated inputs per property (replays while shrinking included), and the
# status codes they got: printed so the lead can report them.
RUNS: Counter[str] = Counter()
STATUSES: dict[str, Counter[int]] = {}

PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the working tree
    print_blob=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


# --- strategies -------------------------------------------------------------

# Any character UTF-8 can carry (no lone surrogates), except U+FFFD: the
# inputs never contain a replacement character, so one in the table can only
# come from a lossy decoding by the app.
ANY_CHAR = st.characters(codec="utf-8", exclude_characters="\ufffd")
ANY_TEXT = st.text(ANY_CHAR, max_size=30)
NAME_CHARS = st.characters(
    categories=("Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Zs", "Pd"), exclude_characters="\ufffd"
)
ODD_CHARS = st.characters(
    categories=("Cc", "Cf", "Zl", "Zp", "Co", "Mn", "So", "Sk"), exclude_characters="\ufffd"
) | st.sampled_from(list("<>{}[]\\/@|=;:\"`$%^*_~#&+!?'.- \t\n\r\x00\u200d\u200c\u202e\ufeff"))

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    ANY_TEXT,
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(ANY_CHAR, max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _repeat(unit: str, count: int) -> str:
    return unit * count


huge_strings = st.builds(
    _repeat,
    st.sampled_from(["a", "é", " ", "\x00", "😀", "a\u0301", "Zoë "]),
    st.integers(90, 9000),
)


def mostly(valid: st.SearchStrategy[Any], *wild: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field value that is valid four times in five, so that many
    submissions get through to the store, and anything else otherwise."""
    # (flatmap, as one_of would flatten the branches and lose the weights)
    odd = st.one_of(*wild)
    return st.sampled_from([True, True, True, True, False]).flatmap(
        lambda keep: valid if keep else odd
    )


LETTERS = st.characters(categories=("Lu", "Ll", "Lt", "Lo"), exclude_characters="\ufffd")
plausible_names = st.builds(
    lambda head, rest: head + rest, LETTERS, st.text(NAME_CHARS, max_size=39)
)
tainted_names = st.builds(
    lambda head, odd, tail: head + odd + tail, plausible_names, ODD_CHARS, plausible_names
)
name_values = mostly(
    st.one_of(
        plausible_names,
        st.sampled_from(
            [
                "Zoë",
                "O'Brien",
                "Nguyễn Thị",
                "李小龍",
                "محمد",
                "Jean-Luc",
                "A\u0301lvaro",
                "  Zoë  ",
            ]
        ),
    ),
    st.text(NAME_CHARS, max_size=10),
    tainted_names,
    ANY_TEXT,
    huge_strings,
    json_values,
)
LOCAL_PART = st.from_regex(r"[A-Za-z][A-Za-z0-9_+-]{0,16}", fullmatch=True)
DOMAINS = [
    "example.org",
    "Example.COM",
    "exämple.ca",
    "xn--exmple-cua.ca",
    "sub.example.net",
    "例え.jp",
]
# A random hex part in every address: submissions rarely share one, so the
# per-address rate limit and the duplicate check stay out of the way.
varied_emails = st.builds(
    lambda local, number, domain: f"{local}.{number.hex[:12]}@{domain}",
    LOCAL_PART,
    st.uuids(),
    st.sampled_from(DOMAINS),
)
email_values = mostly(
    st.one_of(varied_emails, varied_emails.map(lambda email: f"  {email.upper()} ")),
    varied_emails.map(lambda email: email.replace("@", "@@")),
    st.emails(),
    st.builds(lambda local, odd: f"{local}{odd}@example.org", LOCAL_PART, ODD_CHARS),
    ANY_TEXT,
    huge_strings,
    json_values,
)
province_values = mostly(
    st.sampled_from([*sorted(PROVINCES), " qc ", "on", "", None]),
    st.sampled_from(["XX", "Québec", "QC\n", "Q\u0421", "ＱＣ"]),
    ANY_TEXT,
    json_values,
)
language_values = mostly(
    st.sampled_from(["en", "fr", "EN", " fr ", "", None]),
    st.sampled_from(["de", "fr-CA", "ｅｎ", "english"]),
    ANY_TEXT,
    json_values,
)
flag_values = mostly(
    st.sampled_from([True, False, "on", "off", "yes", "oui", "non", "1", "0", "", None]),
    st.sampled_from(["maybe", 1, 0, 1.0, [], {}]),
    ANY_TEXT,
)
# The honeypot: mostly left empty, as by people; sometimes filled, as by bots.
honeypot_values = mostly(st.sampled_from(["", None]), st.just("http://spam.example"), json_values)
FIELD_STRATEGIES = {
    "first_name": name_values,
    "last_name": name_values,
    "email": email_values,
    "province": province_values,
    "language": language_values,
    "consent_updates": flag_values,
}
random_keys = st.one_of(
    st.sampled_from(
        [
            *("pk", "record_type", "status", "request_id", "email_key", "expires_at", "history"),
            *("verified_at", "sent_at", "due_date", "first_name ", "Email", "__proto__", ""),
        ]
    ),
    st.text(ANY_CHAR, max_size=12),
)
# Mostly every field present (so that many submissions reach the store),
# sometimes any of them missing, plus keys the form does not have.
submission_dicts = st.builds(
    lambda fields, optional, extra: {**extra, **fields, **optional},
    st.fixed_dictionaries(
        {"first_name": name_values, "last_name": name_values, "email": email_values}
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "province": province_values,
            "language": language_values,
            "consent_updates": flag_values,
            "website": honeypot_values,
        },
    ),
    st.dictionaries(random_keys, json_values, max_size=3),
)
sparse_dicts = st.fixed_dictionaries({}, optional=dict(FIELD_STRATEGIES)).flatmap(
    lambda fields: st.dictionaries(random_keys, json_values, max_size=4).map(
        lambda extra: {**extra, **fields}
    )
)
json_objects = st.one_of(
    submission_dicts, submission_dicts, submission_dicts, sparse_dicts, json_values
)

NASTY_JSON_TEXT = [
    "",
    " ",
    "null",
    '"text"',
    "{nope",
    '{"first_name": NaN, "last_name": Infinity, "email": -Infinity}',
    '{"email": "a1@example.org", "email": "b1@example.org", "first_name": "A", "last_name": "B"}',
    "\ufeff{}",
    '{"first_name": "\\ud800", "last_name": "B", "email": "lone.surrogate@example.org"}',
    '{"first_name": "\\u0000", "last_name": "B", "email": "nul@example.org"}',
]
# Deep nesting, and numbers longer than int() converts (built, not listed,
# so that Hypothesis does not print 20 kB reprs).
deep_json = st.builds(
    _repeat, st.sampled_from(["[", '{"a":', '{"first_name":', "[{}, "]), st.integers(10, 5000)
)
long_numbers = st.builds(
    lambda prefix, digits: prefix + "9" * digits + "}" * prefix.count("{"),
    st.sampled_from(["", '{"first_name": ', '{"consent_updates": ']),
    st.integers(4000, 6000),
)


def _dump(value: Any, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")


json_bodies = st.one_of(
    st.builds(_dump, json_objects, st.booleans()),
    st.builds(_dump, json_objects, st.booleans()),
    st.builds(_dump, json_objects, st.booleans()),
    st.sampled_from(NASTY_JSON_TEXT).map(str.encode),
    deep_json.map(str.encode),
    long_numbers.map(str.encode),
    st.builds(
        lambda raw, cut: raw[:cut],
        st.builds(_dump, submission_dicts, st.booleans()),
        st.integers(0, 60),
    ),
    st.binary(max_size=64).filter(lambda raw: b"\xef\xbf\xbd" not in raw),
)

# Form bodies: well-encoded pairs, raw text (control characters, & = + %),
# invalid percent-escapes and bytes that are not UTF-8.
BAD_ESCAPES = ["%", "%z", "%zz", "%4", "%FF", "%C3", "%C3%28", "%E9", "%ED%A0%80", "%00", "%0D%0A"]
raw_bytes = st.binary(min_size=1, max_size=8).filter(lambda raw: b"\xef\xbf\xbd" not in raw)
form_tokens = st.one_of(
    ANY_TEXT.map(quote_plus).map(str.encode),
    ANY_TEXT.map(str.encode),
    st.sampled_from([*BAD_ESCAPES, "+", "%2B", "%26", "%3D", "&", "=", ";"]).map(str.encode),
    raw_bytes,
)
form_keys = st.one_of(
    st.sampled_from((*FIELDS, "website", "first%5Fname", "EMAIL", "email[]")).map(str.encode),
    form_tokens,
)


def _form_value(value: Any) -> str:
    """A generated field value the way a form posts it: always text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "on" if value else ""
    return json.dumps(value, ensure_ascii=False)


def _join_pairs(pairs: list[tuple[bytes, bytes | None]], separator: bytes) -> bytes:
    return separator.join(key if value is None else key + b"=" + value for key, value in pairs)


def _encoded_form(data: dict[str, Any], quoting: Callable[[str], str]) -> bytes:
    return "&".join(f"{quoting(key)}={quoting(_form_value(v))}" for key, v in data.items()).encode()


def _quote_all(text: str) -> str:
    return quote(text, safe="")


def _quote_latin1(text: str) -> str:
    """What a page in windows-1252 posts: "Zoë" as "Zo%EB" (not UTF-8)."""
    return quote_plus(text, encoding="latin-1", errors="xmlcharrefreplace")


def _form_with_noise(
    data: dict[str, Any], quoting: Callable[[str], str], noise: list[tuple[bytes, bytes | None]]
) -> bytes:
    parts = [_join_pairs(noise, b"&")] if noise else []
    return b"&".join([*parts, _encoded_form(data, quoting)])


plausible_forms = st.builds(
    _form_with_noise,
    submission_dicts,
    st.sampled_from([quote_plus, quote, _quote_all, _quote_latin1]),
    st.lists(st.tuples(form_keys, st.one_of(st.none(), form_tokens)), max_size=3),
)
wild_forms = st.builds(
    _join_pairs,
    st.lists(st.tuples(form_keys, st.one_of(st.none(), form_tokens, form_tokens)), max_size=8),
    st.sampled_from([b"&", b"&", b";", b"&&", b"\n"]),
)
form_bodies = st.one_of(
    plausible_forms,
    plausible_forms,
    wild_forms,
    st.builds(lambda body, noise: body + noise, plausible_forms, raw_bytes),
    st.binary(max_size=64).filter(lambda raw: b"\xef\xbf\xbd" not in raw),
    st.just(b"&".join([b"a=1"] * 60)),  # more fields than the parser takes
)

HEADER_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=60)
MEDIA_TYPES = [
    JSON,
    FORM,
    "APPLICATION/JSON",
    " application/json ",
    "multipart/form-data",
    "text/plain",
    "application/xml",
    "text/html",
    "application/json-patch+json",
    "application/octet-stream",
    "*/*",
    "",
]
PARAMETERS = [
    "",
    "; charset=utf-8",
    ";charset=UTF-8",
    "; charset=iso-8859-1",
    '; charset="utf-8"',
    "; charset=utf-16",
    "; boundary=----x",
    ";;",
    ", text/plain",
]
content_types = mostly(
    st.builds(
        lambda media, parameter: media + parameter,
        st.sampled_from([JSON, FORM, "APPLICATION/JSON", " application/json "]),
        st.sampled_from(PARAMETERS),
    ),
    st.builds(
        lambda media, parameter: media + parameter,
        st.sampled_from(MEDIA_TYPES),
        st.sampled_from(PARAMETERS),
    ),
    HEADER_TEXT,
)
accepts = st.one_of(
    st.sampled_from(
        [
            *(JSON, "text/html", "*/*", "application/json, text/html"),
            *("text/html;q=0.9, application/json", "application/octet-stream", "image/png", ""),
        ]
    ),
    HEADER_TEXT,
)
accept_languages = st.one_of(
    st.sampled_from(["fr-CA,fr;q=0.9", "en-US", "*", "fr", "de-DE", "q=;;,", ""]), HEADER_TEXT
)
origins = st.one_of(
    st.sampled_from(
        [*ALLOWED_ORIGINS, "http://evil.example", "null", "http://127.0.0.1:8080/", ""]
    ),
    HEADER_TEXT,
)
header_sets = st.fixed_dictionaries(
    {},
    optional={
        "content-type": content_types,
        "accept": accepts,
        "accept-language": accept_languages,
        "origin": origins,
        "referer": HEADER_TEXT,
        "x-forwarded-for": HEADER_TEXT,
    },
)
any_bodies = st.one_of(json_bodies, form_bodies)


# --- checks -----------------------------------------------------------------


class Observer:
    """Posts to ``/requests`` and checks what every answer and item must be."""

    def __init__(self, name: str, client: Any, table_name: str) -> None:
        import boto3

        self.name = name
        self.client = client
        self.table_name = table_name
        self.dynamodb = boto3.client("dynamodb")
        self.statuses: Counter[int] = STATUSES.setdefault(name, Counter())
        self.stored_ids: set[str] = set()
        # The input that created each request: a later submission with the
        # same address gets the same request back (the duplicate check), so
        # a bad item is reported with the input that stored it.
        self.origin: dict[str, str] = {}
        self.last_input = ""

    def post(self, headers: dict[str, str], body: bytes) -> Any:
        RUNS[self.name] += 1
        self.last_input = f"headers={headers!r} body={body[:400]!r}"
        response = self.client.http.post("/requests", headers=headers, body=body)
        self.statuses[response.status_code] += 1
        check_response(response, headers, body)
        return response

    def stored(self, request_id: str) -> dict[str, Any] | None:
        from boto3.dynamodb.types import TypeDeserializer

        item = self.dynamodb.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"request#{request_id}"}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        deserializer = TypeDeserializer()
        return {key: deserializer.deserialize(value) for key, value in item.items()}

    def check_created(self, response: Any) -> dict[str, Any] | None:
        """The request a 202 answer names, checked; None for a honeypot's."""
        assert response.status_code == 202, response.body
        reply = json.loads(response.body)
        assert set(reply) == {"id", "status"} and reply["status"] == "pending_verification", reply
        item = self.stored(reply["id"])
        if item is not None:
            origin = self.origin.setdefault(reply["id"], self.last_input)
            try:
                check_item(item)
            except AssertionError as problem:
                raise AssertionError(f"{problem}\nstored by the input {origin}") from None
            self.stored_ids.add(reply["id"])
        return item

    def report(self) -> None:
        print(
            f"\n[hypothesis] {self.name}: {RUNS[self.name]} generated inputs, "
            f"{len(self.stored_ids)} requests stored; statuses {dict(sorted(self.statuses.items()))}"
        )


def _is_json(response: Any) -> bool:
    # API Gateway sends a proxy answer without Content-Type as application/json.
    media = lower_headers(response).get("content-type", JSON)
    return not media.startswith("text/html")


def check_response(response: Any, headers: dict[str, str], body: bytes) -> None:
    context = f"headers={headers!r} body={body[:300]!r}"
    assert response.status_code < 500, (
        f"{response.status_code} {response.body[:500]!r} for {context}"
    )
    answer = lower_headers(response)
    origin = headers.get("origin")
    if origin in ALLOWED_ORIGINS:
        assert answer.get("access-control-allow-origin") == origin, context
    else:
        assert "access-control-allow-origin" not in answer, context
    if 400 <= response.status_code < 500 and _is_json(response):
        reply = json.loads(response.body)
        assert isinstance(reply, dict) and isinstance(reply.get("errors"), dict), (
            f"{response.status_code} {reply!r} for {context}"
        )
        errors = reply["errors"]
        assert errors, context
        for field, message in errors.items():
            assert field in ERROR_FIELDS, (field, context)
            assert isinstance(message, str) and message.strip(), (field, message, context)
    if response.status_code == 303:
        assert answer["location"] in THANK_YOU, answer["location"]


def _no_control_characters(text: str) -> bool:
    return not any(
        (unicodedata.category(char)[0] == "C" and char not in "\u200c\u200d")
        or unicodedata.category(char) in ("Zl", "Zp")
        for char in text
    )


def check_item(item: dict[str, Any]) -> None:
    """An item is one the store defines; a request re-validates unchanged."""
    kind = item.get("record_type")
    assert kind in ALLOWED_ATTRIBUTES, item
    extra = set(item) - ALLOWED_ATTRIBUTES[kind]
    assert not extra, f"{kind} item with unknown attributes {sorted(extra)}: {item!r}"
    assert "@" not in str(item["pk"]), item["pk"]  # keys hold hashes, not addresses
    if kind != "request":
        return
    assert item["pk"] == f"request#{item['request_id']}", item
    assert item["status"] == "pending_verification", item
    assert re.fullmatch(r"[0-9a-f]{64}", str(item["email_key"])), item["email_key"]
    form = {field: item[field] for field in FIELDS if field in item}
    submission, problems = parse_submission(form)
    assert submission is not None, f"stored request does not re-validate: {problems} {item!r}"
    assert submission.first_name == item["first_name"], item
    assert submission.last_name == item["last_name"], item
    assert submission.email == item["email"], item
    assert submission.province == item.get("province"), item
    assert submission.language == item["language"] and item["language"] in ("en", "fr"), item
    assert submission.consent_updates is item.get("consent_updates", False), item
    assert ("consent_given_at" in item) is submission.consent_updates, item
    for field in ("first_name", "last_name", "email"):
        value = item[field]
        assert _no_control_characters(value), (field, value)
        assert "\ufffd" not in value, f"lossy decoding stored in {field}: {value!r}"
        assert value == value.strip() and "  " not in value, (field, value)


def check_table(items: list[dict[str, Any]], created: set[str]) -> None:
    for item in items:
        check_item(item)
    requests = {item["request_id"] for item in items if item["record_type"] == "request"}
    assert created <= requests, created - requests
    locks = [item for item in items if item["record_type"] == "email_lock"]
    assert {lock["request_id"] for lock in locks} == requests  # one lock per request
    assert len(
        {item["email"].lower() for item in items if item["record_type"] == "request"}
    ) == len(requests), "two requests for one address"


@pytest.fixture
def observer(
    request: pytest.FixtureRequest, client: Any, stage_env: dict[str, str], table_items: Any
) -> Iterator[Observer]:
    watcher = Observer(request.node.name, client, stage_env["TABLE_NAME"])
    yield watcher


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Iterator[None]:
    yield
    print(f"\n[hypothesis] generated inputs in total: {sum(RUNS.values())} {dict(RUNS)}")


# --- properties -------------------------------------------------------------


def test_arbitrary_json(observer: Observer, table_items: Any) -> None:
    @PROPERTY_SETTINGS
    @given(body=json_bodies, accept=st.sampled_from([JSON, "text/html", "*/*", ""]))
    # Always tried, whatever Hypothesis draws: nesting deeper than the JSON
    # parser's recursion limit, and a number longer than int() converts.
    @example(body=b"[" * 5000, accept=JSON)
    @example(body=b'{"a":' * 3000, accept="text/html")
    @example(body=b'{"first_name": ' + b"9" * 5000 + b"}", accept=JSON)
    def post_json(body: bytes, accept: str) -> None:
        response = observer.post({"content-type": JSON, "accept": accept}, body)
        if response.status_code == 202:
            observer.check_created(response)

    post_json()
    observer.report()
    check_table(table_items(), observer.stored_ids)


def test_json_objects_match_the_model(observer: Observer, table_items: Any) -> None:
    """Exactly what ``parse_submission`` accepts is stored, and cleaned."""
    first_seen: dict[str, dict[str, Any]] = {}

    @PROPERTY_SETTINGS
    @given(data=st.one_of(submission_dicts, sparse_dicts), ascii_only=st.booleans())
    def post_object(data: dict[str, Any], ascii_only: bool) -> None:
        body = _dump(data, ascii_only)
        response = observer.post({"content-type": JSON, "accept": JSON}, body)
        expected, problems = parse_submission(data)
        if len(body) > MAX_BODY_BYTES:
            assert response.status_code == 413, response.body
        elif expected is None:
            assert response.status_code == 422, response.body
            assert set(json.loads(response.body)["errors"]) == set(problems)
        else:
            item = observer.check_created(response)
            if expected.is_bot:
                assert item is None, "a filled honeypot stored a request"
                return
            assert item is not None, f"accepted but not stored: {data!r}"
            assert item["email"].lower() == expected.email.lower()
            first = first_seen.setdefault(item["request_id"], expected.model_dump())
            for field in ("first_name", "last_name", "email", "province", "language"):
                assert item.get(field) == first[field], (field, item, first)

    post_object()
    observer.report()
    check_table(table_items(), observer.stored_ids)


LATIN1_FORM = b"first_name=Zo%EB&last_name=C%F4t%E9&email=zoe.latin1%40example.org"


def test_arbitrary_form_bodies(observer: Observer, table_items: Any) -> None:
    @PROPERTY_SETTINGS
    @given(
        body=form_bodies,
        content_type=st.sampled_from(
            [FORM, FORM + "; charset=UTF-8", FORM + "; charset=iso-8859-1"]
        ),
        accept=st.sampled_from([JSON, "text/html", "", "*/*"]),
    )
    # A page in windows-1252 posting "Zoë Côté" without saying so, and saying so;
    # and the same name as raw Latin-1 bytes.
    @example(body=LATIN1_FORM, content_type=FORM, accept=JSON)
    @example(body=LATIN1_FORM, content_type=FORM + "; charset=iso-8859-1", accept=JSON)
    @example(
        body="first_name=Zoë&last_name=Côté&email=raw@example.org".encode("latin-1"),
        content_type=FORM,
        accept=JSON,
    )
    def post_form(body: bytes, content_type: str, accept: str) -> None:
        response = observer.post({"content-type": content_type, "accept": accept}, body)
        if response.status_code == 202:
            observer.check_created(response)

    post_form()
    observer.report()
    check_table(table_items(), observer.stored_ids)


def test_arbitrary_headers(observer: Observer, table_items: Any) -> None:
    @PROPERTY_SETTINGS
    @given(headers=header_sets, body=any_bodies)
    # Types outside the old route list once got Chalice's 415 without "errors".
    @example(headers={"content-type": ""}, body=b"{}")
    @example(headers={"content-type": "application/xml", "accept": JSON}, body=b"<a/>")
    @example(headers={"content-type": "text/plain; charset=utf-8"}, body=b"hi")
    def post_anything(headers: dict[str, str], body: bytes) -> None:
        response = observer.post(headers, body)
        if response.status_code == 202:
            observer.check_created(response)

    post_anything()
    observer.report()
    check_table(table_items(), observer.stored_ids)


LATIN1_LETTERS = st.characters(
    min_codepoint=0x41, max_codepoint=0xFF, categories=("Lu", "Ll"), exclude_characters="×÷"
)
unicode_names = st.one_of(
    st.text(ANY_CHAR, min_size=1, max_size=40),
    plausible_names,
    tainted_names,
    st.builds(
        lambda base, marks: base + marks,
        plausible_names,
        st.text(st.characters(categories=("Mn", "Me", "Cf")), max_size=5),
    ),
    st.builds(unicodedata.normalize, st.sampled_from(["NFD", "NFKD"]), plausible_names),
    st.text(LATIN1_LETTERS, min_size=1, max_size=20),
)
latin1_names = st.text(LATIN1_LETTERS | st.sampled_from(" '-"), min_size=1, max_size=20)
ENCODINGS = ("json", "form", "form-latin-1")


def _encode(data: dict[str, str], encoding: str) -> tuple[dict[str, str], bytes]:
    if encoding == "json":
        return {"content-type": JSON, "accept": JSON}, _dump(data, False)
    if encoding == "form":
        return {"content-type": FORM, "accept": JSON}, urlencode(data).encode()
    # What a page or client working in windows-1252 posts, saying so.
    body = urlencode(data, encoding="latin-1", errors="xmlcharrefreplace").encode()
    return {"content-type": f"{FORM}; charset=iso-8859-1", "accept": JSON}, body


def test_unicode_names_in_json_and_forms(observer: Observer, table_items: Any) -> None:
    """Names in any script: stored as the model cleans them, or refused.

    A form posted in Latin-1 may be refused (the app reads UTF-8), but what
    is stored is the name that was sent, never a lossy decoding of it.
    """
    first_seen: dict[str, dict[str, Any]] = {}

    @PROPERTY_SETTINGS
    @given(
        names=st.sampled_from(ENCODINGS).flatmap(
            lambda encoding: st.tuples(
                st.just(encoding),
                latin1_names if encoding == "form-latin-1" else unicode_names,
                latin1_names if encoding == "form-latin-1" else unicode_names,
            )
        ),
        email=varied_emails,
        language=st.sampled_from(["en", "fr"]),
    )
    def post_names(names: tuple[str, str, str], email: str, language: str) -> None:
        encoding, first, last = names
        data = {"first_name": first, "last_name": last, "email": email, "language": language}
        headers, body = _encode(data, encoding)
        response = observer.post(headers, body)
        expected, problems = parse_submission(data)
        if encoding == "form-latin-1" and response.status_code in (400, 415, 422):
            return
        if expected is None:
            assert response.status_code == 422, response.body
            assert set(json.loads(response.body)["errors"]) == set(problems)
            return
        item = observer.check_created(response)
        assert item is not None
        first_record = first_seen.setdefault(item["request_id"], expected.model_dump())
        assert (item["first_name"], item["last_name"]) == (
            first_record["first_name"],
            first_record["last_name"],
        ), f"sent {data!r} as {encoding}"

    post_names()
    observer.report()
    check_table(table_items(), observer.stored_ids)
