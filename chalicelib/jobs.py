"""Entry points of the scheduled Lambdas, shared with manage.py."""

from __future__ import annotations

import json
from typing import Any

from chalicelib import chase as chase_module
from chalicelib import events, journey
from chalicelib.journey import now
from chalicelib.log import logger
from chalicelib.settings import get_settings


def _time_left(context: Any) -> Any:
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        return lambda: float(context.get_remaining_time_in_millis()) / 1000
    return None


def chase(event: Any, context: Any) -> dict[str, object]:
    """One chase run as of today; stops before the Lambda timeout."""
    summary = chase_module.run(now().date(), time_left=_time_left(context))
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


def retry(event: Any, context: Any) -> dict[str, object]:
    """Send queued mail whose next attempt is due."""
    counts = journey.retry_queued(now(), time_left=_time_left(context))
    logger().info("retry run", extra=counts)
    return dict(counts)


def purge(event: Any, context: Any) -> dict[str, object]:
    """Anonymise finished requests past their retention period."""
    purged = journey.purge_due(now().date(), get_settings().chase_lookback_days)
    logger().info("purge run", extra={"purged": purged})
    return {"purged": purged}


def stored(event: dict[str, Any], context: Any) -> dict[str, object]:
    """A batch of the table's stream: send what the API has just stored.

    An exception fails the batch and Lambda delivers it again; what was
    already sent is claimed, so it is not sent twice.
    """
    from chalicelib import store

    changes = store.request_changes(event.get("Records") or [])
    counts = journey.on_stored(changes, time_left=_time_left(context))
    logger().info("stream batch", extra=counts)
    return dict(counts)


def ses_event(message: str) -> dict[str, object]:
    """One SES event from SNS; malformed messages are logged and dropped."""
    try:
        payload = json.loads(message)
    except ValueError:
        payload = None
    outcome = events.handle(payload)
    logger().info("SES event", extra={"outcome": outcome})
    return {"outcome": outcome}
