#!/usr/bin/env python3
"""Hot path: the app's own time per submission and per confirmation.

AWS answers instantly (bench/common.InstantAWS on the app's own cached
clients, through botocore's before-send hook): what is timed is the
application, Chalice and botocore (validation, serialisation, SigV4 signing,
response parsing), never the network or AWS. Requests go through
``chalice.test.Client`` on the ``local`` stage (a project copy with
OUTBOX_DIR empty, so no .eml files are written; verification on).

- submission: ``POST /requests`` (JSON): rate-limit counters, the request +
  lock transaction, the verification email and its bookkeeping;
- confirmation: ``POST /requests/{id}/confirm?token=`` (the page's form
  button): the verify transaction, the letter and the sent notice;
- also timed, without a target: the confirm page (GET), the status page the
  confirmation redirects to, and one SES delivery event (SNS Lambda).

Baseline: a minimal Chalice handler through the same Client and the same
stubbed clients that only parses JSON, calls put_item and send_email.
Targets: p50 at most 1.5x the baseline's and under 3 ms. When a target is
missed, a cProfile run shows where the time goes.

Also: a cold start in a fresh interpreter (import app + first submission,
AWS instant), median of --cold-runs, as Lambda's init + first invoke.

    python bench/hotpath.py [--iterations 2000] [--warmup 200] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

from tools import local_stack  # noqa: E402

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

    def __init__(self, project: Path) -> None:
        from chalice.test import Client

        from app import app
        from chalicelib import aws

        aws.reset()
        self.fake = common.InstantAWS()
        self.fake.install(aws.dynamodb(), aws.sesv2(), aws.ssm())
        self.client = Client(app, stage_name=common.STAGE, project_dir=str(project)).http
        self.base = Client(baseline_app(), stage_name=common.STAGE, project_dir=str(project)).http
        self.index = 0

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
        return request_id

    @staticmethod
    def token(request_id: str, purpose: str) -> str:
        from chalicelib import tokens

        return tokens.issue(request_id, tokens.Purpose(purpose))

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
        assert b"sent" in response.body.lower()

    def ses_delivery(self, request_id: str) -> None:
        from chalicelib import jobs

        letter = self.fake.items[f"request#{request_id}"]["ses_message_id"]["S"]
        message = {
            "eventType": "Delivery",
            "mail": {"messageId": letter},
            "delivery": {"timestamp": datetime.now(UTC).isoformat(timespec="milliseconds")},
        }
        jobs.ses_event(json.dumps(message))


def timed(action: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall ms, this thread's CPU ms, result)."""
    wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
    result = action()
    return (time.perf_counter_ns() - wall) / 1e6, (time.thread_time_ns() - cpu) / 1e6, result


KINDS = ["noop", "baseline", "submission", "confirm page", "confirmation", "status page", "ses"]


Samples = dict[str, dict[str, list[float]]]


def one_round(bench: Bench, samples: Samples, calls: dict[str, Counter[str]]) -> None:
    """One supporter's requests, each timed; AWS calls counted per kind."""

    def run(kind: str, action: Callable[[], Any]) -> Any:
        before = Counter(bench.fake.calls)
        wall, cpu, result = timed(action)
        samples["wall"][kind].append(wall)
        samples["cpu"][kind].append(cpu)
        calls[kind] = Counter(bench.fake.calls) - before
        return result

    run("noop", bench.noop)
    run("baseline", bench.baseline)
    request_id = run("submission", bench.submit)
    token = bench.token(request_id, "confirm")
    run("confirm page", lambda: bench.confirm_page(request_id, token))
    location = run("confirmation", lambda: bench.confirm(request_id, token))
    run("status page", lambda: bench.status_page(request_id, location))
    run("ses", lambda: bench.ses_delivery(request_id))
    # Forget this supporter's items: a steady heap, as in a warm Lambda.
    bench.fake.items.clear()


# --- profile ------------------------------------------------------------------

# (label, file suffix, function): cumulative time of these, per request.
COMPONENTS = [
    ("botocore calls (validate, serialise, sign, parse)", "botocore/client.py", "_make_api_call"),
    ("  of which SigV4 signing", "botocore/auth.py", "add_auth"),
    ("  of which response parsing", "botocore/parsers.py", "parse"),
    ("  of which endpoint resolution", "botocore/regions.py", "construct_endpoint"),
    ("MIME build (email package)", "chalicelib/mail.py", "build"),
    ("MIME as_bytes (serialising the message)", "email/message.py", "as_bytes"),
    ("Jinja rendering (letters.py)", "chalicelib/letters.py", "render"),
    ("letter/email composition (compose.py)", "chalicelib/compose.py", "request_letter"),
    ("form validation (pydantic, email-validator)", "chalicelib/models.py", "parse_submission"),
    ("deadline computation (holidays)", "chalicelib/deadlines.py", "deadline_for"),
    ("item <-> record (store.py)", "chalicelib/store.py", "_to_record"),
    ("record -> item (store.py)", "chalicelib/store.py", "_to_item"),
    ("signed tokens (itsdangerous)", "chalicelib/tokens.py", "issue"),
    ("token checks (itsdangerous)", "chalicelib/tokens.py", "check"),
    ("structured logs (powertools)", "aws_lambda_powertools/logging/logger.py", "info"),
    ("HTML page rendering (views._page)", "chalicelib/views.py", "_page"),
    ("Client harness: env copy per call", "chalice/test.py", "_patched_env_vars"),
]


