"""Exports, statistics and the report against the moto server (issue 5).

Requests are made through the real API; exports are then written in
DynamoDB's real format from the table's own items (gzip and manifests
included), read back from a folder and from S3, and compared with reading
the table directly.
"""

from __future__ import annotations

import argparse
import csv
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer

from chalicelib import export, stats
from tests.integration.helpers import SUPPORTER, body, link, post_json
from tests.unit.test_export import change, write_export
from tools import organisers

Items = Callable[[], list[dict[str, object]]]


def submit(client: Any, sent_mail: Any, confirm: bool = True, **fields: object) -> tuple[str, str]:
    """A request through the API; confirmed, its letter goes out. (id, status path)"""
    before = len(sent_mail())
    created = post_json(client, "/requests", {**SUPPORTER, **fields})
    assert created.status_code in (200, 201, 202), created.body
    request_id = body(created)["id"]
    if not confirm:
        return request_id, ""
    client.http.post(link(sent_mail()[before], "/confirm"))
    return request_id, link(sent_mail()[-1], "")


def report_event(client: Any, status_path: str, kind: str) -> None:
    response = post_json(client, status_path.replace("?token=", "/events?token="), {"type": kind})
    assert response.status_code == 200, response.body


@dataclass
class Campaign:
    zoe: str  # consented, letter sent
    bob: str  # no consent, answered
    emile: str  # consented but never confirmed
    ana: str  # consented, then asked to be forgotten
    expired: str  # an unconfirmed request past its TTL, not yet deleted


def run_campaign(client: Any, sent_mail: Any, table: str) -> Campaign:
    zoe, _ = submit(client, sent_mail, email="zoe@example.org", consent_updates=True)
    bob, bob_status = submit(
        client,
        sent_mail,
        first_name="Robert",
        last_name="O'Neil",
        email="bob@example.org",
        province="ON",
        language="en",
    )
    report_event(client, bob_status, "response_received")
    emile, _ = submit(
        client,
        sent_mail,
        confirm=False,
        first_name="Émile",
        last_name="Gagné",
        email="emile@example.org",
        consent_updates=True,
    )
    ana, ana_status = submit(
        client, sent_mail, first_name="Ana", email="ana@example.org", consent_updates=True
    )
    forgotten = post_json(client, ana_status.replace("?token=", "/forget?token="), {})
    assert forgotten.status_code == 200, forgotten.body
    # TTL deletion lags: an expired item can still be in the table.
    dynamodb = boto3.client("dynamodb")
    key = {"pk": {"S": f"request#{emile}"}}
    stale = dynamodb.get_item(TableName=table, Key=key)["Item"]
    stale.update(
        pk={"S": "request#expired-one"},
        request_id={"S": "expired-one"},
        expires_at={"N": str(int(time.time()) - 60)},
    )
    dynamodb.put_item(TableName=table, Item=stale)
    return Campaign(zoe, bob, emile, ana, "expired-one")


def typed(items: list[dict[str, object]]) -> list[dict[str, Any]]:
    serializer = TypeSerializer()
    return [{name: serializer.serialize(value) for name, value in each.items()} for each in items]


