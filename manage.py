#!/usr/bin/env python3
"""takeback's command line: the local stack and the organisers' tools.

    python manage.py run                       # the whole local stack
    python manage.py deliver-stream            # (part of run) the table's stream to send_stored
    python manage.py check-settings --stage prod
    python manage.py chase [--stage local] [--as-of YYYY-MM-DD] [--dry-run]
    python manage.py build-page --api-url URL --out DIR [--stage prod]
    python manage.py export --source SOURCE --out FILE.csv [--consented-only]
    python manage.py stats [--stage local] [--source SOURCE]
    python manage.py report --out report.html [--stage local] [--source SOURCE]
    python manage.py package --stage prod --out dist/prod

Each command is a thin wrapper over a module in chalicelib/ or tools/.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent
Command = Callable[[argparse.Namespace], int]


def run(args: argparse.Namespace) -> int:
    """moto on :4566, the API on :8000, the page on :8080, mail in outbox/."""
    from tools import local_stack, site

    endpoint = f"http://127.0.0.1:{args.moto_port}"
    stage_env = local_stack.stage_environment("local")
    api_url = f"http://127.0.0.1:{args.api_port}"
    page_dir = ROOT / "build" / "site"
    site.build(api_url=api_url, out=page_dir)
    # moto logs every AWS call, the stream delivery's polling included:
    # to a file, so that the console shows the API's requests.
    moto_log = ROOT / "build" / "moto.log"
    with moto_log.open("wb") as log:
        processes = [local_stack.start_moto(args.moto_port, stdout=log, stderr=log)]
    with local_stack.running(processes):
        local_stack.provision(endpoint, stage_env)
        env = local_stack.aws_environment(endpoint)
        processes.append(local_stack.start_chalice_local(args.api_port, "local", env))
        processes.append(local_stack.start_stream_delivery(env))
        processes.append(local_stack.serve_folder(page_dir, args.page_port))
        print(
            "\ntakeback local stack is running:\n"
            f"  campaign page  http://127.0.0.1:{args.page_port}/\n"
            f"  API            {api_url}/  (stage 'local')\n"
            f"  moto (AWS)     {endpoint}/  (sent mail: {endpoint}/moto-api/data.json;"
            f" log: {moto_log})\n"
            f"  emails         {ROOT / stage_env['OUTBOX_DIR']}/*.eml"
            " (sent by send_stored from the table's stream, a moment after each request)\n"
            "Press Ctrl-C to stop everything.",
            flush=True,
        )
        _wait_for_interrupt(processes)
    return 0


def _wait_for_interrupt(processes: Sequence[object]) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while all(process.poll() is None for process in processes):  # type: ignore[attr-defined]
            time.sleep(0.5)
        print("a process of the local stack exited; stopping the rest", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)


def check_settings(args: argparse.Namespace) -> int:
    """Validate a stage's settings as the Lambda will read them."""
    from chalicelib.settings import SettingsError, load
    from tools import local_stack

    try:
        settings = load(local_stack.stage_environment(args.stage))
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"stage {args.stage}: settings are valid (table {settings.table_name})")
    return 0


def use_stage(stage: str) -> None:
    """Give this process the stage's environment, as Chalice gives its Lambdas.

    The local stage talks to the local moto server unless AWS_ENDPOINT_URL
    says otherwise; other stages use the caller's AWS credentials.
    """
    from chalicelib import aws
    from tools import local_stack

    # A variable already set in the environment wins (tests and one-off
    # overrides, e.g. OUTBOX_DIR); everything else comes from the stage.
    for name, value in local_stack.stage_environment(stage).items():
        os.environ.setdefault(name, value)
    if stage == "local" and "AWS_ENDPOINT_URL" not in os.environ:
        os.environ.update(local_stack.aws_environment("http://127.0.0.1:4566"))
    aws.reset()


def chase(args: argparse.Namespace) -> int:
    """The daily chase, as the scheduled Lambda runs it."""
    from datetime import date

    from chalicelib import chase as chase_module
    from chalicelib.journey import now

    use_stage(args.stage)
    as_of = date.fromisoformat(args.as_of) if args.as_of else now().date()
    summary = chase_module.run(as_of, dry_run=args.dry_run)
    print("\n".join(summary.lines()))
    return 1 if summary.failed else 0


def deliver_stream(args: argparse.Namespace) -> int:
    """The local stage's stand-in for Lambda's event source mapping.

    chalice local fires no event sources: this reads the table's stream from
    the moto server and invokes ``send_stored`` with each batch, until stopped.
    """
    from tools import streams

    use_stage("local")
    import app
    from chalicelib.settings import get_settings

    streams.deliver_forever(get_settings().table_name, lambda event: app.send_stored(event, None))
    return 0


