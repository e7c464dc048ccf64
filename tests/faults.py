"""Fault injection at the botocore level, on the app's own cached clients.

A ``before-call`` handler that returns a response short-circuits the HTTP
call exactly as botocore's Stubber does, so the code under test sees the
same ClientError it would get from AWS; a handler that raises simulates this
process failing just before a call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from botocore.awsrequest import AWSResponse


class Fault:
    """Counts calls of one operation; fails those that ``when`` selects."""

    def __init__(self, when: Callable[[int], bool], make: Callable[[], Any]) -> None:
        self.when = when
        self.make = make
        self.calls = 0
        self.injected = 0

    def __call__(self, **_: Any) -> Any:
        self.calls += 1
        if not self.when(self.calls):
            return None
        self.injected += 1
        return self.make()


def error(
    code: str, status: int = 400, message: str = "injected", reasons: list[str] | None = None
) -> Callable[[], Any]:
    """An AWS error; ``reasons``: a cancelled transaction's per-item codes."""

    def make() -> Any:
        parsed: dict[str, Any] = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        if reasons is not None:
            parsed["CancellationReasons"] = [{"Code": reason} for reason in reasons]
        return AWSResponse("http://fault.invalid", status, {}, None), parsed

    return make


def crash(message: str = "injected crash") -> Callable[[], Any]:
    def make() -> Any:
        raise RuntimeError(message)

    return make


@contextlib.contextmanager
def inject(client: Any, operation: str, fault: Fault) -> Iterator[Fault]:
    """Attach ``fault`` to ``client``'s ``operation`` for the with-block."""
    service = client.meta.service_model.service_id.hyphenize()
    event = f"before-call.{service}.{operation}"
    client.meta.events.register_first(event, fault)
    try:
        yield fault
    finally:
        client.meta.events.unregister(event, fault)
