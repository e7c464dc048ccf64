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

import csv
import json
import json.scanner
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any, TextIO, cast

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
_CHUNK = 1 << 18  # compressed bytes read at a time (~1.5 MB inflated)
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
            code = exc.response["Error"]["Code"]
            where = f"s3://{self.bucket}/{self._key(name)}"
            if code in ("NoSuchKey", "404", "NoSuchBucket"):
                raise ExportError(f"{where} not found") from None
            if code in ("AccessDenied", "403"):
                # Without s3:ListBucket, S3 answers a missing key with 403 too.
                raise ExportError(f"{where}: access denied (or missing)") from None
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
    # its "data/<file>" end also holds in a copy downloaded or moved elsewhere.
    folder, _, name = key.rpartition("/")
    return f"data/{name}" if folder == "data" or folder.endswith("/data") else name


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
        raise ExportError(
            f"{location}: {output_format} exports are not supported; export as DynamoDB JSON"
        )
    incremental = summary.get("exportType") == "INCREMENTAL_EXPORT"
    files = []
    for line in location.read_bytes(_MANIFEST_FILES).decode("utf-8").splitlines():
        if line.strip():
            entry = json.loads(line)
            count = entry.get("itemCount")
            files.append(
                (_data_path(entry["dataFileS3Key"]), int(count) if count is not None else None)
            )
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


def _chunks(stream: IO[bytes], compressed: bool) -> Iterator[bytes]:
    """A data file's bytes, inflated as they are read (gzip members in turn)."""
    if not compressed:
        while chunk := stream.read(_CHUNK):
            yield chunk
        return
    # zlib directly rather than gzip.GzipFile: the same inflating, without
    # a buffered reader copying every block once more.
    inflater = zlib.decompressobj(wbits=31)
    fed = False
    while data := stream.read(_CHUNK):
        while data:
            fed = True
            inflated = inflater.decompress(data)
            if inflated:
                yield inflated
            data = b""
            if inflater.eof:
                data = inflater.unused_data.lstrip(b"\0")  # the next member, if any
                inflater = zlib.decompressobj(wbits=31)
                fed = False
    if fed:
        raise ExportError(
            "a data file ends in the middle of its gzip stream (incomplete download?)"
        )


_HISTORY = '"history":{"L":['
_loads = json.JSONDecoder().decode
# typeshed types make_scanner's argument as a scanner; it takes the decoder.
_scan = json.scanner.make_scanner(cast(Any, json.JSONDecoder()))


def _parse(text: str) -> Any:
    # The scanner behind json.loads, without its two whitespace regexes:
    # export lines are compact. Anything else goes the usual way.
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return _loads(text)
    return value if end == len(text) else _loads(text)


def parse_line(line: str, lean: bool = False) -> Any:
    """One JSON Lines record; ``lean`` skips the history list when it can.

    Parsing is most of an export's cost, and a request's history is the
    longest part of its line while no CSV column needs it. In DynamoDB's
    compact output its text can be cut out before parsing: an escaped quote
    never matches the unescaped ``"history":{"L":[``, and the entries hold
    only times and event names, so the first ``]}`` after it ends the list.
    Should that not hold (another writer, a future layout), the cut text is
    not valid JSON and the whole line is parsed instead.
    """
    if lean:
        start = line.find(_HISTORY)
        close = line.find("]}", start) if start > 0 else -1
        if close > 0:
            end = close + 2
            if line[start - 1] == ",":
                start -= 1
            elif line[end : end + 1] == ",":
                end += 1
            try:
                return _parse(line[:start] + line[end:])
            except ValueError:
                pass
    return _parse(line)


