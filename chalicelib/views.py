"""HTTP: reading requests, negotiating JSON or HTML, shaping responses.

Everything a client can send ends in a 2xx/3xx/4xx; AWS being unreachable
ends in a 503 with Retry-After, never in a 500 or a half-written request.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode

from chalice.app import Request, Response

from chalicelib import i18n, journey, letters, store, tokens
from chalicelib.lifecycle import Status
from chalicelib.log import logger
from chalicelib.models import RequestRecord, parse_submission
from chalicelib.settings import get_settings

MAX_BODY_BYTES = 16 * 1024
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

View = Callable[..., Response]


class Refused(Exception):
    """A request refused deep in a view; carries the response to send instead."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def guarded(view: View) -> View:
    """Answer 503 (not 500) when AWS is throttling or unavailable."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return view(*args, **kwargs)
        except Refused as refused:
            return refused.response
        except (ClientError, BotoCoreError, store.StoreBusy) as exc:
            code = (
                exc.response["Error"]["Code"]
                if isinstance(exc, ClientError)
                else type(exc).__name__
            )
            logger().error("AWS unavailable", extra={"error": code})
            return Response(
                body={"errors": {"service": "temporarily unavailable, please retry"}},
                status_code=503,
                headers={"Retry-After": "30"},
            )

    return wrapper


# --- helpers --------------------------------------------------------------


def _media_type(request: Request) -> str:
    return (request.headers.get("content-type") or "").split(";")[0].strip().lower()


def _wants_json(request: Request) -> bool:
    accept = (request.headers.get("accept") or "").lower()
    return JSON in accept and "text/html" not in accept


def _language(request: Request, hint: object = None) -> str:
    # An explicit choice on the page (the language switch) beats the record's
    # or the form's language, which beats the browser's preference.
    query: Mapping[str, str] = request.query_params or {}
    if query.get("lang") in i18n.LANGUAGES:
        return query["lang"]
    if isinstance(hint, str) and hint.strip().lower() in i18n.LANGUAGES:
        return hint.strip().lower()
    return i18n.language_from(request.headers.get("accept-language"))


def _html(body: str, status: int = 200) -> Response:
    return Response(
        body=body,
        status_code=status,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        },
    )


def _page(request: Request, name: str, lang: str, status: int = 200, **context: Any) -> Response:
    # The language switch keeps the link's token: the page stays open.
    kept = {k: v for k, v in (request.query_params or {}).items() if k != "lang"}
    context = {
        "campaign_website": get_settings().campaign_website,
        "switch_query": urlencode(kept) + "&" if kept else "",
        **context,
    }
    return _html(letters.render_page(name, lang, context), status)


def _errors(
    request: Request, codes: dict[str, str], status: int, lang: str, as_html: bool
) -> Response:
    messages = i18n.problems(lang, codes)
    if as_html:
        labels = i18n.FIELD_LABELS[lang]
        listed = [(labels.get(field, field), text) for field, text in messages.items()]
        return _page(request, "problems", lang, status, problems=listed, back=_back_link(request))
    return Response(body={"errors": messages}, status_code=status)


def _charset(request: Request) -> str | None:
    """The body's declared charset (UTF-8 if none), or None if unknown."""
    import codecs

    for parameter in (request.headers.get("content-type") or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            try:
                return codecs.lookup(value.strip().strip('"')).name
            except LookupError:
                return None
    return "utf-8"


def _read_form(request: Request, media: str) -> dict[str, Any] | None:
    """The submitted fields, or None when the body cannot be read.

    Text is decoded strictly in the declared charset: a byte that does not
    decode is refused rather than stored as a replacement character.
    """
    charset = _charset(request)
    if charset is None:
        return None
    raw = request.raw_body or b""
    try:
        text = raw if isinstance(raw, str) else raw.decode(charset)
        if media == JSON:
            data = json.loads(text)
            return data if isinstance(data, dict) else None
        # A field sent twice is ambiguous; the first value is the one typed.
        pairs = parse_qs(
            text,
            keep_blank_values=True,
            strict_parsing=bool(text),
            max_num_fields=50,
            encoding=charset,
            errors="strict",
        )
    except (ValueError, RecursionError):  # malformed, or nested beyond reason
        return None
    return {name: values[0] for name, values in pairs.items()}


def _back_link(request: Request) -> str:
    referer = request.headers.get("referer") or ""
    origins = get_settings().allowed_origins
    if any(referer.startswith(origin + "/") or referer == origin for origin in origins):
        return referer
    return get_settings().campaign_website


# --- views ----------------------------------------------------------------


def _client_ip(request: Request) -> str | None:
    identity = (request.context or {}).get("identity") or {}
    ip = identity.get("sourceIp")
    return ip if isinstance(ip, str) else None


def _too_many(request: Request, over: store.OverLimit, lang: str, as_html: bool) -> Response:
    from chalicelib import limits

    field = "body" if limits.is_ip(over) else "email"
    response = _errors(request, {field: "rate_limited"}, 429, lang, as_html)
    response.headers["Retry-After"] = str(over.retry_after)
    return response


def _rejected(
    request: Request, problems: dict[str, str], status: int, lang: str, as_html: bool
) -> Response:
    """The answer to bad input, which still counts against the client's IP limit."""
    from chalicelib import limits

    try:
        store.count_hits(limits.for_ip(_client_ip(request)))
    except store.OverLimit as over:
        return _too_many(request, over, lang, as_html)
    return _errors(request, problems, status, lang, as_html)


@guarded
def create_request(request: Request) -> Response:
    from chalicelib import captcha, limits

    media = _media_type(request)
    as_html = media == FORM and not _wants_json(request)
    lang = _language(request)
    if len(request.raw_body or b"") > MAX_BODY_BYTES:
        return _rejected(request, {"body": "too_large"}, 413, lang, as_html)
    if media not in (JSON, FORM):
        return _rejected(request, {"body": "unsupported"}, 415, lang, as_html)
    data = _read_form(request, media)
    if data is None:
        return _rejected(request, {"body": "malformed"}, 400, lang, as_html)
    lang = _language(request, data.get("language"))
    submission, problems = parse_submission(data)
    if submission is None:
        return _rejected(request, problems, 422, lang, as_html)
    ip = _client_ip(request)
    if captcha.required():
        _human_check(request, data, lang, as_html)
        ip = None  # counted there: not again in the create transaction
    try:
        record = journey.submit(submission, limits.for_submission(ip, submission.email))
    except store.OverLimit as over:
        return _too_many(request, over, lang, as_html)
    if as_html:
        return Response(
            body="",
            status_code=303,
            headers={"Location": get_settings().thank_you_url(submission.language)},
        )
    return Response(body={"id": record.request_id, "status": record.status.value}, status_code=202)


def _human_check(request: Request, data: dict[str, Any], lang: str, as_html: bool) -> None:
    """The stage's captcha; raises Refused. The IP is counted first, so a
    blocked IP costs no call to the provider."""
    from chalicelib import captcha, limits

    try:
        store.count_hits(limits.for_ip(_client_ip(request)))
    except store.OverLimit as over:
        raise Refused(_too_many(request, over, lang, as_html)) from None
    try:
        passed = captcha.passed(data, _client_ip(request))
    except captcha.CaptchaUnavailable:
        response = _errors(request, {"captcha": "unavailable"}, 503, lang, as_html)
        response.headers["Retry-After"] = "30"
        raise Refused(response) from None
    if not passed:
        raise Refused(_errors(request, {"captcha": "invalid"}, 422, lang, as_html))


def _authorised(
    request: Request, request_id: str, purpose: tokens.Purpose, max_age_days: int | None
) -> RequestRecord:
    """The request the link's token opens; raises Refused (403/404) otherwise."""
    _checked_token(request, request_id, purpose, max_age_days)
    return _open_request(request, request_id)


def _open_request(request: Request, request_id: str) -> RequestRecord:
    """The request, unless it is gone or forgotten: Refused (404) then."""
    record = store.get_request(request_id)
    if record is None or record.status == Status.FORGOTTEN:
        raise _not_found(request)
    return record


def _checked_token(
    request: Request, request_id: str, purpose: tokens.Purpose, max_age_days: int | None
) -> str | None:
    """The address fingerprint the link's token carries; Refused (403) if it is bad."""
    query: Mapping[str, str] = request.query_params or {}
    try:
        return tokens.check(query.get("token"), request_id, purpose, max_age_days)
    except tokens.BadToken:
        response = _refusal(request, 403, "bad_token", _language(request), _wants_json(request))
        raise Refused(response) from None


def _not_found(request: Request) -> Refused:
    return Refused(_refusal(request, 404, "not_found", _language(request), _wants_json(request)))


def _refusal(request: Request, status: int, reason: str, lang: str, as_json: bool) -> Response:
    if as_json:
        message = {
            "bad_token": "This link is invalid or has expired.",
            "not_found": "No such request (it may have expired or been deleted).",
        }[reason]
        return Response(body={"errors": {"token": message}}, status_code=status)
    return _page(request, "refused", lang, status, reason=reason)


def _status_body(record: RequestRecord) -> dict[str, Any]:
    return {
        "id": record.request_id,
        "status": record.status.value,
        "sent_at": record.sent_at.isoformat() if record.sent_at else None,
        "due_date": record.due_date.isoformat() if record.due_date else None,
        "extended": record.extended_at is not None,
        "history": record.history,
    }


@guarded
def show_confirm(request: Request, request_id: str) -> Response:
    record = _authorised(request, request_id, tokens.Purpose.CONFIRM, get_settings().verify_days)
    if _wants_json(request):
        return Response(body=_status_body(record), status_code=200)
    lang = _language(request, record.language)
    pending = record.status == Status.PENDING_VERIFICATION
    return _page(
        request,
        "confirm",
        lang,
        record=record,
        pending=pending,
        status_token=_status_token(record.request_id),
    )


@guarded
def confirm(request: Request, request_id: str) -> Response:
    verify_days = get_settings().verify_days
    email_key = _checked_token(request, request_id, tokens.Purpose.CONFIRM, verify_days)
    if email_key is not None and not _wants_json(request):
        # The page only needs the request's id: the write goes first, unread.
        try:
            journey.confirm(request_id, email_key)
        except LookupError:
            raise _not_found(request) from None
        return _to_status_page(request_id, "confirmed")
    record = journey.verify(request_id, _open_request(request, request_id))
    if _wants_json(request):
        return Response(body=_status_body(record), status_code=200)
    return _to_status_page(record.request_id, "confirmed")


def _to_status_page(request_id: str, notice: str) -> Response:
    """303 to the status page (relative, so it works under any API prefix)."""
    token = _status_token(request_id)
    location = f"../{request_id}?{urlencode({'token': token, 'notice': notice})}"
    return Response(body="", status_code=303, headers={"Location": location})


@guarded
def show_status(request: Request, request_id: str) -> Response:
    record = _authorised(request, request_id, tokens.Purpose.STATUS, None)
    if _wants_json(request):
        return Response(body=_status_body(record), status_code=200)
    return _status_page(request, record)


def _status_page(
    request: Request, record: RequestRecord, status: int = 200, problem: str | None = None
) -> Response:
    query: Mapping[str, str] = request.query_params or {}
    return _page(
        request,
        "status",
        _language(request, record.language),
        status,
        record=record,
        notice=query.get("notice") if status == 200 else None,
        problem=problem,
        status_token=_status_token(record.request_id),
        reports=_available_reports(record),
    )


def _available_reports(record: RequestRecord) -> list[str]:
    """The report buttons that make sense for the request right now."""
    from chalicelib.lifecycle import REPORTS, TRANSITIONS, Event

    order = [
        Event.RESPONSE_RECEIVED,
        Event.EXTENSION_NOTICE,
        Event.INFO_REQUESTED,
        Event.INFO_PROVIDED,
        Event.REFUSED,
    ]
    available = [e for e in order if e in REPORTS and record.status in TRANSITIONS[e].sources]
    if record.extended_at is not None and Event.EXTENSION_NOTICE in available:
        available.remove(Event.EXTENSION_NOTICE)
    return [event.value for event in available]


@guarded
def report(request: Request, request_id: str) -> Response:
    from chalicelib import reports

    record = _authorised(request, request_id, tokens.Purpose.STATUS, None)
    media = _media_type(request)
    as_json = media == JSON or _wants_json(request)
    lang = _language(request, record.language)
    data = _read_form(request, media if media in (JSON, FORM) else FORM) or {}
    kind = reports.parse_type(data.get("type"))
    if kind is None:
        return _report_problem(request, record, 422, "bad_type", lang, as_json)
    try:
        record = reports.report(request_id, kind)
    except reports.ReportRejected as rejected:
        return _report_problem(request, record, 409, rejected.code, lang, as_json)
    except LookupError:
        return _refusal(request, 404, "not_found", lang, as_json)
    if as_json:
        return Response(body=_status_body(record), status_code=200)
    return _to_status_page(record.request_id, kind.value)


def _report_problem(
    request: Request, record: RequestRecord, status: int, code: str, lang: str, as_json: bool
) -> Response:
    if as_json:
        return Response(
            body={"errors": {"type": i18n.report_problem(lang, code)}}, status_code=status
        )
    return _status_page(request, record, status, problem=i18n.report_problem(lang, code))


def _status_token(request_id: str) -> str:
    return tokens.issue(request_id, tokens.Purpose.STATUS)


# --- CORS -----------------------------------------------------------------

_PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Accept, Accept-Language",
    "Access-Control-Max-Age": "600",
}


