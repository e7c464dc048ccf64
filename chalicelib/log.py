"""Structured JSON logs that never carry names, addresses or tokens.

Only request ids, statuses, event names and error codes are logged. The
logger is created on first use (Powertools costs import time).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger


@functools.cache
def logger() -> Logger:
    from aws_lambda_powertools import Logger

    return Logger(service="takeback", log_uncaught_exceptions=True)