def export_csv(source: str, out: Path, consented_only: bool = False) -> list[list[str]]:
    args = argparse.Namespace(
        source=source, out=str(out), consented_only=consented_only, stage="local"
    )
    assert organisers.export_command(args) == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfrequest_id,first_name,")
    with out.open(encoding="utf-8-sig", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    assert tuple(header) == export.COLUMNS
    return sorted(rows)


@pytest.fixture
def campaign(client: Any, sent_mail: Any, env: dict[str, str]) -> Campaign:
    return run_campaign(client, sent_mail, env["TABLE_NAME"])


def test_an_export_gives_the_same_rows_as_the_table(
    campaign: Campaign, table_items: Items, tmp_path: Path
) -> None:
    folder = write_export(tmp_path / "export", [{"Item": i} for i in typed(table_items())], files=3)
    from_export = export_csv(str(folder), tmp_path / "from-export.csv")
    from_table = export_csv("table", tmp_path / "from-table.csv")
    assert from_export == from_table
    rows = {row[0]: dict(zip(export.COLUMNS, row, strict=True)) for row in from_export}
    assert set(rows) == {campaign.zoe, campaign.bob, campaign.emile, campaign.ana}
    zoe = rows[campaign.zoe]
    assert (zoe["first_name"], zoe["last_name"], zoe["language"]) == ("Zoë", "Côté-Lévesque", "fr")
    assert (
        "Zoë,Côté-Lévesque,zoe@example.org".encode() in (tmp_path / "from-export.csv").read_bytes()
    )
    assert (zoe["status"], zoe["outcome"], zoe["consent_updates"]) == ("sent", "pending", "true")
    assert zoe["consent_wording_version"] and zoe["consent_given_at"].startswith("20")
    assert datetime.fromisoformat(zoe["sent_at"]).tzinfo is not None
    bob = rows[campaign.bob]
    assert (bob["status"], bob["outcome"], bob["last_name"]) == (
        "answered",
        "answered_in_time",
        "O'Neil",
    )
    ana = rows[campaign.ana]
    assert (ana["status"], ana["first_name"], ana["email"]) == ("forgotten", "", "")
    assert rows[campaign.emile]["outcome"] == "not_sent"


def test_consented_only_lists_confirmed_consent_and_nobody_forgotten(
    campaign: Campaign, table_items: Items, tmp_path: Path
) -> None:
    folder = write_export(tmp_path / "export", [{"Item": i} for i in typed(table_items())])
    for source in (str(folder), "table"):
        rows = export_csv(source, tmp_path / "consented.csv", consented_only=True)
        assert [(row[0], row[3]) for row in rows] == [(campaign.zoe, "zoe@example.org")]


def test_an_incremental_export_brings_a_full_one_up_to_date(
    client: Any, sent_mail: Any, env: dict[str, str], table_items: Items, tmp_path: Path
) -> None:
    zoe, zoe_status = submit(client, sent_mail, email="zoe@example.org", consent_updates=True)
    bob, _ = submit(client, sent_mail, first_name="Bob", email="bob@example.org")
    ana, ana_status = submit(client, sent_mail, first_name="Ana", email="ana@example.org")
    before = {item["pk"]["S"]: item for item in typed(table_items())}
    taken = datetime.now(UTC)
    base = write_export(tmp_path / "full", [{"Item": i} for i in before.values()], starts=taken)

    report_event(client, zoe_status, "refused")  # the complaint kit goes out at once
    assert post_json(client, ana_status.replace("?token=", "/forget?token="), {}).status_code == 200
    nadia, _ = submit(client, sent_mail, first_name="Nadia", email="nadia@example.org")
    after = {item["pk"]["S"]: item for item in typed(table_items())}
    changes = [
        change(before.get(key), after.get(key))
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    ]
    assert any("NewImage" not in each for each in changes)  # Ana's email lock went
    increment = write_export(
        tmp_path / "increment",
        changes,
        files=2,
        incremental=True,
        starts=taken,
        ends=datetime.now(UTC) + timedelta(seconds=1),
    )

    table = sorted(export.rows(export.read("table")))
    assert sorted(export.rows(export.read(f"{base},{increment}", lean=True))) == table
    assert sorted(export.rows(export.read(str(base)))) != table
    by_id = {row[0]: row for row in table}
    assert by_id[zoe][6] == "kit_sent" and by_id[zoe][12] == "refused"
    assert by_id[ana][1:4] == ["", "", ""]
    # The increment alone: the requests it changed, as they are now.
    alone = sorted(row[0] for row in export.rows(export.read(str(increment))))
    assert alone == sorted([zoe, ana, nadia])
    assert bob not in alone


def upload(folder: Path, bucket: str, prefix: str) -> None:
    s3 = boto3.client("s3")
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")


def test_an_s3_export_reads_like_a_downloaded_one(
    campaign: Campaign, table_items: Items, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_export(tmp_path / "export", [{"Item": i} for i in typed(table_items())])
    s3 = boto3.client("s3")
    s3.create_bucket(
        Bucket="takeback-exports",
        CreateBucketConfiguration={"LocationConstraint": "ca-central-1"},
    )
    upload(folder, "takeback-exports", "exports/AWSDynamoDB/01767225600000-abcdef12")
    uri = "s3://takeback-exports/exports/AWSDynamoDB/01767225600000-abcdef12"
    assert export_csv(uri, tmp_path / "s3.csv") == export_csv(str(folder), tmp_path / "dir.csv")
    assert len(export_csv(uri, tmp_path / "s3.csv")) == 4

    capsys.readouterr()
    args = argparse.Namespace(
        source="s3://takeback-exports/exports",
        out=str(tmp_path / "x.csv"),
        consented_only=False,
        stage="local",
    )
    assert organisers.export_command(args) == 2
    assert f"exports found below it: {uri}" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.csv.part").exists()


def test_statistics_and_report_from_the_table_and_from_an_export(
    campaign: Campaign, table_items: Items, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_export(tmp_path / "export", [{"Item": i} for i in typed(table_items())])
    from_export = stats.figures_json(export.read_records(str(folder)))
    assert stats.figures_json(export.read_records("table")) == from_export
    assert from_export["requests"] == 4
    assert from_export["compliance"]["sent"] == 3  # Zoë, Bob, and Ana before she left
    assert from_export["compliance"]["answered_in_time"] == 1
    assert from_export["by_status"] == {
        "answered": 1,
        "forgotten": 1,
        "pending_verification": 1,
        "sent": 1,
    }

    capsys.readouterr()
    assert organisers.stats_command(argparse.Namespace(stage="local", source=str(folder))) == 0
    printed = capsys.readouterr().out
    assert re.search(r"\n  letters sent +3\n  answered within the deadline +1\n", printed)

    out = tmp_path / "report.html"
    args = argparse.Namespace(stage="local", source=None, out=str(out))
    assert organisers.report_command(args) == 0
    html = out.read_text(encoding="utf-8")
    assert "Clearview AI" in html and "<svg" in html
    for personal in ("Zoë", "Côté", "zoe@example.org", "Robert", "Émile", campaign.zoe):
        assert personal not in html
