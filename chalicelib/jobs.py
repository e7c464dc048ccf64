"""Entry points of the scheduled Lambdas, shared with manage.py."""

from __future__ import annotations

from typing import Any

from chalicelib import chase as chase_module
from chalicelib.journey import now
from chalicelib.log import logger


def chase(event: Any, context: Any) -> dict[str, object]:
    """One chase run as of today; stops before the Lambda timeout."""
    time_left = None
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):

        def time_left() -> float:
            return float(context.get_remaining_time_in_millis()) / 1000

    summary = chase_module.run(now().date(), time_left=time_left)
    result = {
        "as_of": summary.as_of.isoformat(),
        "checked": summary.checked,
        "followed_up": summary.followed_up,
        "kits": summary.kits,
        "reminders": summary.reminders,
        "skipped": summary.skipped,
        "failed": summary.failed,
        "deferred": summary.deferred,
        "stopped_early": summary.stopped_early,
        "items_read": summary.read.items,
    }
    logger().info("chase run", extra=result)
    return result
