"""Shared helpers for the benchmarks: project copies, percentiles, instant AWS.

``InstantAWS`` answers every botocore request in-process, at once, through
botocore's ``before-send`` hook: the application still pays for building,
validating and serialising each request, SigV4 signing and parsing the
response (as it does in Lambda); only the socket and AWS's own latency are
left out. It keeps a small in-memory table so that what the app wrote can be
read back (enough for the app's own update expressions, not a DynamoDB).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STAGE = "local"
# An endpoint nothing listens on: if a call ever escaped the stub it would
# fail at once instead of reaching AWS.
NOWHERE = "http://127.0.0.1:9"


def project_copy(folder: Path, overrides: dict[str, str], stage: str = STAGE) -> Path:
    """The project through symlinks, with one stage's settings changed.

    (The same as tests/conftest.py's ``_project_copy``, without pytest.)
    """
    for name in ("app.py", "chalicelib", "templates", "vendor"):
        (folder / name).symlink_to(ROOT / name)
    (folder / ".chalice").mkdir()
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    config["stages"][stage]["environment_variables"].update(overrides)
    (folder / ".chalice" / "config.json").write_text(json.dumps(config))
    return folder


# --- figures ----------------------------------------------------------------


def local_dynamodb(endpoint: str, config: Any = None) -> Any:
    """A DynamoDB client for the bench's own moto server (throwaway credentials)."""
    import boto3

    from tools import local_stack

    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=local_stack.REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=config,
    )


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted samples."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def describe(samples: Sequence[float]) -> dict[str, float]:
    return {
        "p50": percentile(samples, 50),
        "p90": percentile(samples, 90),
        "p95": percentile(samples, 95),
        "p99": percentile(samples, 99),
        "mean": statistics.fmean(samples) if samples else float("nan"),
        "max": max(samples) if samples else float("nan"),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (and its reaped children) used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # After the command: state=0 ... utime=11 stime=12 cutime=13 cstime=14.
    ticks = sum(int(fields[index]) for index in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


# --- DynamoDB item sizes ------------------------------------------------------


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return min(21, (len(digits) + 1) // 2 + 1)


def attribute_size(value: dict[str, Any]) -> int:
    """Bytes one DynamoDB attribute value counts for (AWS's published rules)."""
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + attribute_size(element) for element in inner)
    if kind == "M":
        return 3 + sum(
            1 + len(name.encode("utf-8")) + attribute_size(element)
            for name, element in inner.items()
        )
    if kind == "SS":
        return sum(len(element.encode("utf-8")) for element in inner)
    if kind == "NS":
        return sum(_number_size(element) for element in inner)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, Any]) -> int:
    """Bytes an item counts for: attribute names plus values."""
    return sum(len(name.encode("utf-8")) + attribute_size(value) for name, value in item.items())


# --- instant AWS ----------------------------------------------------------------


