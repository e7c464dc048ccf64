#!/usr/bin/env python3
"""Export throughput: a synthetic 1,000,000-item DynamoDB export to CSV.

Writes a full export in the real format (manifest-summary.json,
manifest-files.json, data/*.json.gz with one {"Item": ...} per line in
compact DynamoDB JSON, as DynamoDB writes it) to a temporary folder, then
times `manage.py export`'s path (chalicelib.export.read -> rows -> CSV file)
in a fresh process, so its peak memory is its own. Every item is a request
(the worst case: each line becomes a row), with realistic attributes and
histories of 0 to 9 events. Target: >= 50,000 rows/s on one core and
< 150 MB peak. Rows per second are given by wall clock and by CPU time; the
process is single-threaded, so on a machine shared with other work the CPU
time is the one-core figure.

    python bench/export.py [--items 1000000] [--files 8] [--compare] [--keep DIR]

--compare also times the plain path (json.loads of every whole line) to
show what the history-skipping fast path buys.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POOL = 4096  # distinct item shapes; each line gets its own id and email

FIRST = [
    "Zoë",
    "Émile",
    "Nadia",
    "François",
    "Aiyana",
    "Siobhán",
    "Jean-Noël",
    "Mei",
    "Olúwaseun",
    "Łukasz",
]
LAST = [
    "Côté-Lévesque",
    "Tremblay",
    "Nguyễn",
    "O'Brien",
    "Gagné",
    "Müller",
    "Singh",
    "Bélanger",
    "Smith",
]
PROVINCES = ["AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"]
PATHS = {
    "pending_verification": [],
    "sent": ["verify", "claim_send", "letter_sent"],
    "answered": ["verify", "claim_send", "letter_sent", "response_received"],
    "info_requested": ["verify", "claim_send", "letter_sent", "info_requested"],
    "kit_sent": [
        "verify",
        "claim_send",
        "letter_sent",
        "claim_follow_up",
        "follow_up_sent",
        "claim_kit",
        "kit_sent",
    ],
    "closed": [
        "verify",
        "claim_send",
        "letter_sent",
        "claim_follow_up",
        "follow_up_sent",
        "claim_kit",
        "kit_sent",
        "claim_reminder",
        "reminder_sent",
    ],
}
WEIGHTS = {
    "pending_verification": 5,
    "sent": 20,
    "answered": 10,
    "info_requested": 5,
    "kit_sent": 30,
    "closed": 30,
}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _item(rng: random.Random) -> dict[str, object]:
    """One request as store.py writes it, with placeholders for id and email."""
    status = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    created = datetime(2026, 1, 5, tzinfo=UTC) + timedelta(minutes=rng.randrange(60 * 24 * 120))
    province = rng.choice(PROVINCES)
    item: dict[str, object] = {
        "pk": _s("request#@ID@"),
        "record_type": _s("request"),
        "request_id": _s("@ID@"),
        "status": _s(status),
        "first_name": _s(rng.choice(FIRST)),
        "last_name": _s(rng.choice(LAST)),
        "email": _s("@EMAIL@"),
        "email_key": _s(base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=")),
        "language": _s(rng.choice(["en", "fr"])),
        "province": _s(province),
        "created_at": _s(_stamp(created)),
        "consent_updates": {"BOOL": rng.random() < 0.4},
        "updated_at": _s(_stamp(created + timedelta(days=40))),
    }
    if item["consent_updates"] == {"BOOL": True}:
        item["consent_given_at"] = _s(_stamp(created))
        item["consent_wording_version"] = _s("2026-11-en-fr-1")
    events = PATHS[status]
    if status == "pending_verification":
        item["expires_at"] = {"N": str(int(time.time()) + 7 * 86400)}
    else:
        sent = created + timedelta(minutes=7)
        due = (sent + timedelta(days=30)).date()
        item.update(
            verified_at=_s(_stamp(created + timedelta(minutes=5))),
            sent_at=_s(_stamp(sent)),
            due_date=_s(due.isoformat()),
            federal_due_date=_s(due.isoformat()),
            message_id=_s(f"<{rng.randbytes(12).hex()}@takeback.example>"),
            ses_message_id=_s(f"0100018c{rng.randbytes(20).hex()}-000000"),
            send_attempts={"N": "1"},
        )
        if province in ("QC", "BC", "AB"):
            item["provincial_due_date"] = _s((due - timedelta(days=1)).isoformat())
        if status == "answered":
            item["answered_at"] = _s(_stamp(sent + timedelta(days=rng.randrange(1, 45))))
        if status == "info_requested":
            item["info_requested_at"] = _s(_stamp(sent + timedelta(days=3)))
        if status in ("kit_sent", "closed"):
            item["followed_up_on"] = _s((due + timedelta(days=1)).isoformat())
            item["kit_sent_on"] = _s((due + timedelta(days=1)).isoformat())
            item["follow_up_message_id"] = _s(f"<{rng.randbytes(12).hex()}@takeback.example>")
        if status == "closed":
            item["reminder_sent_on"] = _s((due + timedelta(days=15)).isoformat())
        if status in ("sent", "kit_sent"):
            item["chase_on"] = _s((due + timedelta(days=1)).isoformat())
    item["history"] = {
        "L": [
            {"M": {"at": _s(_stamp(created + timedelta(hours=index))), "event": _s(event)}}
            for index, event in enumerate(events)
        ]
    }
    # DynamoDB writes attributes in no particular order: put history anywhere.
    names = list(item)
    rng.shuffle(names)
    return {name: item[name] for name in names}


def generate(folder: Path, items: int, files: int, seed: int = 5) -> None:
    """A full export of ``items`` requests in ``files`` data files."""
    rng = random.Random(seed)
    pool = [
        json.dumps({"Item": _item(rng)}, ensure_ascii=False, separators=(",", ":"))
        for _ in range(POOL)
    ]
    data = folder / "data"
    data.mkdir(parents=True)
    export_id = "01767225600000-bench000"
    manifest: list[dict[str, object]] = []
    sizes = 0
    per_file = -(-items // files)
    for number in range(files):
        name = f"{rng.randbytes(10).hex()}.json.gz"
        first, last = number * per_file, min(items, (number + 1) * per_file)
        with gzip.open(data / name, "wt", encoding="utf-8", compresslevel=6) as out:
            for index in range(first, last):
                request_id = base64.urlsafe_b64encode(index.to_bytes(9, "big")).decode()
                line = pool[index % POOL].replace("@ID@", request_id)
                out.write(line.replace("@EMAIL@", f"supporter{index}@example.org") + "\n")
        digest = base64.b64encode(hashlib.md5((data / name).read_bytes()).digest()).decode()
        sizes += (data / name).stat().st_size
        manifest.append(
            {
                "itemCount": last - first,
                "md5Checksum": digest,
                "etag": hashlib.md5(name.encode()).hexdigest(),
                "dataFileS3Key": f"exports/AWSDynamoDB/{export_id}/data/{name}",
            }
        )
    (folder / "manifest-files.json").write_text(
        "".join(json.dumps(entry) + "\n" for entry in manifest)
    )
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    summary = {
        "version": "2020-06-30",
        "exportArn": f"arn:aws:dynamodb:ca-central-1:123456789012:table/takeback-bench/export/{export_id}",
        "startTime": now,
        "endTime": now,
        "tableArn": "arn:aws:dynamodb:ca-central-1:123456789012:table/takeback-bench",
        "tableId": "00000000-0000-0000-0000-000000000000",
        "exportTime": now,
        "s3Bucket": "takeback-exports",
        "s3Prefix": "exports",
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None,
        "manifestFilesS3Key": f"exports/AWSDynamoDB/{export_id}/manifest-files.json",
        "billedSizeBytes": sizes,
        "itemCount": items,
        "outputFormat": "DYNAMODB_JSON",
        "exportType": "FULL_EXPORT",
    }
    (folder / "manifest-summary.json").write_text(json.dumps(summary, indent=2))


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB.

    Linux's VmHWM belongs to the process's own memory since exec; getrusage's
    ru_maxrss can still hold the forking parent's peak (the generator's).
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    # Elsewhere: kilobytes on Linux and BSD, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def run(folder: str, out: str, lean: bool) -> None:
    """The timed part, in its own process: export to CSV, print JSON figures."""
    sys.path.insert(0, str(ROOT))
    from chalicelib import export

    before = _peak_rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    # What tools/organisers.export_command does (its progress bar counts
    # every line, and stays silent here: stderr is not a terminal).
    progress = export.Progress(label="items read")
    with export.open_csv(Path(out)) as handle:
        items = export.read(folder, lean=lean, progress=progress)
        count = export.write_csv(export.rows(items), handle)
    progress.finish()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        json.dumps(
            {
                "rows": count,
                "wall": wall,
                "cpu": cpu,
                "rss_before": before,
                "rss_peak": _peak_rss_mb(),
            }
        )
    )


def timed(folder: Path, lean: bool) -> dict[str, float]:
    out = folder.parent / "export.csv"
    mode = "--lean" if lean else "--plain"
    result = subprocess.run(
        [sys.executable, __file__, "--run", str(folder), str(out), mode],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    figures["csv_mb"] = out.stat().st_size / 1e6
    return figures


def report(name: str, figures: dict[str, float]) -> None:
    rows = figures["rows"]
    print(
        f"{name}: {rows:,.0f} rows in {figures['wall']:.1f} s wall ({figures['cpu']:.1f} s CPU): "
        f"{rows / figures['wall']:,.0f} rows/s wall, {rows / figures['cpu']:,.0f} rows/s CPU; "
        f"peak RSS {figures['rss_peak']:.0f} MB (+{figures['rss_peak'] - figures['rss_before']:.0f} MB "
        f"over the {figures['rss_before']:.0f} MB after imports); CSV {figures['csv_mb']:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument(
        "--compare", action="store_true", help="also time the plain json.loads path"
    )
    parser.add_argument("--keep", help="generate into (or reuse) this folder and keep it")
    parser.add_argument("--run", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument(
        "--lean", dest="lean", action="store_true", default=True, help=argparse.SUPPRESS
    )
    parser.add_argument("--plain", dest="lean", action="store_false", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run(args.run[0], args.run[1], args.lean)
        return
    with tempfile.TemporaryDirectory(prefix="takeback-bench-") as scratch:
        base = Path(args.keep) if args.keep else Path(scratch)
        folder = base / "export"
        if not (folder / "manifest-summary.json").exists():
            start = time.perf_counter()
            generate(folder, args.items, args.files)
            size = sum(path.stat().st_size for path in (folder / "data").iterdir()) / 1e6
            print(
                f"generated {args.items:,} items ({size:.0f} MB gzipped) in {time.perf_counter() - start:.0f} s"
            )
        fast = timed(folder, lean=True)
        report("export (fast path)", fast)
        if args.compare:
            report("export (plain json.loads)", timed(folder, lean=False))
        # The process is single-threaded: its CPU time is what one core spent.
        # On a shared machine the wall clock also counts others' work.
        rate = fast["rows"] / fast["cpu"]
        if fast["wall"] > 1.3 * fast["cpu"]:
            print(
                f"note: wall time was {fast['wall'] / fast['cpu']:.1f}x the CPU time: other "
                "processes were using the machine, so judge by the CPU-time figure"
            )
        ok = rate >= 50_000 and fast["rss_peak"] < 150
        print(
            f"target >= 50,000 rows/s on one core and < 150 MB peak: "
            f"{'met' if ok else 'NOT met'} ({rate:,.0f} rows/s of CPU time, "
            f"{fast['rss_peak']:.0f} MB peak RSS)"
        )


if __name__ == "__main__":
    main()
