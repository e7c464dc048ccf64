"""takeback: routes and event handlers. The work happens in chalicelib/."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from chalice.app import (
    Chalice,
    CloudWatchEvent,
    Cron,
    DynamoDBEvent,
    IAMAuthorizer,
    Rate,
    Request,
    Response,
    SNSEvent,
)

app = Chalice(app_name="takeback")

# The decorator needs an ARN when the app is imported, before the table
# exists; tools/package.py points the deployed function at the stage
# table's stream (Fn::GetAtt Table.StreamArn).
TABLE_STREAM = "arn:aws:dynamodb:ca-central-1:000000000000:table/takeback/stream/packaged"

# No content-type list: Chalice's own check (415 in its own format) is off,
# and the views answer every type themselves, in the supporter's language.
ANY_TYPE: list[str] = []


def views() -> ModuleType:
    # Imported on first use: a cold start pays for pydantic, Jinja and boto3
    # only when a route needs them (see bench/coldstart).
    from chalicelib import views

    return views


@app.middleware("http")
def cors(event: Request, get_response: Any) -> Response:
    return views().with_cors(event, get_response(event))


@app.route("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.route("/requests", methods=["POST"], content_types=ANY_TYPE)
def create_request() -> Response:
    return views().create_request(app.current_request)


@app.route("/requests", methods=["OPTIONS"])
def preflight_requests() -> Response:
    return views().preflight(app.current_request)


@app.route("/requests/{request_id}", methods=["GET"])
def show_status(request_id: str) -> Response:
    return views().show_status(app.current_request, request_id)


@app.route("/requests/{request_id}/confirm", methods=["GET"])
def show_confirm(request_id: str) -> Response:
    return views().show_confirm(app.current_request, request_id)


@app.route("/requests/{request_id}/confirm", methods=["POST"], content_types=ANY_TYPE)
def confirm(request_id: str) -> Response:
    return views().confirm(app.current_request, request_id)


@app.route("/requests/{request_id}/events", methods=["POST"], content_types=ANY_TYPE)
def report(request_id: str) -> Response:
    return views().report(app.current_request, request_id)


@app.route("/requests/{request_id}/withdraw-consent", methods=["POST"], content_types=ANY_TYPE)
def withdraw_consent(request_id: str) -> Response:
    return views().withdraw_consent(app.current_request, request_id)


@app.route("/requests/{request_id}/forget", methods=["POST"], content_types=ANY_TYPE)
def forget(request_id: str) -> Response:
    return views().forget(app.current_request, request_id)


@app.route("/admin/stats", methods=["GET"], authorizer=IAMAuthorizer())
def admin_stats() -> Response:
    """Campaign figures for organisers: IAM-signed requests only (open locally)."""
    return views().admin_stats(app.current_request)


@app.schedule(Cron(0, 13, "*", "*", "?", "*"))
def chase_overdue(event: CloudWatchEvent) -> dict[str, object]:
    """Daily at 13:00 UTC (morning in Canada): chase every overdue request."""
    from chalicelib import jobs

    return jobs.chase(event, event.context)


@app.schedule(Rate(5, unit=Rate.MINUTES))
def retry_queued(event: CloudWatchEvent) -> dict[str, object]:
    """Every 5 minutes: send mail that SES refused for now, with backoff."""
    from chalicelib import jobs

    return jobs.retry(event, event.context)


@app.schedule(Cron(30, 7, "*", "*", "?", "*"))
def purge_expired(event: CloudWatchEvent) -> dict[str, object]:
    """Daily: remove personal data of requests past their retention period."""
    from chalicelib import jobs

    return jobs.purge(event, event.context)


@app.on_dynamodb_record(stream_arn=TABLE_STREAM, batch_size=10, starting_position="TRIM_HORIZON")
def send_stored(event: DynamoDBEvent) -> dict[str, object]:
    """SEND_MODE=stream: the confirmation email and the letter, within about
    a second of the API storing the request or its confirmation."""
    from chalicelib import jobs

    return jobs.stored(event.to_dict(), event.context)


@app.on_sns_message(topic="takeback-ses-events")
def ses_events(event: SNSEvent) -> dict[str, object]:
    """Delivery, bounce and complaint events from the SES configuration set."""
    from chalicelib import jobs

    return jobs.ses_event(event.message)