def withdraw_consent(args: argparse.Namespace) -> int:
    """Stop campaign news for an address (a supporter who asked by email or post)."""
    from chalicelib import journey, store, tokens

    use_stage(args.stage)
    record = store.request_for_email(tokens.email_fingerprint(args.email))
    if record is None:
        print("no open request for that address (forgotten, purged or never made)")
        return 1
    withdrawn = journey.withdraw_consent(record)
    print(f"request {withdrawn.request_id}: consent_updates is now {withdrawn.consent_updates}")
    return 0


def build_page(args: argparse.Namespace) -> int:
    from tools import site

    site.build(api_url=args.api_url, out=Path(args.out), stage=args.stage, site_url=args.site_url)
    print(f"campaign page built in {args.out}")
    return 0


def package(args: argparse.Namespace) -> int:
    """Build the stage's CloudFormation template and zip, checked by cfn-lint."""
    from chalicelib.settings import SettingsError
    from tools.package import PackageError
    from tools.package import package as build_package

    try:
        template = build_package(args.stage, Path(args.out))
    except (PackageError, SettingsError) as error:
        print(error, file=sys.stderr)
        return 2
    zipped = template.with_name("deployment.zip")
    print(f"stage {args.stage}: {template} (cfn-lint clean) and {zipped}")
    return 0


def export(args: argparse.Namespace) -> int:
    from tools.organisers import export_command

    return export_command(args)


def stats(args: argparse.Namespace) -> int:
    from tools.organisers import stats_command

    return stats_command(args)


def report(args: argparse.Namespace) -> int:
    from tools.organisers import report_command

    return report_command(args)


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="manage.py", description=__doc__.splitlines()[0])
    commands = main.add_subparsers(dest="command", required=True)

    local = commands.add_parser("run", help="start the local stack")
    local.add_argument("--moto-port", type=int, default=4566)
    local.add_argument("--api-port", type=int, default=8000)
    local.add_argument("--page-port", type=int, default=8080)
    local.set_defaults(handler=run)

    stream = commands.add_parser(
        "deliver-stream", help="(run starts it) deliver the local table's stream to send_stored"
    )
    stream.set_defaults(handler=deliver_stream)

    check = commands.add_parser("check-settings", help="validate a stage's settings")
    check.add_argument("--stage", default="prod")
    check.set_defaults(handler=check_settings)

    chase_cmd = commands.add_parser("chase", help="chase overdue requests (the daily job)")
    chase_cmd.add_argument("--stage", default="local")
    chase_cmd.add_argument("--as-of", help="run as if today were YYYY-MM-DD")
    chase_cmd.add_argument("--dry-run", action="store_true", help="list, send and write nothing")
    chase_cmd.set_defaults(handler=chase)

    withdraw = commands.add_parser(
        "withdraw-consent", help="stop campaign news for an address (the request goes on)"
    )
    withdraw.add_argument("--email", required=True)
    withdraw.add_argument("--stage", default="local")
    withdraw.set_defaults(handler=withdraw_consent)

    page = commands.add_parser("build-page", help="build the static campaign page")
    page.add_argument("--api-url", required=True)
    page.add_argument("--out", required=True)
    page.add_argument("--stage", default="local", help="whose campaign identity to show")
    page.add_argument("--site-url", help="where the page will live (default: CAMPAIGN_WEBSITE)")
    page.set_defaults(handler=build_page)
    exp = commands.add_parser("export", help="requests to a CSV file, from an export or the table")
    exp.add_argument(
        "--source",
        required=True,
        help="export folder, s3://bucket/prefix, FULL,INCREMENTAL,... or 'table'",
    )
    exp.add_argument("--out", required=True, help="the CSV file to write")
    exp.add_argument(
        "--consented-only", action="store_true", help="only supporters who may be emailed (CASL)"
    )
    exp.add_argument("--stage", default="local", help="whose table --source table reads")
    exp.set_defaults(handler=export)

    st = commands.add_parser("stats", help="campaign and compliance figures")
    st.add_argument("--stage", default="local")
    st.add_argument("--source", help="an export instead of the stage's table")
    st.set_defaults(handler=stats)

    rep = commands.add_parser("report", help="the self-contained HTML compliance report")
    rep.add_argument("--stage", default="local")
    rep.add_argument("--source", help="an export instead of the stage's table")
    rep.add_argument("--out", required=True)
    rep.set_defaults(handler=report)

    pkg = commands.add_parser("package", help="build the stage's CloudFormation template, checked")
    pkg.add_argument("--stage", default="prod")
    pkg.add_argument("--out", required=True)
    pkg.set_defaults(handler=package)
    return main


def main(argv: Sequence[str] | None = None) -> int:
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    args = parser().parse_args(argv)
    handler: Command = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
