"""moto's server, made to answer one AWS call at a time, as DynamoDB would.

Run as a script: ``python tools/moto_server.py [--cheap-rollback] -H HOST -p PORT``.

moto's server is threaded but its DynamoDB backend is not thread-safe: two
concurrent conditional writes can both pass their condition, and a
TransactWriteItems deep-copies the table while other threads write to it.
Real DynamoDB makes each call atomic, and the app's exactly-once guarantees
(one request per address, one letter per request) rest on that. So every
request is answered under one lock; the app's own requests still interleave
between calls, which is what the tests need to exercise.

A failed transaction also leaves the table's stream as it found it (see
``keep_streams_on_rollback``).

``--cheap-rollback`` (benchmarks): moto saves the whole table before every
transaction so it can roll back, which makes each transaction cost O(table
size). This saves only the items the transaction touches instead (tables
with a hash key only, like the app's; others keep moto's own rollback).
"""

from __future__ import annotations

import copy
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any


def answer_one_at_a_time() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    lock = threading.Lock()
    answer = DomainDispatcherApplication.__call__

    def one_at_a_time(
        self: Any, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        with lock:  # the body too: moto may build it lazily
            return list(answer(self, environ, start_response))

    DomainDispatcherApplication.__call__ = one_at_a_time  # type: ignore[method-assign]


def roll_back_only_touched_items() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    class NoTableCopy:
        """moto's ``copy`` module, except that tables are not deep-copied."""

        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            if isinstance(value, Table) and value.range_key_attr is None:
                return value
            return copy.deepcopy(value, memo)

    models.copy = NoTableCopy()  # type: ignore[attr-defined,assignment]
    transact = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = []
        for action in transact_items:
            operation = next(iter(action.values()))
            table = self.get_table(operation["TableName"])
            if table.range_key_attr is not None:
                continue  # moto's own rollback copied this table
            key = DynamoType((operation.get("Key") or operation["Item"])[table.hash_key_attr])
            saved.append((table, key, copy.deepcopy(table.items.get(key))))
        try:
            transact(self, transact_items)
        except Exception:
            for table, key, item in reversed(saved):
                if item is None:
                    table.items.pop(key, None)
                else:
                    table.items[key] = item
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def keep_streams_on_rollback() -> None:
    """A failed transaction leaves no stream records and the stream readable.

    moto rolls a transaction back by putting back a copy of the table, so
    the records its writes added stayed in the stream of the table readers
    hold, and new records went to the copy's, which no iterator reads.
    DynamoDB streams only what a transaction committed.
    """
    from moto.dynamodb import models

    transact = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        shards = {
            name: (table.stream_shard, len(table.stream_shard.items))
            for name, table in self.tables.items()
            if table.stream_shard is not None
        }
        try:
            transact(self, transact_items)
        except Exception:
            for name, (shard, length) in shards.items():
                del shard.items[length:]
                table = self.tables.get(name)
                if table is not None:
                    table.stream_shard, shard.table = shard, table
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    from moto import server

    answer_one_at_a_time()
    if "--cheap-rollback" in argv:
        argv = [arg for arg in argv if arg != "--cheap-rollback"]
        roll_back_only_touched_items()
    keep_streams_on_rollback()
    server.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
