"""The table's stream, delivered locally as Lambda delivers it in AWS.

In a deployed stage an event source mapping reads the table's DynamoDB
stream and invokes ``send_stored`` with batches of records. ``chalice local``
and ``chalice.test.Client`` fire no event sources, so locally this does that
job: it reads the stream from the moto server through the DynamoDB Streams
API and hands each batch, in Lambda's event format, to a callback.

- ``make run`` runs ``python manage.py deliver-stream`` next to chalice local;
- the tests' client delivers the stream after each HTTP call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

BATCH_SIZE = 10  # as app.py's decorator asks of Lambda

Event = dict[str, Any]


class StreamReader:
    """Reads a table's stream from its start, batch by batch."""

    def __init__(self, table_name: str, batch_size: int = BATCH_SIZE) -> None:
        import boto3
        from botocore.config import Config

        # One attempt: a reset moto server forgets iterators, and the caller
        # starts again rather than waiting on retries.
        config = Config(retries={"max_attempts": 1, "mode": "standard"})
        dynamodb = boto3.client("dynamodb", config=config)
        self._streams = boto3.client("dynamodbstreams", config=config)
        self.stream_arn: str = dynamodb.describe_table(TableName=table_name)["Table"][
            "LatestStreamArn"
        ]
        stream = self._streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        # moto keeps one shard per table (DynamoDB splits them; Lambda reads
        # each in order, as this does).
        self._iterators = [
            self._streams.get_shard_iterator(
                StreamArn=self.stream_arn,
                ShardId=shard["ShardId"],
                ShardIteratorType="TRIM_HORIZON",
            )["ShardIterator"]
            for shard in stream["Shards"]
        ]
        self._batch_size = batch_size

    def events(self) -> Iterator[Event]:
        """Lambda events for the records written since the last call."""
        for index in range(len(self._iterators)):
            while True:
                response = self._streams.get_records(
                    ShardIterator=self._iterators[index], Limit=self._batch_size
                )
                self._iterators[index] = response["NextShardIterator"]
                if not response["Records"]:
                    break
                yield {"Records": [self._as_lambda_sends(r) for r in response["Records"]]}

    def _as_lambda_sends(self, record: dict[str, Any]) -> dict[str, Any]:
        images = dict(record["dynamodb"])
        created = images.get("ApproximateCreationDateTime")
        if created is not None and hasattr(created, "timestamp"):
            images["ApproximateCreationDateTime"] = int(created.timestamp())
        return {**record, "dynamodb": images, "eventSourceARN": self.stream_arn}


def deliver(reader: StreamReader, invoke: Callable[[Event], object]) -> int:
    """Hand every new batch to ``invoke``; the number of batches."""
    batches = 0
    for event in reader.events():
        invoke(event)
        batches += 1
    return batches


def deliver_forever(
    table_name: str, invoke: Callable[[Event], object], poll_seconds: float = 0.1
) -> None:
    """``make run``'s stand-in for the event source mapping.

    A batch whose function fails is reported and skipped: in AWS Lambda
    retries it a few times, then the retry job's safety net sends what it
    did not. When the moto server is reset, reading starts on the new table.
    """
    import traceback

    def invoke_reporting(event: Event) -> None:
        try:
            invoke(event)
        except Exception:  # keep the local stack up
            traceback.print_exc()

    reader: StreamReader | None = None
    while True:
        try:
            reader = reader or StreamReader(table_name)
            deliver(reader, invoke_reporting)
        except Exception:  # no table yet, or moto was reset
            reader = None
        time.sleep(poll_seconds)