def _lines(
    export: Export, path: str, expected: int | None, progress: Progress | None
) -> Iterator[str]:
    """The non-empty lines of one data file, checked against the manifest's count."""
    count = 0
    rest = b""
    with export.location.open(path) as stream:
        for chunk in _chunks(stream, compressed=path.endswith(".gz")):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            # Counted a chunk at a time, not per line: this loop is the
            # export's inner loop.
            found = len(lines) - lines.count(b"")
            count += found
            if progress is not None:
                progress.advance(found)
            # Decoded line by line: a newline byte never occurs inside a UTF-8
            # sequence, and one accented name cannot make a whole chunk a
            # wider (slower) string.
            for line in lines:
                if line:
                    yield line.decode("utf-8")
    if rest.strip():
        count += 1
        if progress is not None:
            progress.advance()
        yield rest.decode("utf-8")
    if expected is not None and count != expected:
        raise ExportError(
            f"{export.location}/{path} holds {count} items but the manifest says "
            f"{expected}: the download is incomplete or the file was changed"
        )


def _key_text(keys: Item) -> str:
    return json.dumps(keys, sort_keys=True, separators=(",", ":"))


def _full_items(
    export: Export, lean: bool, progress: Progress | None, now: float
) -> Iterator[Item]:
    """A full export's live requests (the filter inlined: once per item)."""
    for path, expected in export.files:
        for line in _lines(export, path, expected, progress):
            try:
                item = parse_line(line, lean)["Item"]
            except (KeyError, TypeError):
                item = None
            if not isinstance(item, dict):
                raise ExportError(f"{export.location}/{path}: a full export's line has no 'Item'")
            kind = item.get("record_type")
            if kind is None or kind.get("S") != REQUEST_TYPE:
                continue
            expires = item.get("expires_at")
            if expires is None or float(expires["N"]) > now:
                yield item


def _changes(export: Export, progress: Progress | None) -> Iterator[tuple[Item, Item | None]]:
    """(Keys, NewImage or None for a deletion) for every incremental record."""
    for path, expected in export.files:
        for line in _lines(export, path, expected, progress):
            record = parse_line(line)
            if not isinstance(record, dict) or not isinstance(record.get("Keys"), dict):
                raise ExportError(f"{export.location}/{path}: an incremental record has no 'Keys'")
            yield record["Keys"], record.get("NewImage")


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
    uris: Sequence[str],
    lean: bool,
    progress: Progress | None,
    warn: Callable[[str], None],
    now: float,
) -> Iterator[Item]:
    """The live requests of a full export with incremental changes applied."""
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
    if base is not None and not overlay:
        yield from _full_items(base, lean, progress, now)
    elif base is not None:
        # A change to an item the filter left out (a lock, an expired
        # request) stays in the overlay and is judged below.
        for item in _full_items(base, lean, progress, now):
            if overlay:  # empty once every change has met its item: skip the keys
                key = _key_text({name: item[name] for name in key_names if name in item})
                if key in overlay:
                    changed = overlay.pop(key)
                    if changed is not None and is_live_request(changed, now):
                        yield changed
                    continue
            yield item
    # Items the increments created (or changed, when there is no full export).
    for changed in overlay.values():
        if changed is not None and is_live_request(changed, now):
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
            yield item
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
    if TABLE not in uris:
        yield from _export_items(uris, lean, progress, warn, moment)
        return
    if len(uris) > 1:
        raise ExportError("'table' cannot be combined with exports")
    for item in table_items(progress):
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


_NO_S: dict[str, str] = {"S": ""}


def row(item: Item, today: str) -> list[str]:
    """One request item as CSV cells, in COLUMNS order.

    ``today`` is the ISO date deadlines are judged against. Works on the
    DynamoDB JSON directly, without building a RequestRecord: this is the
    per-row cost of a million-row export.
    """
    try:
        return _row(item, today)
    except KeyError:
        # An attribute of another type than store.py writes (a hand-edited
        # item): read every attribute as text and try again.
        return _row({name: {"S": _text(value)} for name, value in item.items()}, today)


def _text(value: dict[str, Any]) -> str:
    for kind in ("S", "N"):
        if isinstance(value.get(kind), str):
            return str(value[kind])
    return ""


