#!/usr/bin/env python3
"""Hot path: the app's own time per submission and per confirmation.

AWS answers instantly (bench/common.InstantAWS on the app's own cached
clients, through botocore's before-send hook): what is timed is the
application, Chalice and botocore (validation, serialisation, SigV4 signing,
response parsing), never the network or AWS. Requests go through
``chalice.test.Client`` on the ``local`` stage (a project copy with
OUTBOX_DIR empty, so no .eml files are written; verification on).

- submission: ``POST /requests`` (JSON): the transaction that stores the
  request, its lock and rate counters (and, with ``--send-mode inline``, the
  verification email and its bookkeeping);
- confirmation: ``POST /requests/{id}/confirm?token=`` (the page's form
  button, with the token the email carries): the verify transaction (and,
  inline, the letter and the sent notice);
- also timed, without a target: the stream consumer (``send_stored``, the
  Lambda that sends in the default ``stream`` mode) on the submission's and
  the confirmation's stream records, the confirm page (GET), the status page
  the confirmation redirects to, and one SES delivery event (SNS Lambda).

Baseline: a minimal Chalice handler through the same Client and the same
stubbed clients that only parses JSON, calls put_item and send_email.
Targets: p50 at most 1.5x the baseline's and under 3 ms, judged on this
thread's CPU time (wall time is printed too: on a shared machine it also
counts waiting for a core). When a target is missed, the pieces are timed
one by one and a cProfile run shows where the time goes.

Also: a cold start in a fresh interpreter (the API Gateway event handed to
the app as Lambda does: import, lazy imports, clients, first requests),
against a minimal handler's, median of --cold-runs.

    python bench/hotpath.py [--iterations 2000] [--warmup 200] [--profile]
    python bench/hotpath.py --send-mode inline    # the API sends during the request
    python bench/hotpath.py --send-mode queue     # the retry job sends everything
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from tools import local_stack

TARGET_RATIO = 1.5
TARGET_MS = 3.0
ORIGIN = "http://127.0.0.1:8080"
JSON_HEADERS = {"content-type": "application/json", "accept": "application/json", "origin": ORIGIN}
FORM_HEADERS = {"content-type": "application/x-www-form-urlencoded", "accept": "text/html"}
PAGE_HEADERS = {"accept": "text/html", "accept-language": "fr-CA,fr;q=0.9,en;q=0.8"}
NAMES = [("Zoë", "Côté-Lévesque", "fr"), ("Liam", "O'Brien", "en"), ("Minh", "Nguyễn Thị", "en")]


def payload(index: int) -> bytes:
    first, last, language = NAMES[index % len(NAMES)]
    return json.dumps(
        {
            "first_name": first,
            "last_name": last,
            "email": f"Supporter.{index}@Example.org",
            "province": "QC" if language == "fr" else "ON",
            "language": language,
            "consent_updates": index % 2 == 0,
            "website": "",
        }
    ).encode()


def baseline_app() -> Any:
    """The least a submission handler can do: parse, put_item, send_email."""
    import secrets

    from chalice import Chalice, Response

    from chalicelib import aws

    app = Chalice(app_name="baseline")

    @app.route("/requests", methods=["POST"])
    def create() -> Response:
        data = json.loads(app.current_request.raw_body)
        request_id = secrets.token_urlsafe(12)
        aws.dynamodb().put_item(
            TableName="takeback-local",
            Item={
                "pk": {"S": f"request#{request_id}"},
                "first_name": {"S": data["first_name"]},
                "last_name": {"S": data["last_name"]},
                "email": {"S": data["email"]},
            },
        )
        aws.sesv2().send_email(
            FromEmailAddress="requests@takeback.example",
            Destination={"ToAddresses": [data["email"]]},
            Content={
                "Simple": {
                    "Subject": {"Data": "Please confirm your request"},
                    "Body": {"Text": {"Data": "Confirm: https://example.org/confirm"}},
                }
            },
        )
        return Response(body={"id": request_id, "status": "pending"}, status_code=202)

    @app.route("/noop", methods=["POST"])
    def noop() -> dict[str, str]:
        return {}

    return app


class Bench:
    """The app and the baseline on one set of instant AWS clients."""

    def __init__(self, project: Path, send_mode: str) -> None:
        from chalice.test import Client

        from app import app
        from chalicelib import aws

        aws.reset()
        self.fake = common.InstantAWS()
        self.fake.install(aws.dynamodb(), aws.sesv2(), aws.ssm())
        app_client = Client(app, stage_name=common.STAGE, project_dir=str(project))
        self.client = app_client.http
        self.lambdas = app_client.lambda_
        self.base = Client(baseline_app(), stage_name=common.STAGE, project_dir=str(project)).http
        self.index = 0
        self.send_mode = send_mode
        self.emails: dict[str, str] = {}

    def baseline(self) -> None:
        response = self.base.post("/requests", headers=JSON_HEADERS, body=payload(self.index))
        assert response.status_code == 202, response.body

    def noop(self) -> None:
        self.base.post("/noop", headers=JSON_HEADERS, body=b"{}")

    def submit(self) -> str:
        self.index += 1
        response = self.client.post("/requests", headers=JSON_HEADERS, body=payload(self.index))
        assert response.status_code == 202, response.body
        request_id: str = response.json_body["id"]
        self.emails[request_id] = json.loads(payload(self.index))["email"]
        return request_id

    def token(self, request_id: str) -> str:
        """The confirmation token, as the verification email carries it."""
        from chalicelib import tokens

        email_key = tokens.email_fingerprint(self.emails[request_id])
        return tokens.issue(request_id, tokens.Purpose.CONFIRM, email_key)

    def item(self, request_id: str) -> dict[str, Any]:
        return copy.deepcopy(self.fake.items[f"request#{request_id}"])

    def deliver(self, request_id: str, before: dict[str, Any] | None) -> None:
        """The stream record of the request's last write, to ``send_stored``.

        As Lambda delivers it (the stub keeps no stream: the record is made
        from the item now and as it was before the write).
        """
        images: dict[str, Any] = {"NewImage": self.item(request_id)}
        if before is not None:
            images["OldImage"] = before
        record = {
            "eventName": "INSERT" if before is None else "MODIFY",
            "eventSource": "aws:dynamodb",
            "dynamodb": images,
        }
        result = self.lambdas.invoke("send_stored", {"Records": [record]})
        assert result.payload["verifications"] + result.payload["letters"] == 1, result.payload

    def confirm_page(self, request_id: str, token: str) -> None:
        path = f"/requests/{request_id}/confirm?token={token}"
        response = self.client.get(path, headers=PAGE_HEADERS)
        assert response.status_code == 200, response.body

    def confirm(self, request_id: str, token: str) -> str:
        path = f"/requests/{request_id}/confirm?token={token}"
        response = self.client.post(path, headers=FORM_HEADERS, body=b"")
        assert response.status_code == 303, response.body
        location: str = response.headers["Location"]
        return location

    def status_page(self, request_id: str, location: str) -> None:
        query = urlsplit(location).query
        response = self.client.get(f"/requests/{request_id}?{query}", headers=PAGE_HEADERS)
        assert response.status_code == 200, response.body

    def ses_delivery_event(self, request_id: str) -> str:
        """The letter's SES Delivery event, with the tags the app gave it."""
        letter = self.fake.items[f"request#{request_id}"]["ses_message_id"]["S"]
        tagged = [body.get("EmailTags", []) for body in self.fake.sent]
        [tags] = [
            {tag["Name"]: [tag["Value"]] for tag in tags}
            for tags in tagged
            if {"Name": "takeback_request", "Value": request_id} in tags
            and {"Name": "takeback_kind", "Value": "letter"} in tags
        ]
        message = {
            "eventType": "Delivery",
            "mail": {"messageId": letter, "tags": tags},
            "delivery": {"timestamp": datetime.now(UTC).isoformat(timespec="milliseconds")},
        }
        return json.dumps(message)

    def ses_delivery(self, event: str) -> None:
        from chalicelib import jobs

        jobs.ses_event(event)


