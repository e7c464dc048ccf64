"""Reading DynamoDB exports and writing the organisers' CSV (issue 5).

Exports are written here in the real format (gzip, manifests, one record per
line in compact DynamoDB JSON) from items as store.py writes them; the
integration tests build them from the table itself.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import stat
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib import export, stats, store
from chalicelib.lifecycle import Status
from chalicelib.models import RequestRecord

TODAY = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 12, tzinfo=UTC).timestamp()
SENT = datetime(2026, 5, 4, 15, tzinfo=UTC)
DUE = date(2026, 6, 3)
Item = dict[str, Any]


# --- Writing exports as DynamoDB does ---------------------------------------


def compact(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def write_export(
    folder: Path,
    records: Iterable[Mapping[str, Any]],
    *,
    files: int = 2,
    incremental: bool = False,
    starts: datetime = datetime(2026, 6, 1, tzinfo=UTC),
    ends: datetime | None = None,
    prefix: str = "campaign-exports",
) -> Path:
    """An export of ``records`` (``{"Item": ...}`` or Keys/NewImage/OldImage)
    in ``folder``: data/*.json.gz, manifest-files.json, manifest-summary.json.
    """
    export_id = hashlib.sha1(str(folder).encode()).hexdigest()[:8]
    records = list(records)
    data = folder / "data"
    data.mkdir(parents=True)
    manifest: list[dict[str, Any]] = []
    size = 0
    for number in range(files):
        chunk = records[number::files]
        name = f"{hashlib.sha1(f'{folder}{number}'.encode()).hexdigest()[:26]}.json.gz"
        body = gzip.compress("".join(compact(record) + "\n" for record in chunk).encode())
        (data / name).write_bytes(body)
        size += len(body)
        manifest.append(
            {
                "itemCount": len(chunk),
                "md5Checksum": base64.b64encode(hashlib.md5(body).digest()).decode(),
                "etag": hashlib.md5(body).hexdigest(),
                "dataFileS3Key": f"{prefix}/AWSDynamoDB/{export_id}/data/{name}",
            }
        )
    (folder / "manifest-files.json").write_text("".join(json.dumps(m) + "\n" for m in manifest))

    def stamp(moment: datetime) -> str:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    summary: dict[str, Any] = {
        "version": "2023-08-01" if incremental else "2020-06-30",
        "exportArn": f"arn:aws:dynamodb:ca-central-1:123456789012:table/t/export/{export_id}",
        "startTime": stamp(starts),
        "endTime": stamp(starts),
        "tableArn": "arn:aws:dynamodb:ca-central-1:123456789012:table/t",
        "tableId": "00000000-0000-0000-0000-000000000000",
        "s3Bucket": "exports-bucket",
        "s3Prefix": prefix,
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None,
        "manifestFilesS3Key": f"{prefix}/AWSDynamoDB/{export_id}/manifest-files.json",
        "billedSizeBytes": size,
        "itemCount": len(records),
        "outputFormat": "DYNAMODB_JSON",
    }
    if incremental:
        summary.update(
            exportType="INCREMENTAL_EXPORT",
            exportFromTime=stamp(starts),
            exportToTime=stamp(ends or starts + timedelta(hours=1)),
            outputView="NEW_AND_OLD_IMAGES",
        )
    else:
        summary.update(exportType="FULL_EXPORT", exportTime=stamp(starts))
    (folder / "manifest-summary.json").write_text(json.dumps(summary, indent=2))
    return folder


def change(old: Item | None, new: Item | None) -> dict[str, Any]:
    """One incremental export record (NEW_AND_OLD_IMAGES)."""
    key = {"pk": (new or old or {})["pk"]}
    record: dict[str, Any] = {
        "Metadata": {"WriteTimestampMicros": {"N": "1780000000000000"}},
        "Keys": key,
    }
    if old is not None:
        record["OldImage"] = old
    if new is not None:
        record["NewImage"] = new
    return record


# --- Items as store.py writes them ---------------------------------------------


def record(number: int, **fields: Any) -> RequestRecord:
    values: dict[str, Any] = {
        "request_id": f"req-{number:04d}",
        "status": Status.SENT,
        "first_name": "Zoë",
        "last_name": "Côté-Lévesque",
        "email": f"zoe{number}@example.org",
        "language": "fr",
        "created_at": SENT - timedelta(minutes=10),
        "province": "QC",
        "verified_at": SENT - timedelta(minutes=5),
        "sent_at": SENT,
        "due_date": DUE,
        "federal_due_date": DUE,
        "history": [
            {"at": (SENT - timedelta(minutes=5)).isoformat(), "event": "verify"},
            {"at": SENT.isoformat(), "event": "claim_send"},
            {"at": SENT.isoformat(), "event": "letter_sent"},
        ],
    }
    values.update(fields)
    return RequestRecord(**values)


def item(number: int, expires_at: int | None = None, **fields: Any) -> Item:
    built = store._to_item(record(number, **fields), f"key{number}", expires_at or 0)
    if expires_at is None:
        del built["expires_at"]  # verified requests lose their TTL
    return built


def lock(number: int) -> Item:
    return {
        "pk": {"S": f"email#key{number}"},
        "record_type": {"S": "email_lock"},
        "request_id": {"S": f"req-{number:04d}"},
    }


def full(items: Iterable[Item]) -> list[dict[str, Any]]:
    return [{"Item": each} for each in items]


def read_rows(source: str, **options: Any) -> list[list[str]]:
    consented_only = options.pop("consented_only", False)
    items = export.read(source, now=NOW, **options)
    return sorted(export.rows(items, today=TODAY, consented_only=consented_only))


def ids(rows: list[list[str]]) -> list[str]:
    return [row[0] for row in rows]


# --- Full exports -----------------------------------------------------------------


def test_full_export_gives_one_row_per_live_request(tmp_path: Path) -> None:
    items = [
        item(1, status=Status.ANSWERED, answered_at=SENT + timedelta(days=3)),
        item(2, status=Status.KIT_SENT, followed_up_on=DUE, kit_sent_on=DUE),
        item(3, status=Status.PENDING_VERIFICATION, expires_at=int(NOW) + 3600, sent_at=None,
             due_date=None, verified_at=None),
        item(4, status=Status.PENDING_VERIFICATION, expires_at=int(NOW) - 1, sent_at=None,
             due_date=None, verified_at=None),  # expired: the app no longer sees it
        lock(1),
        lock(2),
        {"pk": {"S": "suppressed#0100abc"}, "record_type": {"S": "suppression"},
         "reason": {"S": "bounce"}},
    ]  # fmt: skip
    folder = write_export(tmp_path / "export", full(items), files=3)
    for lean in (True, False):
        rows = read_rows(str(folder), lean=lean)
        assert ids(rows) == ["req-0001", "req-0002", "req-0003"]
    assert read_rows(str(folder))[0] == [
        "req-0001",
        "Zoë",
        "Côté-Lévesque",
        "zoe1@example.org",
        "QC",
        "fr",
        "answered",
        "2026-05-04T14:50:00+00:00",
        "2026-05-04T14:55:00+00:00",
        "2026-05-04T15:00:00+00:00",
        "2026-06-03",
        "2026-05-07T15:00:00+00:00",
        "answered_in_time",
        "none",
        "false",
        "",
        "",
    ]
    by_id = {row[0]: row for row in read_rows(str(folder))}
    assert by_id["req-0002"][12:14] == ["deemed_refused", "complaint_kit"]
    assert by_id["req-0003"][12:14] == ["not_sent", "none"]


def test_data_file_keys_resolve_below_the_export_folder(tmp_path: Path) -> None:
    # dataFileS3Key names the bucket's path; the copy lives elsewhere.
    folder = write_export(tmp_path / "copy", full([item(1)]), files=1, prefix="a/b/c")
    assert export.open_export(str(folder)).files[0][0].startswith("data/")
    assert ids(read_rows(str(folder))) == ["req-0001"]


RECORDS = [
    {"status": Status.ANSWERED, "answered_at": datetime(2026, 6, 3, 23, 59, tzinfo=UTC)},
    {"status": Status.ANSWERED, "answered_at": datetime(2026, 6, 4, 0, 0, tzinfo=UTC)},
    {"status": Status.KIT_SENT, "refused_at": SENT + timedelta(days=1), "kit_sent_on": DUE},
    {"status": Status.INFO_REQUESTED, "info_requested_at": SENT + timedelta(days=1)},
    {"status": Status.SENT, "due_date": TODAY},
    {"status": Status.SENT},
    {"status": Status.CLOSED, "followed_up_on": DUE, "kit_sent_on": DUE, "reminder_sent_on": DUE},
    {"status": Status.FAILED, "sent_at": None, "due_date": None},
    {"status": Status.QUEUED, "sent_at": None, "due_date": None},
    {"status": Status.FORGOTTEN, "first_name": "", "last_name": "", "email": "",
     "forgotten_at": SENT + timedelta(days=2)},
    {"status": Status.FORGOTTEN, "forgotten_at": SENT + timedelta(days=40)},
]  # fmt: skip


@pytest.mark.parametrize("fields", RECORDS)
def test_rows_agree_with_the_records_the_app_reads(fields: dict[str, Any]) -> None:
    """The CSV reads DynamoDB JSON directly; the statistics read RequestRecords."""
    built = item(7, **fields)
    decoded = store._to_record(built)
    cells = dict(zip(export.COLUMNS, export.row(built, TODAY.isoformat()), strict=True))
    assert cells["outcome"] == stats.record_outcome(decoded, TODAY)
    assert cells["chase_stage"] == stats.record_chase_stage(decoded)
    assert cells["status"] == decoded.status
    for name in ("created_at", "verified_at", "sent_at", "answered_at"):
        moment = getattr(decoded, name)
        assert cells[name] == (moment.isoformat() if moment else "")
    assert cells["due_date"] == (decoded.due_date.isoformat() if decoded.due_date else "")


def test_forgotten_supporters_details_never_leave() -> None:
    # Even if an attribute survived the forgetting.
    cells = export.row(item(1, status=Status.FORGOTTEN), TODAY.isoformat())
    assert cells[1:4] == ["", "", ""]
    assert cells[0] == "req-0001"


def test_cells_that_a_spreadsheet_would_run_are_neutralised() -> None:
    cells = export.row(
        item(1, first_name="=HYPERLINK(1)", last_name="-Dupont", email="+1@example.org"),
        TODAY.isoformat(),
    )
    assert cells[1:4] == ["'=HYPERLINK(1)", "'-Dupont", "'+1@example.org"]


def test_an_attribute_of_an_unexpected_type_is_read_as_text() -> None:
    odd = item(1)
    odd["province"] = {"N": "42"}
    odd["language"] = {"BOOL": True}
    cells = export.row(odd, TODAY.isoformat())
    assert cells[4:6] == ["42", ""]
    assert cells[0] == "req-0001"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"consent_updates": True, "consent_given_at": SENT}, True),
        ({"consent_updates": False, "consent_given_at": SENT}, False),  # withdrawn
        ({"consent_updates": True}, False),  # no proof of when
        ({"consent_updates": True, "consent_given_at": SENT, "verified_at": None}, False),
        ({"consent_updates": True, "consent_given_at": SENT, "email": ""}, False),
        ({"consent_updates": True, "consent_given_at": SENT, "status": Status.FORGOTTEN}, False),
    ],
)
def test_consent_for_the_mailing_list(fields: dict[str, Any], expected: bool) -> None:
    assert export.consented(item(1, **fields)) is expected


# --- Parsing ----------------------------------------------------------------------


def test_lean_parsing_cuts_the_history_wherever_it_is() -> None:
    built = item(1)
    names = list(built)
    for position in (0, len(names) // 2, len(names)):
        order = [name for name in names if name != "history"]
        order.insert(position, "history")
        line = compact({"Item": {name: built[name] for name in order}})
        parsed = export.parse_line(line, lean=True)["Item"]
        assert "history" not in parsed  # the fast path was taken
        assert parsed == {name: value for name, value in built.items() if name != "history"}
    assert export.parse_line(compact({"Item": built}))["Item"] == built


text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12
) | st.sampled_from(['"history":{"L":[', "]}", '\\"', "\\", "},{", "é", "\u2028"])
typed = st.one_of(
    text.map(lambda value: {"S": value}),
    st.integers(-(10**6), 10**6).map(lambda value: {"N": str(value)}),
    st.booleans().map(lambda value: {"BOOL": value}),
    st.just({"NULL": True}),
)
history = st.lists(
    st.fixed_dictionaries({"at": text.map(lambda v: {"S": v}), "event": typed}).map(
        lambda entry: {"M": entry}
    ),
    max_size=4,
).map(lambda entries: {"L": entries})
items = st.dictionaries(st.sampled_from((*export.COLUMNS, "pk", "x", "y")), typed, max_size=8)


@settings(max_examples=300, deadline=None)
@given(
    items=items,
    history=history,
    position=st.integers(0, 8),
    ascii_only=st.booleans(),
    spaced=st.booleans(),
)
def test_lean_parsing_never_changes_what_is_read(
    items: Item, history: dict[str, Any], position: int, ascii_only: bool, spaced: bool
) -> None:
    names = list(items)
    names.insert(min(position, len(names)), "history")
    value = {name: history if name == "history" else items[name] for name in names}
    separators = (", ", ": ") if spaced else (",", ":")
    line = json.dumps({"Item": value}, ensure_ascii=ascii_only, separators=separators)
    lean = export.parse_line(line, lean=True)["Item"]
    lean.pop("history", None)
    assert lean == items


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(text, min_size=17, max_size=17), max_size=6))
def test_rows_are_written_exactly_as_the_csv_module_writes_them(
    rows: list[list[str]],
) -> None:
    ours, theirs = io.StringIO(), io.StringIO()
    assert export.write_csv(iter(rows), ours, batch=2) == len(rows)
    writer = csv.writer(theirs)
    writer.writerow(export.COLUMNS)
    writer.writerows(rows)
    assert ours.getvalue() == theirs.getvalue()


# --- Incremental exports ---------------------------------------------------------


def test_incremental_records_apply_in_order(tmp_path: Path) -> None:
    first, answered = item(1), item(1, status=Status.ANSWERED, answered_at=SENT)
    records = [
        change(None, first),  # created
        change(first, answered),  # then answered: the later image wins
        change(None, item(2)),
        change(item(2), None),  # created then deleted
        change(None, item(3)),
        change(item(3), None),
        change(None, item(3, status=Status.REFUSED, refused_at=SENT)),  # deleted, then back
    ]
    folder = write_export(tmp_path / "inc", records, files=1, incremental=True)
    rows = read_rows(str(folder))
    assert ids(rows) == ["req-0001", "req-0003"]
    assert [row[12] for row in rows] == ["answered_in_time", "refused"]


def test_incrementals_apply_on_top_of_a_full_export(tmp_path: Path) -> None:
    base_time = datetime(2026, 6, 1, tzinfo=UTC)
    unconfirmed = {"status": Status.PENDING_VERIFICATION, "sent_at": None, "due_date": None}
    waiting = item(7, expires_at=int(NOW) + 60, **unconfirmed)
    base = write_export(
        tmp_path / "full",
        full([item(n) for n in range(1, 6)] + [lock(1), waiting]),
        starts=base_time,
    )
    day1 = write_export(
        tmp_path / "day1",
        [
            change(item(1), item(1, status=Status.ANSWERED, answered_at=SENT)),
            change(item(2), None),
            change(None, item(6, first_name="Émile")),
            change(None, lock(6)),
            # A new attempt at the verification email, but its TTL has passed.
            change(waiting, item(7, expires_at=int(NOW) - 60, send_attempts=2, **unconfirmed)),
        ],
        incremental=True,
        starts=base_time,
        ends=base_time + timedelta(days=1),
    )
    day2 = write_export(
        tmp_path / "day2",
        [
            change(item(1), item(1, status=Status.ANSWERED, answered_at=SENT + timedelta(days=40))),
            change(None, item(2, first_name="Back")),
            change(item(3), None),
        ],
        incremental=True,
        starts=base_time + timedelta(days=1),
        ends=base_time + timedelta(days=2),
    )
    expected = sorted(
        export.rows(
            [
                item(1, status=Status.ANSWERED, answered_at=SENT + timedelta(days=40)),
                item(2, first_name="Back"),
                item(4),
                item(5),
                item(6, first_name="Émile"),
            ],
            today=TODAY,
        )
    )
    # Incrementals apply in time order, whatever order they are given in.
    assert read_rows(f"{base},{day2},{day1}") == expected
    assert read_rows(f"{base}, {day1}, {day2}", lean=False) == expected


def test_an_incremental_older_than_the_full_export_is_refused(tmp_path: Path) -> None:
    base = write_export(tmp_path / "full", full([item(1)]), starts=datetime(2026, 6, 2, tzinfo=UTC))
    old = write_export(
        tmp_path / "old",
        [change(item(1), None)],
        incremental=True,
        starts=datetime(2026, 5, 31, tzinfo=UTC),
        ends=datetime(2026, 6, 1, tzinfo=UTC),
    )
    with pytest.raises(export.ExportError, match="undo later changes"):
        read_rows(f"{base},{old}")
    with pytest.raises(export.ExportError, match="at most one full export, first"):
        read_rows(f"{old},{base}")


def test_a_gap_between_exports_is_reported(tmp_path: Path) -> None:
    start = datetime(2026, 6, 1, tzinfo=UTC)
    base = write_export(tmp_path / "full", full([item(1)]), starts=start)
    later = write_export(
        tmp_path / "later",
        [change(None, item(2))],
        incremental=True,
        starts=start + timedelta(days=2),
        ends=start + timedelta(days=3),
    )
    warnings: list[str] = []
    assert ids(read_rows(f"{base},{later}", warn=warnings.append)) == ["req-0001", "req-0002"]
    assert warnings == [
        "gap: no export covers 2026-06-01T00:00:00+00:00 to 2026-06-03T00:00:00+00:00"
    ]


# --- Damaged or wrong sources ------------------------------------------------------


def test_a_short_data_file_is_an_error(tmp_path: Path) -> None:
    folder = write_export(tmp_path / "e", full([item(n) for n in range(4)]), files=1)
    manifest = folder / "manifest-files.json"
    entry = json.loads(manifest.read_text())
    entry["itemCount"] = 5
    manifest.write_text(json.dumps(entry) + "\n")
    with pytest.raises(export.ExportError, match="holds 4 items but the manifest says 5"):
        read_rows(str(folder))


def test_a_truncated_gzip_file_is_an_error(tmp_path: Path) -> None:
    folder = write_export(tmp_path / "e", full([item(n) for n in range(40)]), files=1)
    [data] = (folder / "data").iterdir()
    data.write_bytes(data.read_bytes()[:-30])
    with pytest.raises(export.ExportError, match="middle of its gzip stream"):
        read_rows(str(folder))


def test_multi_member_and_uncompressed_data_files(tmp_path: Path) -> None:
    folder = write_export(tmp_path / "e", full([item(1), item(2)]), files=1)
    [data] = (folder / "data").iterdir()
    lines = [compact({"Item": item(1)}) + "\n", compact({"Item": item(2)}) + "\n"]
    data.write_bytes(b"".join(gzip.compress(line.encode()) for line in lines))
    assert ids(read_rows(str(folder))) == ["req-0001", "req-0002"]
    plain = data.with_name("plain.json")
    plain.write_text("".join(lines) + "\n\n", encoding="utf-8")
    manifest = {"itemCount": 2, "dataFileS3Key": "x/AWSDynamoDB/1/data/plain.json"}
    (folder / "manifest-files.json").write_text(json.dumps(manifest) + "\n")
    assert ids(read_rows(str(folder))) == ["req-0001", "req-0002"]


def test_pointing_above_the_export_names_the_exports_found(tmp_path: Path) -> None:
    write_export(tmp_path / "AWSDynamoDB" / "0123-abcd", full([item(1)]))
    with pytest.raises(export.ExportError, match=r"exports found below it: .*0123-abcd"):
        read_rows(str(tmp_path))
    with pytest.raises(export.ExportError, match="neither 'table', an s3:// prefix, nor a folder"):
        read_rows(str(tmp_path / "missing"))


def test_ion_exports_are_refused(tmp_path: Path) -> None:
    folder = write_export(tmp_path / "e", full([item(1)]))
    summary = json.loads((folder / "manifest-summary.json").read_text())
    summary["outputFormat"] = "ION"
    (folder / "manifest-summary.json").write_text(json.dumps(summary))
    with pytest.raises(export.ExportError, match="ION exports are not supported"):
        read_rows(str(folder))


# --- The file and the progress bar ---------------------------------------------------


def test_csv_file_has_a_bom_crlf_and_private_permissions(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    with export.open_csv(path) as handle:
        export.write_csv(export.rows([item(1, first_name='Zoë, "Z"')], today=TODAY), handle)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfrequest_id,first_name,last_name,email,")
    assert raw.count(b"\r\n") == 2 and raw.count(b"\n") == 2
    assert '"Zoë, ""Z"""'.encode() in raw
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header, row = list(csv.reader(handle))
    assert tuple(header) == export.COLUMNS
    assert row[1] == 'Zoë, "Z"'


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(tmp_path: Path) -> None:
    folder = write_export(tmp_path / "e", full([item(n) for n in range(9000)]), files=1)
    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = export.Progress(stream, label="items read")
        assert len(list(export.read(str(folder), progress=progress, now=NOW))) == 9000
        progress.finish()
    assert pipe.getvalue() == ""
    shown = terminal.getvalue()
    assert shown.startswith("\r[") and shown.endswith("\n")
    assert "100% 9,000/9,000 items read" in shown
