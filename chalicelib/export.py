"""Organisers' data: DynamoDB exports, or the table itself, to spreadsheet rows.

A source is one of:

- a folder, or ``s3://bucket/prefix``, holding one DynamoDB "Export to S3"
  in DynamoDB JSON (the folder with ``manifest-summary.json``,
  ``manifest-files.json`` and ``data/*.json.gz``);
- several of them separated by commas: a full export followed by
  incremental exports, whose changes are applied on top of it (or
  incremental exports alone: just the items they changed);
- ``table``: the current stage's table, read with a paginated Scan (small
  campaigns and local runs; a Scan is not a snapshot).

Data files are read as streams, a chunk at a time, and every item goes
straight to its row: memory does not grow with the size of a full export.
Incremental changes are held in memory (one entry per changed item) so they
can replace the full export's items as those stream past.

The layout itself (``record_type``, ``expires_at``, readable attribute
names) is the one store.py writes and docs/exports.md documents; items of
every other record type and items past ``expires_at`` are left out, as the
application leaves them out.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any, Protocol, TextIO

from chalicelib import stats
from chalicelib.models import RequestRecord

# One item as DynamoDB JSON: attribute name -> {"S": ...} / {"N": ...} / ...
Item = dict[str, Any]

# The CSV's columns, in order (docs/exports.md describes each).
COLUMNS = (
    "request_id",
    "first_name",
    "last_name",
    "email",
    "province",
    "language",
    "status",
    "created_at",
    "verified_at",
    "sent_at",
    "due_date",
    "answered_at",
    "outcome",
    "chase_stage",
    "consent_updates",
    "consent_given_at",
    "consent_wording_version",
)
REQUEST_TYPE = "request"  # store.py's record_type for requests
TABLE = "table"

_MANIFEST_SUMMARY = "manifest-summary.json"
_MANIFEST_FILES = "manifest-files.json"
_CHUNK = 1 << 20
# Supporters type these columns; a leading = + - @ would make a spreadsheet
# run the cell as a formula, so such values get a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportError(Exception):
    """The source cannot be read; the message says why and what to do."""


def _ignore(message: str) -> None:
    """Default for ``warn``: say nothing."""


# --- Where an export lives -------------------------------------------------


@dataclass(frozen=True)
class _Folder:
    root: Path

    def read_bytes(self, name: str) -> bytes:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            raise ExportError(f"{self.root / name} not found") from None

    def open(self, name: str) -> IO[bytes]:
        try:
            return (self.root / name).open("rb")
        except FileNotFoundError:
            raise ExportError(f"{self.root / name} not found (incomplete download?)") from None

    def exports_below(self) -> list[str]:
        return sorted(str(path.parent) for path in self.root.glob(f"**/{_MANIFEST_SUMMARY}"))

    def __str__(self) -> str:
        return str(self.root)


@dataclass(frozen=True)
class _S3:
    bucket: str
    prefix: str
    client: Any = field(compare=False, repr=False)

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _get(self, name: str) -> Any:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(name))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NoSuchBucket"):
                raise ExportError(f"s3://{self.bucket}/{self._key(name)} not found") from None
            raise

    def read_bytes(self, name: str) -> bytes:
        data: bytes = self._get(name)["Body"].read()
        return data

    def open(self, name: str) -> IO[bytes]:
        # The response body is a stream: read as it downloads, never whole.
        body: IO[bytes] = self._get(name)["Body"]
        return body

    def exports_below(self) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        prefix = f"{self.prefix}/" if self.prefix else ""
        found = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                if entry["Key"].endswith(f"/{_MANIFEST_SUMMARY}"):
                    found.append(f"s3://{self.bucket}/{entry['Key'].rsplit('/', 1)[0]}")
        return sorted(found)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def _location(uri: str) -> _Folder | _S3:
    if uri.startswith("s3://"):
        import boto3

        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise ExportError(f"{uri!r}: expected s3://bucket/prefix")
        return _S3(bucket, prefix.strip("/"), boto3.client("s3"))
    root = Path(uri).expanduser()
    if not root.is_dir():
        raise ExportError(f"{uri!r} is neither 'table', an s3:// prefix, nor a folder")
    return _Folder(root)


# --- Manifests -------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    """One export: what its manifests say."""

    location: _Folder | _S3
    incremental: bool
    item_count: int | None
    # The table state it holds: a full export's point in time, or an
    # incremental export's window [starts, ends).
    starts: datetime | None
    ends: datetime | None
    files: tuple[tuple[str, int | None], ...]  # (path below the export, item count)


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _data_path(key: str) -> str:
    # dataFileS3Key is the object's key in the bucket it was exported to;
    # what follows "data/" also holds in a copy downloaded elsewhere.
    cut = key.rfind("data/")
    return key[cut:] if cut >= 0 else key.rsplit("/", 1)[-1]


def open_export(uri: str) -> Export:
    """Read an export's manifests (not its data yet)."""
    location = _location(uri)
    try:
        summary = json.loads(location.read_bytes(_MANIFEST_SUMMARY))
    except ExportError:
        below = location.exports_below()
        hint = (
            "; exports found below it: " + ", ".join(below[:5])
            if below
            else "; point --source at the export's folder (…/AWSDynamoDB/<export id>/)"
        )
        raise ExportError(f"no {_MANIFEST_SUMMARY} in {location}{hint}") from None
    output_format = summary.get("outputFormat", "DYNAMODB_JSON")
    if output_format != "DYNAMODB_JSON":
        raise ExportError(f"{location}: {output_format} exports are not supported; export as DynamoDB JSON")
    incremental = summary.get("exportType") == "INCREMENTAL_EXPORT"
    files = []
    for line in location.read_bytes(_MANIFEST_FILES).decode("utf-8").splitlines():
        if line.strip():
            entry = json.loads(line)
            count = entry.get("itemCount")
            files.append((_data_path(entry["dataFileS3Key"]), int(count) if count is not None else None))
    count = summary.get("itemCount")
    return Export(
        location=location,
        incremental=incremental,
        item_count=int(count) if count is not None else None,
        starts=_time(summary.get("exportFromTime") if incremental else summary.get("exportTime")),
        ends=_time(summary.get("exportToTime")) if incremental else None,
        files=tuple(files),
    )