class _Body:
    """The raw body of a canned response (what AWSResponse reads)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterable[bytes]:
        yield self._data


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index].strip())
            start = index + 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]


_CLAUSES = re.compile(r"\b(SET|REMOVE|ADD|DELETE)\b")


class InstantAWS:
    """DynamoDB, SES v2 and SSM answered in-process with no delay."""

    SECRET = "bench-signing-secret-not-for-production"

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.sent: list[dict[str, Any]] = []
        # CPU this stub spent answering (it stands in for the HTTP transport
        # botocore would otherwise run; reported so it can be told apart).
        self.spent_ns = 0
        self._lock = threading.Lock()

    def install(self, *clients: Any) -> None:
        for client in clients:
            client.meta.events.register("before-send", self._answer)

    # botocore calls this with the prepared (signed) request.
    def _answer(self, request: Any, event_name: str, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        start = time.thread_time_ns()
        service, operation = event_name.split(".")[1:3]
        body = json.loads(request.body) if request.body else {}
        with self._lock:
            self.calls[f"{service}.{operation}"] += 1
            handler = getattr(self, f"_{service}_{operation}", None)
            if handler is None:
                raise NotImplementedError(f"{service}.{operation} is not stubbed")
            result = handler(body)
        content_type = "application/json" if service == "sesv2" else "application/x-amz-json-1.0"
        headers = {"content-type": content_type, "x-amzn-requestid": str(uuid.uuid4())}
        response = AWSResponse(request.url, 200, headers, _Body(json.dumps(result).encode()))
        self.spent_ns += time.thread_time_ns() - start
        return response

    # --- DynamoDB
    def _dynamodb_GetItem(self, body: dict[str, Any]) -> dict[str, Any]:
        item = self.items.get(body["Key"]["pk"]["S"])
        return {"Item": item} if item is not None else {}

    def _dynamodb_PutItem(self, body: dict[str, Any]) -> dict[str, Any]:
        self.items[body["Item"]["pk"]["S"]] = dict(body["Item"])
        return {}

    def _dynamodb_UpdateItem(self, body: dict[str, Any]) -> dict[str, Any]:
        item, updated = self._update(body)
        returns = body.get("ReturnValues", "NONE")
        if returns == "ALL_NEW":
            return {"Attributes": item}
        if returns == "UPDATED_NEW":
            return {"Attributes": {name: item[name] for name in updated if name in item}}
        return {}

    def _dynamodb_TransactWriteItems(self, body: dict[str, Any]) -> dict[str, Any]:
        for action in body["TransactItems"]:
            if "Put" in action:
                self._dynamodb_PutItem(action["Put"])
            elif "Update" in action:
                self._update(action["Update"])
            elif "Delete" in action:
                self.items.pop(action["Delete"]["Key"]["pk"]["S"], None)
        return {}

    def _dynamodb_Query(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"Items": [], "Count": 0, "ScannedCount": 0}

    def _update(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Apply the app's update expressions (SET/REMOVE/ADD, list_append)."""
        key = body["Key"]["pk"]["S"]
        item = self.items.setdefault(key, {"pk": {"S": key}})
        names = body.get("ExpressionAttributeNames", {})
        values = body.get("ExpressionAttributeValues", {})
        pieces = _CLAUSES.split(body["UpdateExpression"])
        updated: list[str] = []
        for clause, text in zip(pieces[1::2], pieces[2::2], strict=True):
            for part in _split_top(text):
                if clause == "SET":
                    target, _, source = (side.strip() for side in part.partition("="))
                    name = names.get(target, target)
                    item[name] = self._value(item, source, names, values)
                elif clause == "REMOVE":
                    item.pop(names.get(part, part), None)
                    continue
                elif clause == "ADD":
                    target, source = part.split()
                    name = names.get(target, target)
                    total = Decimal(item.get(name, {"N": "0"})["N"]) + Decimal(values[source]["N"])
                    item[name] = {"N": str(total)}
                updated.append(names.get(part.split()[0], part.split()[0]))
        return item, updated

    def _value(
        self, item: dict[str, Any], source: str, names: dict[str, str], values: dict[str, Any]
    ) -> Any:
        if source.startswith(":"):
            return values[source]
        if source.startswith("list_append("):
            first, second = _split_top(source[len("list_append(") : -1])
            head = self._value(item, first, names, values)
            tail = self._value(item, second, names, values)
            return {"L": head["L"] + tail["L"]}
        if source.startswith("if_not_exists("):
            path, default = _split_top(source[len("if_not_exists(") : -1])
            return item.get(names.get(path, path), values[default])
        return item[names.get(source, source)]

    # --- SES v2
    def _sesv2_SendEmail(self, body: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(body)
        return {"MessageId": f"0100{uuid.uuid4().hex}-000000"}

    # --- SSM
    def _ssm_GetParameter(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "Parameter": {
                "Name": body["Name"],
                "Type": "SecureString",
                "Value": self.SECRET,
                "Version": 1,
            }
        }
