#!/usr/bin/env python3
"""Spike: 2,000 submissions from 50 concurrent clients against the local stack.

Starts its own moto server on a free port, provisions the local stage, and
runs ``chalice local`` on a project copy with SEND_MODE=queue and
VERIFICATION_REQUIRED=false (each submission is stored, verified at once and
its letter queued) and SEND_RATE_PER_SECOND=--rate (14/s: SES's usual
production quota). OUTBOX_DIR is emptied so no .eml files are written.

50 client threads, each on its own keep-alive connection (opened before the
clock starts), post JSON submissions; --duplicates of them re-send the
address posted just before (double clicks, in flight together). Checked:
no 5xx; every address stored exactly once (a Scan through boto3), with one
duplicate lock; duplicates answered with the same id.

``chalice local`` is already a threaded server (chalice.local.LocalDevServer
uses a ThreadingMixIn HTTPServer, one thread per connection), so "a threaded
server" would change nothing. The bench prints the CPU each process used,
which shows what limits the spike; ``--servers 1,2`` repeats it (on a reset
moto) with two ``chalice local`` processes and round-robin clients (many
processes, one request at a time each, is also how Lambda scales).
moto answers one call at a time with a cheap transaction rollback
(tools/moto_server.py; ``--moto stock`` runs it unchanged).

Then it drains the mail queue as the retry Lambda would (in-process,
``chalicelib.journey.retry_queued`` called repeatedly with the stage's
environment and a 240 s budget per run) and measures the SES rate achieved
(send timestamps from a botocore hook on the app's own SES client): letters,
all messages and recipients per second against SEND_RATE_PER_SECOND; and
that each request got exactly one letter and one notice (moto's
/moto-api/data.json). Finally, DynamoDB item sizes by record type, from the
real items (for the cost model).

    python bench/spike.py [--submissions 2000] [--clients 50] [--servers 1,2]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from tools import local_stack

TARGET = "privacy@clearview.ai"
SECRET = "bench-spike-signing-secret"
LAMBDA_BUDGET_SECONDS = 240  # retry_queued's lambda_timeout in .chalice/config.json


@dataclass
class Result:
    index: int
    email: str
    status: int
    latency_ms: float
    request_id: str | None
    finished: float = 0.0
    error: str | None = None


@dataclass
class Pass:
    servers: int
    results: list[Result] = field(default_factory=list)
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    stored: int = 0
    locks: int = 0


def jobs(submissions: int, duplicates: int) -> list[tuple[int, str]]:
    """(index, email) in posting order; a duplicate follows its original."""
    distinct = submissions - duplicates
    every = distinct // duplicates if duplicates else 0
    out: list[tuple[int, str]] = []
    for number in range(distinct):
        email = f"spike.{number}@example.org"
        out.append((len(out), email))
        if every and number % every == every - 1 and len(out) < submissions:
            out.append((len(out), email))
    while len(out) < submissions:  # rounding
        out.append((len(out), out[-1][1]))
    return out


def body(index: int, email: str) -> bytes:
    names = [("Zoë", "Côté-Lévesque", "fr"), ("Liam", "O'Brien", "en"), ("Minh", "Nguyễn", "en")]
    first, last, language = names[index % len(names)]
    return json.dumps(
        {"first_name": first, "last_name": last, "email": email, "language": language}
    ).encode()


def run_spike(
    ports: list[int], clients: int, work: list[tuple[int, str]]
) -> tuple[list[Result], float]:
    """Post every job from ``clients`` threads; (results, wall seconds)."""
    pending = iter(work)
    take = threading.Lock()
    ready = threading.Barrier(clients + 1)
    results: list[Result] = []

    def client(number: int) -> None:
        port = ports[number % len(ports)]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        connection.request("GET", "/health")
        connection.getresponse().read()
        ready.wait()
        while True:
            with take:
                job = next(pending, None)
            if job is None:
                break
            index, email = job
            start = time.perf_counter()
            try:
                connection.request(
                    "POST",
                    "/requests",
                    body=body(index, email),
                    headers={"Content-Type": "application/json", "Accept": "application/json"},
                )
                response = connection.getresponse()
                payload = response.read()
                elapsed = (time.perf_counter() - start) * 1000
                request_id = None
                if response.status == 202:
                    request_id = json.loads(payload)["id"]
                results.append(
                    Result(index, email, response.status, elapsed, request_id, time.perf_counter())
                )
            except (OSError, http.client.HTTPException) as error:
                elapsed = (time.perf_counter() - start) * 1000
                results.append(
                    Result(index, email, 0, elapsed, None, time.perf_counter(), repr(error))
                )
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        connection.close()

    with ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [pool.submit(client, number) for number in range(clients)]
        ready.wait()
        start = time.perf_counter()
        for future in futures:
            future.result()
        wall = time.perf_counter() - start
    return results, wall


def scan(endpoint: str, table: str) -> list[dict[str, Any]]:
    client = common.local_dynamodb(endpoint)
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        items.extend(page["Items"])
    return items


def check_stored(spike: Pass, items: list[dict[str, Any]]) -> None:
    """Every address stored once, one lock each, duplicates given the same id."""
    requests = [item for item in items if item["record_type"]["S"] == "request"]
    by_email: dict[str, list[str]] = defaultdict(list)
    for item in requests:
        by_email[item["email"]["S"].lower()].append(item["request_id"]["S"])
    spike.stored = len(requests)
    spike.locks = sum(1 for item in items if item["record_type"]["S"] == "email_lock")
    emails = {result.email for result in spike.results}
    twice = [email for email, ids in by_email.items() if len(ids) > 1]
    missing = emails - set(by_email)
    if twice:
        spike.problems.append(f"{len(twice)} addresses stored more than once")
    if missing:
        spike.problems.append(f"{len(missing)} addresses not stored")
    if spike.locks != len(by_email):
        spike.problems.append(f"{spike.locks} locks for {len(by_email)} stored addresses")
    answered: dict[str, set[str]] = defaultdict(set)
    for result in spike.results:
        if result.request_id:
            answered[result.email].add(result.request_id)
    for email, ids in answered.items():
        if len(ids) > 1 or ids - set(by_email.get(email, [])):
            spike.problems.append(f"{email}: answered {sorted(ids)}, stored {by_email.get(email)}")
    statuses = Counter(item["status"]["S"] for item in requests)
    if set(statuses) != {"queued"}:
        spike.problems.append(f"statuses after the spike: {dict(statuses)}")


# moto as it ships cannot take this spike: its DynamoDB is not thread-safe,
# and each transaction deep-copies the whole table (O(table size), which
# DynamoDB's transactions are not). By default the spike runs moto the way
# the tests do, one AWS call at a time (tools/moto_server.py), plus
# ``--cheap-rollback``; ``--moto stock`` runs moto unchanged.
def start_moto(port: int, fair: bool, log: Any) -> Any:
    if fair:
        return local_stack.start_moto(port, "--cheap-rollback", stdout=log, stderr=log)
    process = local_stack.spawn(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=log,
    )
    local_stack.wait_for(f"http://127.0.0.1:{port}/moto-api/data.json")
    return process


def reset_moto(endpoint: str) -> None:
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request).close()


@contextlib.contextmanager
def servers(count: int, endpoint: str, project: Path, log: Any) -> Iterator[list[Any]]:
    processes = []
    try:
        for _ in range(count):
            processes.append(
                local_stack.start_chalice_local(
                    local_stack.free_port(),
                    common.STAGE,
                    local_stack.aws_environment(endpoint),
                    project,
                    stdout=log,
                    stderr=log,
                )
            )
        yield processes
    finally:
        for process in processes:
            local_stack.stop(process)


def port_of(process: Any) -> int:
    return int(process.args[process.args.index("--port") + 1])


def one_pass(
    count: int, args: argparse.Namespace, endpoint: str, moto: Any, project: Path, log: Any
) -> Pass:
    reset_moto(endpoint)
    stage_env = local_stack.stage_environment(common.STAGE, project)
    local_stack.provision(endpoint, stage_env, secret=SECRET)
    spike = Pass(servers=count)
    with servers(count, endpoint, project, log) as processes:
        pids = {"moto": moto.pid} | {
            f"chalice local #{n + 1}": process.pid for n, process in enumerate(processes)
        }
        before = {name: common.cpu_seconds(pid) for name, pid in pids.items()}
        own = time.process_time()
        spike.results, spike.wall = run_spike(
            [port_of(process) for process in processes],
            args.clients,
            jobs(args.submissions, args.duplicates),
        )
        spike.cpu = {name: common.cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        spike.cpu["load generator (this process)"] = time.process_time() - own
    check_stored(spike, scan(endpoint, stage_env["TABLE_NAME"]))
    return spike


def print_pass(spike: Pass, clients: int) -> None:
    latencies = [result.latency_ms for result in spike.results]
    figures = common.describe(latencies)
    codes = Counter(result.status for result in spike.results)
    five = sum(count for code, count in codes.items() if code >= 500)
    failed = codes.get(0, 0)
    print(
        f"\n== spike: {len(spike.results)} submissions, {clients} clients, "
        f"{spike.servers} chalice local process(es) =="
    )
    print(
        f"throughput {len(spike.results) / spike.wall:7.1f} submissions/s ({spike.wall:.1f} s wall)"
    )
    quarter = max(1, len(spike.results) // 4)
    ordered = sorted(spike.results, key=lambda result: result.finished)
    pace = []
    for number in range(4):
        chunk = ordered[number * quarter : (number + 1) * quarter]
        if len(chunk) > 1:
            pace.append(f"{(len(chunk) - 1) / (chunk[-1].finished - chunk[0].finished):.1f}")
    print(f"by quarter  {' / '.join(pace)} submissions/s (the table grows as it runs)")
    print(
        f"latency ms  p50 {figures['p50']:.0f}  p95 {figures['p95']:.0f}  "
        f"p99 {figures['p99']:.0f}  max {figures['max']:.0f}"
    )
    print(f"responses   {dict(sorted(codes.items()))}; 5xx: {five}; connection errors: {failed}")
    print(
        f"stored      {spike.stored} requests, {spike.locks} duplicate locks for "
        f"{len({r.email for r in spike.results})} distinct addresses; "
        f"duplicates stored: {'none' if not spike.problems else 'SEE PROBLEMS'}"
    )
    busy = ", ".join(
        f"{name} {seconds:.1f} s ({seconds / spike.wall:.0%} of a core)"
        for name, seconds in spike.cpu.items()
    )
    print(f"CPU used    {busy}")
    for problem in spike.problems[:10]:
        print(f"PROBLEM     {problem}")


# --- drain -------------------------------------------------------------------


def use_stage(project: Path, endpoint: str) -> None:
    """This process gets the stage's environment, as manage.py's use_stage does."""
    from chalicelib import aws

    os.environ.update(local_stack.stage_environment(common.STAGE, project))
    os.environ.update(local_stack.aws_environment(endpoint))
    aws.reset()


def drain(
    project: Path, endpoint: str, max_runs: int
) -> tuple[list[tuple[float, int, bool]], list[dict[str, int]], float]:
    """Run the retry job until the queue is empty; (sends, runs' counts, wall s)."""
    from chalicelib import aws, journey

    use_stage(project, endpoint)
    sends: list[tuple[float, int, bool]] = []

    def on_send(params: dict[str, Any], **_: Any) -> None:
        to = params["Destination"]["ToAddresses"]
        sends.append((time.monotonic(), len(to), TARGET in to))

    aws.sesv2().meta.events.register("provide-client-params.sesv2.SendEmail", on_send)
    runs: list[dict[str, int]] = []
    start = time.monotonic()
    for _ in range(max_runs):
        began = time.monotonic()

        def time_left(began: float = began) -> float:
            return LAMBDA_BUDGET_SECONDS - (time.monotonic() - began)

        counts = journey.retry_queued(journey.now(), time_left)
        runs.append(counts)
        if not any(counts.values()):
            break
    return sends, runs, time.monotonic() - start


def peak_rate(times: list[float], window: float = 1.0) -> int:
    """Most events in any ``window`` seconds."""
    best, low = 0, 0
    for high, moment in enumerate(times):
        while moment - times[low] > window:
            low += 1
        best = max(best, high - low + 1)
    return best


def rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")


def check_mail(endpoint: str, emails: set[str]) -> tuple[Counter[str], Counter[str]]:
    """Letters and other messages per supporter address, from moto's record."""
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json") as response:
        data = json.load(response)
    letters: Counter[str] = Counter()
    others: Counter[str] = Counter()
    for message in data["ses"]["RawMessage"]:
        destinations = [address.lower() for address in message["destinations"]]
        supporters = [address for address in destinations if address in emails]
        (letters if TARGET in destinations else others).update(supporters)
    return letters, others


def print_drain(
    sends: list[tuple[float, int, bool]],
    runs: list[dict[str, int]],
    wall: float,
    configured: float,
    letters: Counter[str],
    others: Counter[str],
    emails: set[str],
) -> None:
    letter_times = [moment for moment, _, is_letter in sends if is_letter]
    all_times = [moment for moment, _, _ in sends]
    recipient_times = [moment for moment, count, _ in sends for _ in range(count)]
    print(f"\n== drain: the retry job, SEND_RATE_PER_SECOND={configured:g} ==")
    print(f"runs        {len(runs)} ({wall:.1f} s): {runs}")
    print(
        f"letters     {len(letter_times)} at {rate(letter_times):.2f}/s "
        f"(peak {peak_rate(letter_times)} in 1 s; configured {configured:g}/s; "
        f"{rate(letter_times) / configured:.2f}x)"
    )
    print(
        f"all emails  {len(all_times)} at {rate(all_times):.2f}/s "
        f"(peak {peak_rate(all_times)} in 1 s; {rate(all_times) / configured:.2f}x the configured rate)"
    )
    print(
        f"recipients  {len(recipient_times)} at {rate(recipient_times):.2f}/s "
        f"(peak {peak_rate(sorted(recipient_times))} in 1 s; "
        f"{rate(recipient_times) / configured:.2f}x the configured rate)"
    )
    once = sum(1 for email in emails if letters[email] == 1)
    more = sum(1 for email in emails if letters[email] > 1)
    none = sum(1 for email in emails if letters[email] == 0)
    print(
        f"letters per request (moto): exactly one {once}, none {none}, more than one {more}; "
        f"other emails per request: {dict(Counter(others[email] for email in emails))}"
    )


def print_sizes(items: list[dict[str, Any]]) -> None:
    sizes: dict[str, list[int]] = defaultdict(list)
    for item in items:
        kind = item["record_type"]["S"]
        if kind == "request":
            kind += f" ({item['status']['S']})"
        sizes[kind].append(common.item_size(item))
    print("\n== DynamoDB item sizes (bytes, DynamoDB's size rules, real items in moto) ==")
    for kind, values in sorted(sizes.items()):
        print(
            f"{kind:<24} n={len(values):5d}  mean {sum(values) / len(values):6.0f}  "
            f"max {max(values):5d}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duplicates", type=int, default=100, help="double submits among them")
    parser.add_argument(
        "--servers", default="1", help="chalice local processes per pass, e.g. 1 or 1,2"
    )
    parser.add_argument("--rate", type=float, default=14.0, help="SEND_RATE_PER_SECOND")
    parser.add_argument("--no-drain", action="store_true")
    parser.add_argument(
        "--moto",
        choices=["fair", "stock"],
        default="fair",
        help="stock: moto as it ships (its transactions race and cost O(table); see tools/moto_server.py)",
    )
    parser.add_argument("--max-runs", type=int, default=20)
    parser.add_argument("--logs", type=Path, help="keep the servers' and the drain's logs here")
    args = parser.parse_args()
    counts = [int(value) for value in args.servers.split(",")]
    began = time.monotonic()

    print(
        f"spike on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} "
        f"(other processes on this machine share the cores); moto {args.moto}"
    )
    with tempfile.TemporaryDirectory(prefix="takeback-spike-") as scratch:
        folder = Path(scratch)
        (folder / "project").mkdir()
        project = common.project_copy(
            folder / "project",
            {
                "OUTBOX_DIR": "",
                "SEND_MODE": "queue",
                "VERIFICATION_REQUIRED": "false",
                "SEND_RATE_PER_SECOND": f"{args.rate:g}",
            },
        )
        port = local_stack.free_port()
        endpoint = f"http://127.0.0.1:{port}"
        logs = args.logs or folder
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / "servers.log", "wb") as log:
            moto = start_moto(port, args.moto == "fair", log)
            with local_stack.running([moto]):
                passes = []
                for count in counts:
                    spike = one_pass(count, args, endpoint, moto, project, log)
                    print_pass(spike, args.clients)
                    passes.append(spike)
                table = local_stack.stage_environment(common.STAGE, project)["TABLE_NAME"]
                if not args.no_drain:
                    emails = {result.email for result in passes[-1].results}
                    # The app's logs (one JSON line per email) go to a file.
                    with open(logs / "drain.log", "w") as drain_log:  # noqa: SIM117
                        with contextlib.redirect_stdout(drain_log):
                            sends, runs, wall = drain(project, endpoint, args.max_runs)
                    letters, others = check_mail(endpoint, emails)
                    print_drain(sends, runs, wall, args.rate, letters, others, emails)
                items = scan(endpoint, table)
                statuses = Counter(
                    item["status"]["S"] for item in items if item["record_type"]["S"] == "request"
                )
                print(f"request statuses at the end: {dict(statuses)}")
                print_sizes(items)
    print(
        f"load average at the end {os.getloadavg()[0]:.1f}; total {time.monotonic() - began:.0f} s"
    )


def _guarded(entry: Callable[[], None]) -> None:
    try:
        entry()
    except Exception:
        # Powertools' logger replaces sys.excepthook with one that logs to
        # the stream it was created with: print the error ourselves.
        traceback.print_exc()
        sys.exit(1)


if __name__ == "__main__":
    _guarded(main)