def _allowed_origin(request: Request) -> str | None:
    origin = request.headers.get("origin")
    return origin if origin and origin in get_settings().allowed_origins else None


def preflight(request: Request) -> Response:
    headers: dict[str, str | list[str]] = (
        dict(_PREFLIGHT_HEADERS) if _allowed_origin(request) else {}
    )
    return Response(body="", status_code=204, headers=headers)


def with_cors(request: Request, response: Response) -> Response:
    """Add CORS headers for allow-listed origins only."""
    origin = _allowed_origin(request)
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Vary"] = "Origin"
    return response


@guarded
def withdraw_consent(request: Request, request_id: str) -> Response:
    """Stop campaign updates (the status page's button); the request goes on."""
    record = _authorised(request, request_id, tokens.Purpose.STATUS, None)
    record = journey.withdraw_consent(record)
    if _wants_json(request) or _media_type(request) == JSON:
        body = {"id": request_id, "consent_updates": record.consent_updates}
        return Response(body=body, status_code=200)
    return _to_status_page(record.request_id, "consent_withdrawn")


@guarded
def forget(request: Request, request_id: str) -> Response:
    """Remove the supporter's personal data now (the status page's button)."""
    record = _authorised(request, request_id, tokens.Purpose.STATUS, None)
    lang = _language(request, record.language)
    try:
        journey.forget(request_id)
    except LookupError:
        return _refusal(request, 404, "not_found", lang, _wants_json(request))
    if _wants_json(request) or _media_type(request) == JSON:
        return Response(body={"id": request_id, "status": Status.FORGOTTEN.value}, status_code=200)
    return _page(request, "forgotten", lang)


_STATS_CACHE_SECONDS = 300
_stats_cache: dict[str, tuple[float, dict[str, Any]]] = {}


@guarded
def admin_stats(request: Request) -> Response:
    """Figures for organisers, from a full read of the table.

    API Gateway lets only IAM-signed requests through; the check here keeps
    the route closed if that authoriser were ever removed, except on the
    local stage (chalice local does not emulate IAM). The figures are cached
    for five minutes per Lambda instance: they come from a full Scan.
    """
    import time

    from chalicelib import export, stats

    settings = get_settings()
    identity = (request.context or {}).get("identity") or {}
    if settings.stage != "local" and not identity.get("userArn"):
        return Response(body={"errors": {"auth": "IAM authorisation required"}}, status_code=403)
    cached = _stats_cache.get(settings.stage)
    stale = cached is None or time.monotonic() - cached[0] > _STATS_CACHE_SECONDS
    if stale or settings.stage == "local":
        cached = (time.monotonic(), stats.figures_json(export.read_records("table")))
        _stats_cache[settings.stage] = cached
    assert cached is not None
    return Response(body=cached[1], status_code=200)