def _row(item: Item, today: str) -> list[str]:
    # item.get(name, _NO_S)["S"] is the cheapest "text or empty" lookup.
    get = item.get
    status: str = get("status", _NO_S)["S"]
    forgotten = status == "forgotten"
    sent_at: str = get("sent_at", _NO_S)["S"]
    due: str = get("due_date", _NO_S)["S"]
    answered_at: str = get("answered_at", _NO_S)["S"]
    forgotten_at: str = get("forgotten_at", _NO_S)["S"]
    consent = get("consent_updates")
    return [
        get("request_id", _NO_S)["S"],
        # A forgotten supporter's details never leave the table, even if some
        # attribute survived the forgetting.
        "" if forgotten else _cell(get("first_name", _NO_S)["S"]),
        "" if forgotten else _cell(get("last_name", _NO_S)["S"]),
        "" if forgotten else _cell(get("email", _NO_S)["S"]),
        get("province", _NO_S)["S"],
        get("language", _NO_S)["S"],
        status,
        get("created_at", _NO_S)["S"],
        get("verified_at", _NO_S)["S"],
        sent_at,
        due,
        answered_at,
        stats.outcome(
            status,
            sent=sent_at != "",
            answered_on=answered_at[:10] or None,
            due=due or None,
            refused="refused_at" in item,
            # Nobody reports an answer once the supporter is forgotten.
            as_of=min(today, forgotten_at[:10]) if forgotten_at else today,
        ),
        stats.chase_stage(
            status,
            followed_up="followed_up_on" in item,
            kit_sent="kit_sent_on" in item,
            reminder_sent="reminder_sent_on" in item,
        ),
        "true" if consent is not None and consent.get("BOOL") is True else "false",
        get("consent_given_at", _NO_S)["S"],
        get("consent_wording_version", _NO_S)["S"],
    ]


def rows(
    items: Iterable[Item], *, today: date | None = None, consented_only: bool = False
) -> Iterator[list[str]]:
    day = (today or datetime.now(UTC).date()).isoformat()
    for item in items:
        if consented_only and not consented(item):
            continue
        try:
            yield _row(item, day)  # row(), without a call level: once per item
        except KeyError:
            yield row(item, day)


def write_csv(cells: Iterable[list[str]], out: TextIO, batch: int = 2048) -> int:
    """Write the header and rows as the csv module would; returns the row count.

    ``out`` should be opened with ``encoding="utf-8-sig", newline=""``: the
    byte-order mark makes Excel read UTF-8 (accented names), and lines end
    with CRLF as the csv module's default dialect ends them.

    A row none of whose cells holds a comma, quote or line break is written
    by joining its cells, which is what the csv module writes for it and
    five times cheaper; any other row goes through the csv module.
    """
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    separators = len(COLUMNS) - 1
    count = 0
    pending: list[str] = []
    for cells_of_row in cells:
        count += 1
        line = ",".join(cells_of_row)
        if line.count(",") != separators or '"' in line or "\n" in line or "\r" in line:
            out.write("".join(pending))
            pending.clear()
            writer.writerow(cells_of_row)
            continue
        pending.append(line + "\r\n")
        if len(pending) >= batch:
            out.write("".join(pending))
            pending.clear()
    out.write("".join(pending))
    return count


# --- Records (for the statistics) ---------------------------------------------


def records(
    items: Iterable[Item], warn: Callable[[str], None] = _ignore
) -> Iterator[RequestRecord]:
    """Request records, decoded exactly as the application decodes them."""
    from chalicelib import store

    skipped = 0
    for item in items:
        try:
            # store owns the mapping from item to record; reuse it so the
            # statistics never disagree with what the app itself reads.
            yield store.record_from_item(item)
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

    def advance(self, count: int = 1) -> None:
        self.done += count
        self._countdown -= count
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
    """A new CSV file as Excel wants it: UTF-8 with a byte-order mark.

    Readable by its owner only: it holds names and email addresses.
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return open(descriptor, "w", encoding="utf-8-sig", newline="")