# --- Lines and items --------------------------------------------------------


class _Reader(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...

    def close(self) -> None: ...


def _text_lines(stream: IO[bytes], compressed: bool) -> Iterator[str]:
    """The non-empty lines of a data file, decompressed a chunk at a time."""
    reader: _Reader = gzip.GzipFile(fileobj=stream, mode="rb") if compressed else stream
    rest = b""
    with contextlib.closing(reader):
        while chunk := reader.read(_CHUNK):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            # Decoded line by line: a newline byte never occurs inside a
            # UTF-8 sequence, and one accented name then cannot make the
            # whole chunk a wider (slower) string.
            for line in lines:
                if line:
                    yield line.decode("utf-8")
    if rest.strip():
        yield rest.decode("utf-8")


_HISTORY = '"history":{"L":['
_loads = json.JSONDecoder().decode


def parse_line(line: str, lean: bool = False) -> Any:
    """One JSON Lines record; ``lean`` skips the history list when it can.

    json.loads is most of an export's cost, and a request's history is the
    longest part of its line while no CSV column needs it. In DynamoDB's
    compact output the list's text can be found and cut before parsing: its
    entries hold only times and event names, so its first ``]}`` ends it, and
    an escaped quote can never match the unescaped ``"history"``. If the
    cut text does not parse (some other writer's layout), the whole line is
    parsed instead, so the fast path never changes a result.
    """
    if lean:
        start = line.find(_HISTORY)
        if start >= 0:
            end = line.find("]}", start)
            if end >= 0:
                end += 2
                if line[start - 1] == ",":
                    start -= 1
                elif line[end : end + 1] == ",":
                    end += 1
                try:
                    return _loads(line[:start] + line[end:])
                except ValueError:
                    pass
    return _loads(line)


def _records(export: Export, lean: bool, progress: Progress | None) -> Iterator[Any]:
    """Every JSON record of an export's data files, checked against the manifest."""
    for path, expected in export.files:
        count = 0
        with export.location.open(path) as stream:
            for line in _text_lines(stream, compressed=path.endswith(".gz")):
                count += 1
                if progress is not None:
                    progress.advance()
                yield parse_line(line, lean)
        if expected is not None and count != expected:
            raise ExportError(
                f"{export.location}/{path} holds {count} items but the manifest says "
                f"{expected}: the download is incomplete or the file was changed"
            )


def _key_text(keys: Item) -> str:
    return json.dumps(keys, sort_keys=True, separators=(",", ":"))


def _full_items(export: Export, lean: bool, progress: Progress | None) -> Iterator[Item]:
    for record in _records(export, lean, progress):
        item = record.get("Item")
        if item is None:
            raise ExportError(f"{export.location}: a full export's line has no 'Item'")
        yield item


def _changes(export: Export, progress: Progress | None) -> Iterator[tuple[Item, Item | None]]:
    """(Keys, NewImage or None for a deletion) for every incremental record."""
    for record in _records(export, False, progress):
        new = record.get("NewImage")
        keys = record.get("Keys")
        if keys is None:
            raise ExportError(f"{export.location}: an incremental record has no 'Keys'")
        yield keys, new


def _plan(exports: list[Export], warn: Callable[[str], None]) -> tuple[Export | None, list[Export]]:
    """The full export (if any) and the incrementals in the order they apply."""
    full = [export for export in exports if not export.incremental]
    if len(full) > 1 or (full and exports[0] is not full[0]):
        raise ExportError("give at most one full export, first, then incremental exports")
    base = full[0] if full else None
    increments = sorted(
        (export for export in exports if export.incremental),
        key=lambda export: export.starts or datetime.min.replace(tzinfo=UTC),
    )
    previous = base.starts if base else None
    for export in increments:
        if base and base.starts and export.ends and export.ends <= base.starts:
            raise ExportError(
                f"{export.location} ends before the full export's time: applying it "
                "would undo later changes"
            )
        if previous and export.starts and export.starts > previous:
            warn(f"gap: no export covers {previous.isoformat()} to {export.starts.isoformat()}")
        previous = export.ends
    return base, increments


def _export_items(
    uris: Sequence[str], lean: bool, progress: Progress | None, warn: Callable[[str], None]
) -> Iterator[Item]:
    exports = [open_export(uri) for uri in uris]
    base, increments = _plan(exports, warn)
    if progress is not None:
        counts = [export.item_count for export in exports]
        progress.total = None if None in counts else sum(count or 0 for count in counts)
    # Later changes win: a NewImage replaces the item, a deletion removes it.
    overlay: dict[str, Item | None] = {}
    key_names: tuple[str, ...] = ()
    for export in increments:
        for keys, new in _changes(export, progress):
            key_names = key_names or tuple(sorted(keys))
            overlay[_key_text(keys)] = new
    if base is not None:
        for item in _full_items(base, lean, progress):
            if overlay:
                try:
                    key = _key_text({name: item[name] for name in key_names})
                except KeyError:
                    key = ""
                if key in overlay:
                    changed = overlay.pop(key)
                    if changed is not None:
                        yield changed
                    continue
            yield item
    # Items the increments created (or changed, when there is no full export).
    for changed in overlay.values():
        if changed is not None:
            yield changed


def table_items(progress: Progress | None = None) -> Iterator[Item]:
    """Every item of the stage's table, page by page (a Scan)."""
    from chalicelib import aws
    from chalicelib.settings import get_settings

    client = aws.dynamodb()
    name = get_settings().table_name
    if progress is not None:
        # DynamoDB refreshes ItemCount about every six hours: a rough total.
        progress.total = client.describe_table(TableName=name)["Table"].get("ItemCount") or None
    query: dict[str, Any] = {"TableName": name}
    while True:
        page = client.scan(**query)
        for item in page.get("Items", []):
            if progress is not None:
                progress.advance()
            yield dict(item)
        if "LastEvaluatedKey" not in page:
            return
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def is_live_request(item: Item, now: float) -> bool:
    """A request the application would still see (not a lock, not expired)."""
    kind = item.get("record_type")
    if kind is None or kind.get("S") != REQUEST_TYPE:
        return False
    expires = item.get("expires_at")
    return expires is None or float(expires["N"]) > now


def read(
    source: str,
    *,
    lean: bool = False,
    progress: Progress | None = None,
    warn: Callable[[str], None] = _ignore,
    now: float | None = None,
) -> Iterator[Item]:
    """The live request items of a source (see the module docstring).

    ``lean`` drops each request's history where that is cheap (the CSV does
    not need it). ``now`` (epoch seconds) decides what has expired.
    """
    moment = time.time() if now is None else now
    uris = [part.strip() for part in source.split(",") if part.strip()]
    if not uris:
        raise ExportError("no source given")
    if TABLE in uris:
        if len(uris) > 1:
            raise ExportError("'table' cannot be combined with exports")
        items = table_items(progress)
    else:
        items = _export_items(uris, lean, progress, warn)
    for item in items:
        if is_live_request(item, moment):
            yield item


# --- Rows --------------------------------------------------------------------


def _s(item: Item, name: str) -> str:
    value = item.get(name)
    if value is None:
        return ""
    text = value.get("S")
    return text if isinstance(text, str) else ""


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def consented(item: Item) -> bool:
    """May this supporter's address go into the campaign's mailing tool?

    Express consent with its time, an address confirmed by its owner (an
    unconfirmed one may be someone else's), and not forgotten since.
    Withdrawing consent clears ``consent_updates``; forgetting also removes
    the address.
    """
    consent = item.get("consent_updates")
    return (
        consent is not None
        and consent.get("BOOL") is True
        and _s(item, "consent_given_at") != ""
        and _s(item, "verified_at") != ""
        and _s(item, "email") != ""
        and _s(item, "status") != "forgotten"
    )


def row(item: Item, today: str) -> list[str]:
    """One request item as CSV cells, in COLUMNS order.

    ``today`` is the ISO date deadlines are judged against. Works on the
    DynamoDB JSON directly (no RequestRecord): this is the per-row cost of
    a million-row export.
    """
    status = _s(item, "status")
    forgotten = status == "forgotten"
    sent_at = _s(item, "sent_at")
    due = _s(item, "due_date")
    answered_at = _s(item, "answered_at")
    as_of = today
    forgotten_at = _s(item, "forgotten_at")
    if forgotten_at:
        as_of = min(as_of, forgotten_at[:10])
    consent = item.get("consent_updates")
    return [
        _s(item, "request_id"),
        # A forgotten supporter's details never leave the table, even if some
        # attribute survived the forgetting.
        "" if forgotten else _cell(_s(item, "first_name")),
        "" if forgotten else _cell(_s(item, "last_name")),
        "" if forgotten else _cell(_s(item, "email")),
        _s(item, "province"),
        _s(item, "language"),
        status,
        _s(item, "created_at"),
        _s(item, "verified_at"),
        sent_at,
        due,
        answered_at,
        stats.outcome(
            status,
            sent=sent_at != "",
            answered_on=answered_at[:10] or None,
            due=due or None,
            refused=_s(item, "refused_at") != "",
            as_of=as_of,
        ),
        stats.chase_stage(
            status,
            followed_up=_s(item, "followed_up_on") != "",
            kit_sent=_s(item, "kit_sent_on") != "",
            reminder_sent=_s(item, "reminder_sent_on") != "",
        ),
        "true" if consent is not None and consent.get("BOOL") is True else "false",
        _s(item, "consent_given_at"),
        _s(item, "consent_wording_version"),
    ]


def rows(
    items: Iterable[Item], *, today: date | None = None, consented_only: bool = False
) -> Iterator[list[str]]:
    day = (today or datetime.now(UTC).date()).isoformat()
    for item in items:
        if consented_only and not consented(item):
            continue
        yield row(item, day)


def write_csv(cells: Iterable[list[str]], out: TextIO, batch: int = 2048) -> int:
    """Write the header and rows; returns the number of rows.

    ``out`` should be opened with ``encoding="utf-8-sig", newline=""``: the
    byte-order mark makes Excel read UTF-8 (accented names), and the csv
    module ends lines with CRLF itself.
    """
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    count = 0
    pending: list[list[str]] = []
    for cell_row in cells:
        pending.append(cell_row)
        if len(pending) >= batch:
            writer.writerows(pending)
            count += len(pending)
            pending.clear()
    writer.writerows(pending)
    return count + len(pending)


# --- Records (for the statistics) ---------------------------------------------


def records(items: Iterable[Item], warn: Callable[[str], None] = _ignore) -> Iterator[RequestRecord]:
    """Request records, decoded exactly as the application decodes them."""
    from chalicelib import store

    skipped = 0
    for item in items:
        try:
            # store owns the mapping from item to record; reuse it so the
            # statistics never disagree with what the app itself reads.
            yield store._to_record(item)
        except (KeyError, ValueError, TypeError):
            skipped += 1
    if skipped:
        warn(f"{skipped} request items could not be read (written by another version?)")


def read_records(
    source: str = TABLE,
    *,
    progress: Progress | None = None,
    warn: Callable[[str], None] = _ignore,
) -> Iterator[RequestRecord]:
    """The live requests of a source as RequestRecords."""
    return records(read(source, progress=progress, warn=warn), warn)


# --- Progress -----------------------------------------------------------------


class Progress:
    """A one-line progress bar on a terminal; silent anywhere else."""

    _WIDTH = 30
    _EVERY = 4096  # items between clock checks: keep the per-item cost tiny

    def __init__(self, stream: TextIO | None = None, label: str = "items") -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.label = label
        self.total: int | None = None
        self.done = 0
        self._started = time.monotonic()
        self._drawn = 0.0
        self._countdown = self._EVERY

    def advance(self) -> None:
        self.done += 1
        self._countdown -= 1
        if self._countdown <= 0:
            self._countdown = self._EVERY
            if self.enabled and time.monotonic() - self._drawn >= 0.2:
                self._draw()

    def _draw(self) -> None:
        self._drawn = time.monotonic()
        rate = self.done / max(self._drawn - self._started, 1e-9)
        if self.total:
            share = min(self.done / self.total, 1.0)
            filled = round(share * self._WIDTH)
            bar = f"[{'#' * filled}{'-' * (self._WIDTH - filled)}] {share:4.0%} "
            count = f"{self.done:,}/{self.total:,}"
        else:
            bar, count = "", f"{self.done:,}"
        self.stream.write(f"\r{bar}{count} {self.label}  {rate:,.0f}/s ")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self.done:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()


def open_csv(path: Path) -> TextIO:
    """A CSV file as Excel wants it: UTF-8 with a byte-order mark."""
    return path.open("w", encoding="utf-8-sig", newline="")
