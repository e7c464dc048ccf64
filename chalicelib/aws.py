"""Lazily created, cached AWS clients and the signing secret.

Nothing is created at import time: a cold start pays for a client only when a
handler first needs it, and tests point botocore at their moto server through
``AWS_ENDPOINT_URL`` before the first call (``reset()`` forgets old clients).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from chalicelib.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_ssm import SSMClient


def _config() -> Any:
    from botocore.config import Config

    # Short timeouts: an API Gateway request has 29 s in all, and a slow AWS
    # call is better answered with 503 than with a gateway timeout.
    return Config(
        connect_timeout=3,
        read_timeout=5,
        retries={"mode": "standard", "max_attempts": 3},
        # The app's own requests, built by code the tests run against
        # DynamoDB's API (moto), which validates them again: checking each
        # one client-side too costs ~0.1 ms per call on the hot path.
        parameter_validation=False,
    )


@functools.cache
def dynamodb() -> DynamoDBClient:
    import boto3

    return boto3.client("dynamodb", config=_config())


@functools.cache
def sesv2() -> SESV2Client:
    import boto3

    # No automatic retries for sends: a retried send that had in fact gone
    # through would mail the organisation twice. Throttling is handled by
    # leaving the request queued for the retry job.
    from botocore.config import Config

    return boto3.client(
        "sesv2",
        config=Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1}),
    )


@functools.cache
def ssm() -> SSMClient:
    import boto3

    return boto3.client("ssm", config=_config())


@functools.cache
def signing_secret() -> str:
    name = get_settings().signing_secret_param
    response = ssm().get_parameter(Name=name, WithDecryption=True)
    return response["Parameter"]["Value"]


def reset() -> None:
    """Forget cached clients, settings and secret (tests switch endpoints)."""
    for getter in (dynamodb, sesv2, ssm, signing_secret, get_settings):
        getter.cache_clear()
