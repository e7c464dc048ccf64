"""The organisers' commands behind manage.py: export, stats, report.

    python manage.py export --source SOURCE --out FILE.csv [--consented-only] [--stage local]
    python manage.py stats [--stage local] [--source SOURCE]
    python manage.py report --out report.html [--stage local] [--source SOURCE]

SOURCE is ``table`` (the stage's table, read with a Scan), a folder or
``s3://bucket/prefix`` holding a DynamoDB export, or a full export followed
by incremental ones, separated by commas (see docs/exports.md). Each
command returns the process's exit code: 0 done, 2 the source could not be
read (the message says why).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chalicelib import export, stats
from chalicelib.models import RequestRecord


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _reads_table(source: str) -> bool:
    return export.TABLE in (part.strip() for part in source.split(","))


def _use_stage(source: str, stage: str) -> None:
    """Give the process the stage's table and credentials, for ``table`` only.

    An export source needs no stage: only the local stage points AWS at the
    local moto server, and an s3:// source must not be sent there by default.
    """
    if _reads_table(source):
        from manage import use_stage

        use_stage(stage)


@contextmanager
def _replacing(out: Path) -> Iterator[Path]:
    """Write next to ``out`` and move into place only once complete.

    A half-written file (a failed download, Ctrl-C) never looks like a
    finished export or report.
    """
    if not out.parent.is_dir():
        raise export.ExportError(f"{out.parent} is not a folder")
    partial = out.with_name(out.name + ".part")
    try:
        yield partial
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out)


def export_command(args: argparse.Namespace) -> int:
    """``export``: one CSV row per live request (docs/exports.md, "Exports")."""
    source, out = args.source, Path(args.out)
    _use_stage(source, args.stage)
    progress = export.Progress(label="items read")
    try:
        with _replacing(out) as partial, export.open_csv(partial) as handle:
            items = export.read(source, lean=True, progress=progress, warn=_warn)
            count = export.write_csv(export.rows(items, consented_only=args.consented_only), handle)
    except export.ExportError as error:
        progress.finish()
        print(f"export: {error}", file=sys.stderr)
        return 2
    progress.finish()
    kind = "consented supporters" if args.consented_only else "requests"
    print(f"{count:,} {kind} written to {out} (from {progress.done:,} items read)")
    return 0


def _records(args: argparse.Namespace) -> tuple[Iterator[RequestRecord], export.Progress]:
    """The records of ``--source`` (default: the stage's table)."""
    source = getattr(args, "source", None) or export.TABLE
    _use_stage(source, args.stage)
    progress = export.Progress(label="items read")
    return export.read_records(source, progress=progress, warn=_warn), progress


def _figures(args: argparse.Namespace, command: str) -> stats.Figures | None:
    """The figures of ``args.source``, or None after saying why they can't be read."""
    records, progress = _records(args)
    try:
        figures = stats.collect(records)
    except export.ExportError as error:
        progress.finish()  # clear the bar before the message
        print(f"{command}: {error}", file=sys.stderr)
        return None
    progress.finish()
    return figures


def stats_command(args: argparse.Namespace) -> int:
    """``stats``: the figures as aligned text on stdout."""
    figures = _figures(args, "stats")
    if figures is None:
        return 2
    print(stats.render_text(figures), end="")
    return 0


def _names(stage: str) -> tuple[str, str]:
    """The campaign's and the target's names from the stage's settings."""
    from chalicelib.settings import Settings, SettingsError, load
    from tools import local_stack

    try:
        settings = load(local_stack.stage_environment(stage))
    except (SettingsError, KeyError):
        defaults = Settings.model_fields
        return str(defaults["campaign_name"].default), str(defaults["target_name"].default)
    return settings.campaign_name, settings.target_name


def report_command(args: argparse.Namespace) -> int:
    """``report``: the self-contained HTML compliance report."""
    from tools import report

    out = Path(args.out)
    figures = _figures(args, "report")
    if figures is None:
        return 2
    campaign, target = _names(args.stage)
    try:
        with _replacing(out) as partial:
            html = report.render(figures, campaign=campaign, target=target)
            partial.write_text(html, encoding="utf-8")
    except export.ExportError as error:
        print(f"report: {error}", file=sys.stderr)
        return 2
    print(f"report written to {out} ({figures.sent:,} letters sent, as of {figures.as_of})")
    return 0
