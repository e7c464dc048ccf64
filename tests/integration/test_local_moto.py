"""The local moto server answers one AWS call at a time, as DynamoDB would.

Stock moto is threaded but not thread-safe: a failed transaction rolls the
whole table back to a copy taken before a concurrent write finished, which
undid a verification and let a second one through (CI, 2026-11-27). The
app's exactly-once guarantees rest on each call being atomic.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config


def create_table(dynamodb: Any, name: str, **options: Any) -> str:
    """A table keyed like the app's (a hash key ``pk`` only)."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **options,
    )
    return name


def test_concurrent_conditional_transactions_have_one_winner(moto_endpoint: str) -> None:
    dynamodb = boto3.client(
        "dynamodb", endpoint_url=moto_endpoint, config=Config(max_pool_connections=20)
    )
    table = create_table(dynamodb, "atomicity-check")
    try:
        # Enough items that moto's whole-table copy takes a while.
        for start in range(0, 800, 25):
            dynamodb.batch_write_item(
                RequestItems={
                    table: [
                        {"PutRequest": {"Item": {"pk": {"S": f"filler{n}"}, "x": {"S": "x" * 200}}}}
                        for n in range(start, start + 25)
                    ]
                }
            )

        def claim(round_: int, attempt: int) -> bool:
            try:
                dynamodb.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": table,
                                "Key": {"pk": {"S": f"claim{round_}"}},
                                "UpdateExpression": "SET winner = :n",
                                "ConditionExpression": "attribute_not_exists(winner)",
                                "ExpressionAttributeValues": {":n": {"N": str(attempt)}},
                            }
                        },
                        {
                            "Put": {
                                "TableName": table,
                                "Item": {"pk": {"S": f"by{round_}-{attempt}"}},
                            }
                        },
                    ]
                )
            except dynamodb.exceptions.TransactionCanceledException:
                return False
            return True

        for round_ in range(6):
            with ThreadPoolExecutor(max_workers=20) as pool:
                wins = list(pool.map(lambda attempt: claim(round_, attempt), range(20)))  # noqa: B023
            assert wins.count(True) == 1
            stored = dynamodb.get_item(TableName=table, Key={"pk": {"S": f"claim{round_}"}})
            assert wins.index(True) == int(stored["Item"]["winner"]["N"])
    finally:
        dynamodb.delete_table(TableName=table)


def test_a_failed_transaction_leaves_the_stream_as_it_was(moto_endpoint: str) -> None:
    """moto puts back a copy of the table, stream and all: records of the
    rolled-back writes stayed, and later ones went where no reader looked."""
    from tools import streams

    dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint)
    stream = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    table = create_table(dynamodb, "stream-rollback-check", StreamSpecification=stream)
    try:
        reader = streams.StreamReader(table)

        def put(*keys: str) -> None:
            dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": table,
                            "Item": {"pk": {"S": key}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    }
                    for key in keys
                ]
            )

        def keys_streamed() -> list[str]:
            events: list[streams.Event] = []
            streams.deliver(reader, events.append)
            return [r["dynamodb"]["Keys"]["pk"]["S"] for e in events for r in e["Records"]]

        put("a")
        assert keys_streamed() == ["a"]
        try:
            put("b", "a")  # "b" is written, then "a" fails its condition
        except dynamodb.exceptions.TransactionCanceledException:
            pass
        else:
            raise AssertionError("the transaction should have failed")
        put("c")
        assert keys_streamed() == ["c"]
    finally:
        dynamodb.delete_table(TableName=table)
