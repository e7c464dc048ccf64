"""The local stack: moto server, provisioning, chalice local, the page.

Used by ``make run`` (through manage.py) and by the test fixtures, so the
tests start exactly what a person trying the campaign starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REGION = "ca-central-1"


def stage_environment(stage: str, project_dir: Path = ROOT) -> dict[str, str]:
    """The environment Chalice gives the stage's Lambdas (global + stage)."""
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    merged = dict(config.get("environment_variables", {}))
    merged.update(config["stages"][stage].get("environment_variables", {}))
    return merged


def aws_environment(endpoint: str) -> dict[str, str]:
    """Point boto3 at a local endpoint with throwaway credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up within {timeout:.0f}s") from None
            time.sleep(0.1)


def spawn(
    args: list[str], env: Mapping[str, str] | None = None, **kwargs: Any
) -> subprocess.Popen[bytes]:
    """Start a process in its own group so stopping it stops its children."""
    return subprocess.Popen(
        args,
        env={**os.environ, **(env or {})},
        start_new_session=True,
        **kwargs,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def start_moto(port: int, *options: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    """moto's server, one AWS call at a time (see tools/moto_server.py)."""
    script = str(ROOT / "tools" / "moto_server.py")
    process = spawn(
        [sys.executable, script, *options, "-H", "127.0.0.1", "-p", str(port)], **kwargs
    )
    wait_for(f"http://127.0.0.1:{port}/moto-api/data.json")
    return process


def table_definition(name: str) -> dict[str, Any]:
    """The table as infra/table.json defines it for every stage."""
    definition: dict[str, Any] = json.loads((ROOT / "infra" / "table.json").read_text())
    definition["TableName"] = name
    return definition


def provision(endpoint: str, stage_env: Mapping[str, str], secret: str | None = None) -> None:
    """Create the stage's table, signing secret and SES identity, if missing.

    The secret is random unless given (tests fix it, so that processes that
    cached it keep agreeing across resets).
    """
    import boto3

    kwargs: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region_name": REGION,
        "aws_access_key_id": "local",
        "aws_secret_access_key": "local",
    }
    dynamodb = boto3.client("dynamodb", **kwargs)
    table = stage_env["TABLE_NAME"]
    if table not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(**table_definition(table))
        dynamodb.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
        dynamodb.update_continuous_backups(
            TableName=table,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
    ssm = boto3.client("ssm", **kwargs)
    name = stage_env["SIGNING_SECRET_PARAM"]
    try:
        ssm.get_parameter(Name=name)
    except ssm.exceptions.ParameterNotFound:
        ssm.put_parameter(Name=name, Value=secret or secrets.token_urlsafe(32), Type="SecureString")
    ses = boto3.client("sesv2", **kwargs)
    domain = stage_env["SENDER_EMAIL"].rpartition("@")[2]
    with contextlib.suppress(ses.exceptions.AlreadyExistsException):
        ses.create_email_identity(EmailIdentity=domain)


def start_chalice_local(
    port: int, stage: str, env: Mapping[str, str], project_dir: Path = ROOT, **kwargs: Any
) -> subprocess.Popen[bytes]:
    chalice = Path(sys.executable).with_name("chalice")
    process = spawn(
        [
            str(chalice),
            "--project-dir",
            str(project_dir),
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--stage",
            stage,
            "--no-autoreload",
        ],
        env=env,
        cwd=project_dir,
        **kwargs,
    )
    wait_for(f"http://127.0.0.1:{port}/health", timeout=60)
    return process


def start_stream_delivery(
    env: Mapping[str, str], project_dir: Path = ROOT, **kwargs: Any
) -> subprocess.Popen[bytes]:
    """``manage.py deliver-stream``: the table's stream to ``send_stored``.

    ``env`` carries the AWS endpoint, and any stage setting that differs
    from the project's .chalice/config.json.
    """
    return spawn(
        [sys.executable, str(ROOT / "manage.py"), "deliver-stream"],
        env={**stage_environment("local", project_dir), **env},
        **kwargs,
    )


@contextlib.contextmanager
def running(processes: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in reversed(processes):
            stop(process)


def serve_folder(folder: Path, port: int, **kwargs: Any) -> subprocess.Popen[bytes]:
    """Serve a static folder on 127.0.0.1 (the campaign page)."""
    process = spawn(
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(folder),
            str(port),
        ],
        **kwargs,
    )
    wait_for(f"http://127.0.0.1:{port}/")
    return process