def _cumulative(stats: pstats.Stats, suffix: str, function: str) -> float:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = 0.0
    for (filename, _line, name), (_cc, _nc, _tt, cumulative, _callers) in raw.items():
        if filename.endswith(suffix) and name == function:
            total += cumulative
    return total


def profile(bench: Bench, kind: str, rounds: int) -> str:
    """Where one kind of request spends its time (cProfile), as text."""
    prepared = []
    for _ in range(rounds):
        request_id = bench.submit()
        prepared.append((request_id, bench.token(request_id, "confirm")))
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


# --- cold start -----------------------------------------------------------------

COLD = """
import json, os, sys, time
start, cpu_start = time.perf_counter(), time.process_time()
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
from app import app
imported = time.perf_counter()
from chalicelib import aws
import common
fake = common.InstantAWS()
fake.install(aws.dynamodb(), aws.sesv2(), aws.ssm())
class Context:
    function_name = "takeback-local"; memory_limit_in_mb = 512
    aws_request_id = "bench"; invoked_function_arn = "arn:aws:lambda:ca-central-1:0:function:x"
    def get_remaining_time_in_millis(self): return 30000
def event(body):
    headers = {{"content-type": "application/json", "accept": "application/json"}}
    return {{
        "resource": "/requests", "path": "/requests", "httpMethod": "POST",
        "headers": headers, "multiValueHeaders": {{k: [v] for k, v in headers.items()}},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": None, "stageVariables": None, "isBase64Encoded": False,
        "requestContext": {{"resourcePath": "/requests", "httpMethod": "POST", "stage": "api",
            "path": "/api/requests", "requestId": "bench", "apiId": "bench",
            "identity": {{"sourceIp": "203.0.113.7"}}}},
        "body": body,
    }}
body = {body!r}
first = app(event(body), Context())
done = time.perf_counter()
first_cpu = time.process_time()
second_start = time.perf_counter()
again = app(event(body.replace("cold@", "warm@")), Context())
second = time.perf_counter() - second_start
assert first["statusCode"] == 202 and again["statusCode"] == 202, (first, again)
print(json.dumps({{"import": imported - start, "first": done - start, "first_cpu": first_cpu - cpu_start,
                  "second": second}}))
"""


def cold_start(project: Path, runs: int) -> dict[str, float]:
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
    results = []
    for _ in range(runs):
        output = subprocess.run(
            [sys.executable, "-c", code],
            cwd=common.ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
    return {key: common.percentile([r[key] for r in results], 50) * 1000 for key in results[0]}


# --- main -----------------------------------------------------------------------


def _empty() -> Samples:
    return {clock: {kind: [] for kind in KINDS} for clock in ("wall", "cpu")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="profile even when on target")
    parser.add_argument("--profile-rounds", type=int, default=300)
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    os.environ.update(local_stack.aws_environment(common.NOWHERE))
    with tempfile.TemporaryDirectory(prefix="takeback-hotpath-") as scratch:
        project = common.project_copy(Path(scratch), {"OUTBOX_DIR": ""})
        # Logs go where Lambda sends them (stdout); keep them off the terminal.
        # (Left open: Powertools' logger keeps the stream it was created with.)
        sink = open(os.devnull, "w")  # noqa: SIM115
        with contextlib.redirect_stdout(sink):
            bench = Bench(project)
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
            profiles = [
                profile(bench, kind, args.profile_rounds)
                for kind in ("submission", "confirmation")
                if args.profile or kind in missed
            ]
        cold = cold_start(project, args.cold_runs)
    report(args, figures, calls, cold, profiles, (load_before, os.getloadavg()[0]))


def report(
    args: argparse.Namespace,
    figures: dict[str, dict[str, dict[str, float]]],
    calls: dict[str, Counter[str]],
    cold: dict[str, float],
    profiles: list[str],
    load: tuple[float, float],
) -> None:
    cpu, wall = figures["cpu"], figures["wall"]
    base = cpu["baseline"]["p50"]
    print(
        f"hot path, AWS answered instantly; {args.iterations} iterations after {args.warmup} "
        f"warm-up; Python {sys.version.split()[0]}; {os.cpu_count()} cores, "
        f"load average {load[0]:.1f} -> {load[1]:.1f}"
    )
    print(
        "CPU = this thread's CPU time (what the app costs; judged against the targets); "
        "wall = elapsed, including waits for a core on a shared machine"
    )
    print(
        f"{'request':<36}{'CPU p50':>8}{'p90':>7}{'p99':>7}{'x base':>8}"
        f"{'wall p50':>10}{'p90':>7}  target (CPU p50)"
    )
    rows = [
        ("harness floor (Client, empty route)", "noop"),
        ("baseline (parse, put_item, send)", "baseline"),
        ("submission POST /requests", "submission"),
        ("confirmation POST .../confirm", "confirmation"),
        ("confirm page GET .../confirm", "confirm page"),
        ("status page GET /requests/{id}", "status page"),
        ("SES delivery event (SNS Lambda)", "ses"),
    ]
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
            f"  {verdict}"
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
    for kind in ("baseline", "submission", "confirm page", "confirmation", "status page", "ses"):
        listed = ", ".join(f"{name} x{count}" for name, count in sorted(calls[kind].items()))
        print(f"  {kind:<13} {sum(calls[kind].values()):2d}: {listed}")
    print(
        f"cold start in a fresh interpreter, AWS instant (median of {args.cold_runs}): "
        f"import app {cold['import']:.0f} ms; import + first submission {cold['first']:.0f} ms "
        f"wall, {cold['first_cpu']:.0f} ms CPU; the next submission {cold['second']:.1f} ms"
    )
    for text in profiles:
        print(text)


if __name__ == "__main__":
    main()