def timed(action: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall ms, this thread's CPU ms, result)."""
    wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
    result = action()
    return (time.perf_counter_ns() - wall) / 1e6, (time.thread_time_ns() - cpu) / 1e6, result


KINDS = [
    "noop",
    "baseline",
    "submission",
    "stream: verification",
    "confirm page",
    "confirmation",
    "stream: letter",
    "status page",
    "ses",
]


Samples = dict[str, dict[str, list[float]]]


def one_round(bench: Bench, samples: Samples, calls: dict[str, Counter[str]]) -> None:
    """One supporter's requests, each timed; AWS calls counted per kind."""

    def run(kind: str, action: Callable[[], Any]) -> Any:
        before, spent = Counter(bench.fake.calls), bench.fake.spent_ns
        wall, cpu, result = timed(action)
        samples["wall"][kind].append(wall)
        samples["cpu"][kind].append(cpu)
        samples["stub"][kind].append((bench.fake.spent_ns - spent) / 1e6)
        calls[kind] = Counter(bench.fake.calls) - before
        return result

    streamed = bench.send_mode == "stream"
    run("noop", bench.noop)
    run("baseline", bench.baseline)
    request_id = run("submission", bench.submit)
    if streamed:
        run("stream: verification", lambda: bench.deliver(request_id, None))
    token = bench.token(request_id)
    run("confirm page", lambda: bench.confirm_page(request_id, token))
    pending = bench.item(request_id)
    location = run("confirmation", lambda: bench.confirm(request_id, token))
    if streamed:
        run("stream: letter", lambda: bench.deliver(request_id, pending))
    run("status page", lambda: bench.status_page(request_id, location))
    if bench.send_mode != "queue":
        event = bench.ses_delivery_event(request_id)
        run("ses", lambda: bench.ses_delivery(event))
    # Forget this supporter's items and mail: a steady heap, as in a warm Lambda.
    bench.fake.items.clear()
    bench.fake.sent.clear()


# --- profile ------------------------------------------------------------------

# (label, file suffix, functions): cumulative time of these, per request.
COMPONENTS = [
    ("botocore calls (validate, serialise, sign, parse)", "botocore/client.py", "_make_api_call"),
    ("  of which SigV4 signing", "botocore/auth.py", "add_auth"),
    ("  of which response parsing", "botocore/parsers.py", "parse"),
    ("  of which endpoint resolution", "botocore/regions.py", "construct_endpoint"),
    (
        "composing messages (compose.py: Jinja + wordwrap)",
        "chalicelib/compose.py",
        "request_letter verification_email sent_notice",
    ),
    ("MIME build (mail.build: headers, quoted-printable body)", "chalicelib/mail.py", "build"),
    ("MIME as_bytes (serialising the message)", "email/message.py", "as_bytes"),
    ("form validation (pydantic, email-validator)", "chalicelib/models.py", "parse_submission"),
    ("deadline computation (holidays)", "chalicelib/deadlines.py", "deadline_for"),
    ("item -> record (store._to_record)", "chalicelib/store.py", "_to_record"),
    ("record -> item (store._to_item)", "chalicelib/store.py", "_to_item"),
    ("signed tokens (itsdangerous)", "chalicelib/tokens.py", "issue check"),
    ("structured logs (powertools)", "aws_lambda_powertools/logging/logger.py", "info"),
    ("Client harness: env copy per call", "chalice/test.py", "_patched_env_vars"),
]


def _cumulative(stats: pstats.Stats, suffix: str, functions: str) -> float:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    wanted = set(functions.split())
    total = 0.0
    for (filename, _line, name), (_cc, _nc, _tt, cumulative, _callers) in raw.items():
        if filename.endswith(suffix) and name in wanted:
            total += cumulative
    return total


def profile(bench: Bench, kind: str, rounds: int) -> str:
    """Where one kind of request spends its time (cProfile), as text."""
    prepared = []
    for _ in range(rounds):
        request_id = bench.submit()
        prepared.append((request_id, bench.token(request_id)))
    profiler = cProfile.Profile()
    if kind == "submission":
        profiler.runcall(lambda: [bench.submit() for _ in range(rounds)])
    else:
        profiler.runcall(lambda: [bench.confirm(rid, token) for rid, token in prepared])
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    lines = [f"where a {kind} spends its time (cProfile, {rounds} requests; shares of total):"]
    for label, suffix, function in COMPONENTS:
        spent = _cumulative(stats, suffix, function)
        if spent:
            lines.append(f"  {label:<52} {spent / total:6.1%}")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    top = [line for line in out.getvalue().splitlines() if line.strip()][-13:]
    lines.append("  top functions by own time:")
    lines.extend("    " + line.strip() for line in top)
    return "\n".join(lines)


def cpu_median(action: Callable[[], Any], repeat: int) -> float:
    """Median CPU ms of one call (no profiler: cProfile inflates small calls)."""
    samples = []
    for _ in range(repeat):
        start = time.thread_time_ns()
        action()
        samples.append((time.thread_time_ns() - start) / 1e6)
    return common.percentile(samples, 50)


def _record(first: str, last: str, language: str) -> Any:
    from chalicelib.journey import new_request_id, now
    from chalicelib.lifecycle import Status
    from chalicelib.models import RequestRecord

    moment = now()
    return RequestRecord(
        request_id=new_request_id(),
        status=Status.SENT,
        first_name=first,
        last_name=last,
        email=f"{language}.supporter@example.org",
        language=language,  # type: ignore[arg-type]
        province="QC" if language == "fr" else "ON",
        created_at=moment,
        verified_at=moment,
        sent_at=moment,
        due_date=moment.date(),
    )


def components(bench: Bench, repeat: int = 300) -> list[tuple[str, float]]:
    """What the pieces of a submission and a confirmation cost, one by one."""
    from chalicelib import aws, compose, deadlines, mail, models, store, tokens
    from chalicelib.settings import get_settings

    settings = get_settings()
    plain, accented = _record("Liam", "OBrien", "en"), _record("Zoë", "Côté-Lévesque", "fr")
    store.create_request(plain, "bench-lock", int(time.time()) + 3600)
    sent_on = plain.sent_at.date()
    deadline = deadlines.deadline_for(sent_on, plain.province)
    letters = {
        record.first_name: compose.request_letter(settings, record, sent_on, deadline.effective)
        for record in (plain, accented)
    }
    messages = {name: mail.build(letter) for name, letter in letters.items()}
    raw = messages["Liam"].as_bytes()
    data = json.loads(payload(7))
    timings: list[tuple[str, Callable[[], Any]]] = [
        ("DynamoDB GetItem (botocore, stubbed)", lambda: store.get_request(plain.request_id)),
        (
            "DynamoDB UpdateItem (rate counter)",
            lambda: store.count_hits((store.Allowance("x", 10**9, 3600),)),
        ),
        (
            "SES SendEmail, raw letter",
            lambda: aws.sesv2().send_email(
                FromEmailAddress=settings.sender_email,
                Destination={"ToAddresses": [settings.target_email]},
                Content={"Raw": {"Data": raw}},
            ),
        ),
        ("form validation (parse_submission)", lambda: models.parse_submission(data)),
        ("compose verification email", lambda: compose.verification_email(settings, plain)),
        (
            "compose request letter (Jinja, wordwrap)",
            lambda: compose.request_letter(settings, plain, sent_on, deadline.effective),
        ),
        ("compose sent notice", lambda: compose.sent_notice(settings, plain)),
        ("deadline_for (cached holidays)", lambda: deadlines.deadline_for(sent_on, "QC")),
        ("mail.build(letter), ASCII name", lambda: mail.build(letters["Liam"])),
        ("mail.build(letter), accented name", lambda: mail.build(letters["Zoë"])),
        ("letter as_bytes(), ASCII name", messages["Liam"].as_bytes),
        ("letter as_bytes(), accented name", messages["Zoë"].as_bytes),
        ("tokens.issue", lambda: tokens.issue(plain.request_id, tokens.Purpose.STATUS)),
    ]
    result = [(label, cpu_median(action, repeat)) for label, action in timings]
    bench.fake.items.clear()
    return result


# --- cold start -----------------------------------------------------------------

COLD = """
import json, sys, time
clock = time.process_time
marks = {{}}
wall, cpu = time.perf_counter(), clock()
def mark(name):
    marks[name] = clock() - cpu
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
from app import app
mark("import app")
from chalicelib import views
mark("import views (first route)")
import boto3
mark("import boto3")
from chalicelib import aws, tokens
import common
fake = common.InstantAWS()
for name in ("dynamodb", "sesv2", "ssm"):
    fake.install(getattr(aws, name)())
    mark(f"client {{name}}")
class Context:
    function_name = "takeback-local"; memory_limit_in_mb = 512
    aws_request_id = "bench"; invoked_function_arn = "arn:aws:lambda:ca-central-1:0:function:x"
    def get_remaining_time_in_millis(self): return 30000
def call(method, resource, path, body="", query=None, params=None, content="application/json"):
    accept = "application/json" if content == "application/json" else "text/html"
    headers = {{"content-type": content, "accept": accept}}
    event = {{
        "resource": resource, "path": path, "httpMethod": method, "headers": headers,
        "multiValueHeaders": {{k: [v] for k, v in headers.items()}},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {{k: [v] for k, v in query.items()}} if query else None,
        "pathParameters": params, "stageVariables": None, "isBase64Encoded": False,
        "requestContext": {{"resourcePath": resource, "httpMethod": method, "stage": "api",
            "path": "/api" + path, "requestId": "bench", "apiId": "bench",
            "identity": {{"sourceIp": "203.0.113.7"}}}},
        "body": body,
    }}
    return app(event, Context())
body = {body!r}
first = call("POST", "/requests", "/requests", body)
mark("first submission")
wall_first = time.perf_counter() - wall
assert first["statusCode"] == 202, first
request_id = json.loads(first["body"])["id"]
token = tokens.issue(request_id, tokens.Purpose.CONFIRM, tokens.email_fingerprint("cold@example.org"))
path = f"/requests/{{request_id}}/confirm"
resource = "/requests/{{request_id}}/confirm"
params = {{"request_id": request_id}}
page = call("GET", resource, path, None, {{"token": token}}, params)
assert page["statusCode"] == 200, page
mark("first confirm page")
done = call("POST", resource, path, "", {{"token": token}}, params, "application/x-www-form-urlencoded")
assert done["statusCode"] == 303, done
mark("first confirmation")
again = call("POST", "/requests", "/requests", body.replace("cold@", "warm@"))
assert again["statusCode"] == 202, again
mark("next submission (warm)")
print(json.dumps({{"marks": marks, "wall_first": wall_first}}))
"""


COLD_BASELINE = """
import json, sys, time
cpu = time.process_time()
sys.path.insert(0, {bench!r})
from chalice import Chalice, Response
import boto3
import common
fake = common.InstantAWS()
dynamodb, ses = boto3.client("dynamodb"), boto3.client("sesv2")
fake.install(dynamodb, ses)
app = Chalice(app_name="baseline")
@app.route("/requests", methods=["POST"])
def create():
    data = json.loads(app.current_request.raw_body)
    dynamodb.put_item(TableName="t", Item={{"pk": {{"S": "request#1"}}, "email": {{"S": data["email"]}}}})
    ses.send_email(FromEmailAddress="requests@takeback.example",
        Destination={{"ToAddresses": [data["email"]]}},
        Content={{"Simple": {{"Subject": {{"Data": "Confirm"}}, "Body": {{"Text": {{"Data": "x"}}}}}}}})
    return Response(body={{"id": "1"}}, status_code=202)
class Context:
    function_name = "baseline"; memory_limit_in_mb = 512
    aws_request_id = "bench"; invoked_function_arn = "arn:aws:lambda:ca-central-1:0:function:x"
    def get_remaining_time_in_millis(self): return 30000
event = {{"resource": "/requests", "path": "/requests", "httpMethod": "POST",
    "headers": {{"content-type": "application/json"}},
    "multiValueHeaders": {{"content-type": ["application/json"]}},
    "queryStringParameters": None, "multiValueQueryStringParameters": None,
    "pathParameters": None, "stageVariables": None, "isBase64Encoded": False,
    "requestContext": {{"resourcePath": "/requests", "httpMethod": "POST", "stage": "api",
        "path": "/api/requests", "requestId": "bench", "apiId": "bench",
        "identity": {{"sourceIp": "203.0.113.7"}}}},
    "body": json.dumps({{"email": "cold@example.org"}})}}
assert app(event, Context())["statusCode"] == 202
print(json.dumps({{"first": time.process_time() - cpu}}))
"""


def _fresh(code: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=common.ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"cold start run failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


Cold = tuple[list[tuple[str, float]], float, float]


def cold_start(project: Path, runs: int) -> Cold:
    """Median CPU ms of each step of a fresh process, the first submission's wall
    ms, and the baseline handler's CPU ms from start to its first response."""
    env = {
        **os.environ,
        **local_stack.stage_environment(common.STAGE, project),
        **local_stack.aws_environment(common.NOWHERE),
    }
    body = json.loads(payload(0))
    body["email"] = "cold@example.org"
    code = COLD.format(
        root=str(common.ROOT), bench=str(Path(__file__).parent), body=json.dumps(body)
    )
    results = [_fresh(code, env) for _ in range(runs)]
    bench = str(Path(__file__).parent)
    base = [_fresh(COLD_BASELINE.format(bench=bench), env)["first"] for _ in range(runs)]
    steps, previous = [], 0.0
    for name in results[0]["marks"]:
        cumulative = common.percentile([r["marks"][name] for r in results], 50) * 1000
        steps.append((name, cumulative - previous))
        previous = cumulative
    wall_first = common.percentile([r["wall_first"] for r in results], 50) * 1000
    return steps, wall_first, common.percentile(base, 50) * 1000


# --- main -----------------------------------------------------------------------


def _empty() -> Samples:
    return {clock: {kind: [] for kind in KINDS} for clock in ("wall", "cpu", "stub")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument(
        "--send-mode",
        choices=["stream", "inline", "queue"],
        default="stream",
        help="SEND_MODE of the stage (stream, as deployed: the API only writes and the"
        " stream consumer sends; inline: the API sends; queue: the retry job sends)",
    )
    parser.add_argument("--profile", action="store_true", help="profile even when on target")
    parser.add_argument("--profile-rounds", type=int, default=100)
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    os.environ.update(local_stack.aws_environment(common.NOWHERE))
    with tempfile.TemporaryDirectory(prefix="takeback-hotpath-") as scratch:
        project = common.project_copy(
            Path(scratch), {"OUTBOX_DIR": "", "SEND_MODE": args.send_mode}
        )
        # Logs go where Lambda sends them (stdout); keep them off the terminal.
        # (Left open: Powertools' logger keeps the stream it was created with.)
        sink = open(os.devnull, "w")  # noqa: SIM115
        with contextlib.redirect_stdout(sink):
            bench = Bench(project, args.send_mode)
            calls: dict[str, Counter[str]] = {}
            for _ in range(args.warmup):
                one_round(bench, _empty(), calls)
            samples = _empty()
            for _ in range(args.iterations):
                one_round(bench, samples, calls)
            figures = {
                clock: {kind: common.describe(values) for kind, values in by_kind.items()}
                for clock, by_kind in samples.items()
            }
            cpu = figures["cpu"]
            base = cpu["baseline"]["p50"]
            missed = [
                kind
                for kind in ("submission", "confirmation")
                if cpu[kind]["p50"] > TARGET_RATIO * base or cpu[kind]["p50"] >= TARGET_MS
            ]
            pieces = components(bench)
            profiles = [
                profile(bench, kind, args.profile_rounds)
                for kind in ("submission", "confirmation")
                if args.profile or kind in missed
            ]
        cold = cold_start(project, args.cold_runs)
    report(args, figures, calls, cold, pieces, profiles, (load_before, os.getloadavg()[0]))


def samples_taken(figures: dict[str, dict[str, dict[str, float]]], kind: str) -> bool:
    return figures["cpu"][kind]["p50"] == figures["cpu"][kind]["p50"]  # not NaN


def report(
    args: argparse.Namespace,
    figures: dict[str, dict[str, dict[str, float]]],
    calls: dict[str, Counter[str]],
    cold: Cold,
    pieces: list[tuple[str, float]],
    profiles: list[str],
    load: tuple[float, float],
) -> None:
    cpu, wall = figures["cpu"], figures["wall"]
    base = cpu["baseline"]["p50"]
    print(
        f"hot path (SEND_MODE={args.send_mode}), AWS answered instantly; "
        f"{args.iterations} iterations after {args.warmup} "
        f"warm-up; Python {sys.version.split()[0]}; {os.cpu_count()} cores, "
        f"load average {load[0]:.1f} -> {load[1]:.1f}"
    )
    print(
        "CPU = this thread's CPU time (what the app costs; judged against the targets); "
        "wall = elapsed, including waits for a core on a shared machine; stub = CPU p50 of "
        "the AWS stub itself, included in CPU (it stands in for botocore's HTTP transport)"
    )
    print(
        f"{'request':<36}{'CPU p50':>8}{'p90':>7}{'p99':>7}{'x base':>8}"
        f"{'wall p50':>10}{'p90':>7}{'stub':>6}  target (CPU p50)"
    )
    rows = [
        ("harness floor (Client, empty route)", "noop"),
        ("baseline (parse, put_item, send)", "baseline"),
        ("submission POST /requests", "submission"),
        ("confirmation POST .../confirm", "confirmation"),
        ("stream consumer: verification email", "stream: verification"),
        ("stream consumer: letter + notice", "stream: letter"),
        ("confirm page GET .../confirm", "confirm page"),
        ("status page GET /requests/{id}", "status page"),
        ("SES delivery event (SNS Lambda)", "ses"),
    ]
    rows = [(label, kind) for label, kind in rows if samples_taken(figures, kind)]
    for label, kind in rows:
        verdict = ""
        if kind in ("submission", "confirmation"):
            ratio_ok = cpu[kind]["p50"] <= TARGET_RATIO * base
            abs_ok = cpu[kind]["p50"] < TARGET_MS
            verdict = (
                f"{'met' if ratio_ok else 'MISSED'} <= {TARGET_RATIO}x, "
                f"{'met' if abs_ok else 'MISSED'} < {TARGET_MS:.0f} ms"
            )
        print(
            f"{label:<36}{cpu[kind]['p50']:8.2f}{cpu[kind]['p90']:7.2f}{cpu[kind]['p99']:7.2f}"
            f"{cpu[kind]['p50'] / base:7.2f}x{wall[kind]['p50']:10.2f}{wall[kind]['p90']:7.2f}"
            f"{figures['stub'][kind]['p50']:6.2f}  {verdict}"
        )
    floor = cpu["noop"]["p50"]
    net = {kind: cpu[kind]["p50"] - floor for kind in ("baseline", "submission", "confirmation")}
    print(
        f"net of the harness floor (CPU p50): baseline {net['baseline']:.2f} ms, "
        f"submission {net['submission']:.2f} ms ({net['submission'] / net['baseline']:.1f}x), "
        f"confirmation {net['confirmation']:.2f} ms "
        f"({net['confirmation'] / net['baseline']:.1f}x)"
    )
    print("AWS calls per request (counted at the stub):")
    for kind in KINDS[1:]:
        if kind not in calls:
            continue
        listed = ", ".join(f"{name} x{count}" for name, count in sorted(calls[kind].items()))
        print(f"  {kind:<20} {sum(calls[kind].values()):2d}: {listed}")
    steps, wall_first, cold_base = cold
    names = [name for name, _ in steps]
    first = sum(ms for _, ms in steps[: names.index("first submission") + 1])
    print(
        f"cold start in a fresh interpreter, AWS instant (CPU ms, median of {args.cold_runs} "
        f"runs; each step after the one before):"
    )
    for name, ms in steps:
        print(f"  {name:<28} {ms:7.1f} ms")
    print(f"  start to first submission   {first:7.1f} ms CPU ({wall_first:.0f} ms wall)")
    print(
        f"  baseline, start to first response (import chalice + boto3, 2 clients, put + send): "
        f"{cold_base:.1f} ms CPU; ratio {first / cold_base:.2f}x"
    )
    print("the pieces, one call at a time (CPU median):")
    for label, value in pieces:
        print(f"  {label:<44} {value:6.2f} ms")
    for text in profiles:
        print(text)


if __name__ == "__main__":
    try:
        main()
    except Exception:
        # Powertools' logger replaces sys.excepthook with one that logs to
        # the stream it was created with (here /dev/null): print it ourselves.
        traceback.print_exc()
        sys.exit(1)
