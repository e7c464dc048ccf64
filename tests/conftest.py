"""Shared fixtures: a real moto server over HTTP, the app, and its mail.

boto3 in the code under test talks HTTP to a moto server started here (via
``AWS_ENDPOINT_URL``); nothing is patched in-process. Each test starts from a
reset server, provisioned like ``make run`` provisions the local stage.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client, TestHTTPClient

from tools import local_stack, streams

STAGE = "local"
TEST_SECRET = "test-signing-secret-not-for-production"


class _Delivering(TestHTTPClient):
    """Each HTTP call, then what Lambda does with the table's stream."""

    def __init__(self, app: Any, config: Any, after: Callable[[], object]) -> None:
        super().__init__(app, config)
        self._after = after

    def request(self, *args: Any, **kwargs: Any) -> Any:
        response = super().request(*args, **kwargs)
        self._after()
        return response


class StreamingClient(Client):
    """chalice's test client, with the table's stream delivered to
    ``send_stored`` after every HTTP call, as Lambda delivers it in AWS
    (within about a second there, before the call returns here).

    ``deliver_stream()`` delivers what other code (a job run directly) wrote;
    with ``delivering = False`` only it does (to look between the two).
    """

    def __init__(self, app: Any, project_dir: Path, table_name: str) -> None:
        super().__init__(app, stage_name=STAGE, project_dir=str(project_dir))
        self._reader = streams.StreamReader(table_name)
        self.delivering = True

    @property
    def http(self) -> TestHTTPClient:
        if self._http_client is None:
            self._http_client = _Delivering(self._app, self._chalice_config, self._after_call)
        return self._http_client

    def _after_call(self) -> None:
        if self.delivering:
            self.deliver_stream()

    def deliver_stream(self) -> int:
        return streams.deliver(
            self._reader, lambda event: self.lambda_.invoke("send_stored", event)
        )


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    port = local_stack.free_port()
    with open(os.devnull, "wb") as log:
        process = local_stack.start_moto(port, stdout=log, stderr=log)
    endpoint = f"http://127.0.0.1:{port}"
    saved = {key: os.environ.get(key) for key in local_stack.aws_environment(endpoint)}
    os.environ.update(local_stack.aws_environment(endpoint))
    yield endpoint
    local_stack.stop(process)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@dataclass(frozen=True)
class LiveStack:
    """The local stack on free ports: what `make run` starts, for tests."""

    api: str
    page: str
    outbox: Path
    project: Path  # the project copy the servers run (its stage settings)
    log: Path


def _project_copy(folder: Path, overrides: dict[str, str]) -> Path:
    """The project through symlinks, with the local stage's settings changed."""
    for name in ("app.py", "chalicelib", "templates", "vendor"):
        (folder / name).symlink_to(local_stack.ROOT / name)
    (folder / ".chalice").mkdir()
    config = json.loads((local_stack.ROOT / ".chalice" / "config.json").read_text())
    config["stages"][STAGE]["environment_variables"].update(overrides)
    (folder / ".chalice" / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="session")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project with the local stage's outbox in a temp folder."""
    folder = tmp_path_factory.mktemp("project")
    return _project_copy(folder, {"OUTBOX_DIR": str(folder / "outbox")})


@pytest.fixture(scope="session")
def live_servers(
    moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    """chalice local and the built campaign page, on free loopback ports.

    They keep their cached clients and secret across the per-test resets of
    moto, which stay valid (the secret is fixed).
    """
    from tools import site

    api_port, page_port = local_stack.free_port(), local_stack.free_port()
    api, page = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{page_port}"
    folder = tmp_path_factory.mktemp("live")
    (folder / "project").mkdir()
    project = _project_copy(
        folder / "project",
        {
            "OUTBOX_DIR": str(folder / "outbox"),
            "API_BASE_URL": api,
            "CAMPAIGN_WEBSITE": page,
            "THANK_YOU_URL_EN": f"{page}/thanks/",
            "THANK_YOU_URL_FR": f"{page}/fr/merci/",
            "ALLOWED_ORIGINS": page,
        },
    )
    stage_env = local_stack.stage_environment(STAGE, project)
    local_stack.provision(moto_endpoint, stage_env, secret=TEST_SECRET)
    site.build(api_url=api, out=folder / "site")
    with open(folder / "servers.log", "wb") as log:
        processes = [
            local_stack.start_chalice_local(
                api_port,
                STAGE,
                local_stack.aws_environment(moto_endpoint),
                project,
                stdout=log,
                stderr=log,
            ),
            local_stack.serve_folder(folder / "site", page_port, stdout=log, stderr=log),
        ]
    with local_stack.running(processes):
        yield LiveStack(
            api=api,
            page=page,
            outbox=folder / "outbox",
            project=project,
            log=folder / "servers.log",
        )


@pytest.fixture
def live_stack(live_servers: LiveStack, aws: str) -> Iterator[LiveStack]:
    """The live stack for one test, moto reset, with the table's stream
    delivered to ``send_stored`` (``manage.py deliver-stream``, as ``make
    run`` does) while the test runs.

    Only while it runs: the other tests on this worker's moto server deliver
    the stream themselves (StreamingClient), and a delivery process left
    running would send their mail behind their backs.
    """
    with open(live_servers.log, "ab") as log:
        delivery = local_stack.start_stream_delivery(
            local_stack.aws_environment(aws), live_servers.project, stdout=log, stderr=log
        )
    with local_stack.running([delivery]):
        yield live_servers


@pytest.fixture(scope="session")
def stage_env(project_dir: Path) -> dict[str, str]:
    return local_stack.stage_environment(STAGE, project_dir)


@pytest.fixture
def aws(moto_endpoint: str, stage_env: dict[str, str], project_dir: Path) -> Iterator[str]:
    """A freshly reset and provisioned moto server; cached clients forgotten."""
    from chalicelib import aws as aws_clients

    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request).close()
    local_stack.provision(moto_endpoint, stage_env, secret=TEST_SECRET)
    shutil.rmtree(project_dir / "outbox", ignore_errors=True)
    aws_clients.reset()
    yield moto_endpoint
    aws_clients.reset()


@pytest.fixture
def env(aws: str, stage_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The stage environment set in-process, for calling chalicelib directly."""
    for key, value in stage_env.items():
        monkeypatch.setenv(key, value)
    return stage_env


@pytest.fixture
def client(aws: str, project_dir: Path, stage_env: dict[str, str]) -> Iterator[StreamingClient]:
    from app import app

    with StreamingClient(app, project_dir, stage_env["TABLE_NAME"]) as test_client:
        yield test_client


@pytest.fixture
def sent_mail(aws: str) -> Callable[..., list[EmailMessage]]:
    """Every message SES (moto) accepted since the reset, parsed.

    ``sent_mail(at_least=n, to=address)`` first waits (10 s at most) for n
    messages (to that address): the live stack delivers the table's stream
    in its own process, a moment after the API answers.
    """

    def fetch() -> list[EmailMessage]:
        with urllib.request.urlopen(f"{aws}/moto-api/data.json") as response:
            data = json.load(response)
        return [
            message_from_bytes(item["raw_data"].encode("utf-8"), policy=policy.default)  # type: ignore[misc]
            for item in data["ses"]["RawMessage"]
        ]

    def read(at_least: int = 0, to: str | None = None) -> list[EmailMessage]:
        deadline = time.monotonic() + 10
        while True:
            messages = fetch()
            counted = [m for m in messages if to is None or to in str(m["To"])]
            if len(counted) >= at_least or time.monotonic() > deadline:
                return messages
            time.sleep(0.05)

    return read


@pytest.fixture
def table_items(aws: str, stage_env: dict[str, str]) -> Callable[[], list[dict[str, object]]]:
    """Every item in the table, as plain Python values."""
    import boto3
    from boto3.dynamodb.types import TypeDeserializer

    def read() -> list[dict[str, object]]:
        client = boto3.client("dynamodb")
        deserializer = TypeDeserializer()
        pages = client.get_paginator("scan").paginate(TableName=stage_env["TABLE_NAME"])
        return [
            {key: deserializer.deserialize(value) for key, value in item.items()}
            for page in pages
            for item in page["Items"]
        ]

    return read


@pytest.fixture
def make_client(aws: str, tmp_path: Path) -> Iterator[Callable[..., object]]:
    """A chalice.test.Client on the local stage with some settings changed."""
    from app import app
    from chalicelib import aws as aws_clients

    clients: list[object] = []

    def make(**overrides: str) -> object:
        folder = tmp_path / f"stage{len(clients)}"
        folder.mkdir()
        project = _project_copy(folder, {"OUTBOX_DIR": str(folder / "outbox"), **overrides})
        aws_clients.reset()  # settings are cached per process
        table = local_stack.stage_environment(STAGE, project)["TABLE_NAME"]
        client = StreamingClient(app, project, table)
        clients.append(client)
        return client

    yield make
    aws_clients.reset()


_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


class Recorder:
    """The app's AWS calls: as IAM actions, and as ``service.Operation`` in order."""

    def __init__(self) -> None:
        self.actions: set[str] = set()
        self.calls: list[str] = []

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        service = model.service_model.service_id.hyphenize()
        self.calls.append(f"{service}.{model.name}")
        prefix = {"dynamodb": "dynamodb", "sesv2": "ses", "ssm": "ssm"}[service]
        if model.name == "TransactWriteItems":
            for action in params["TransactItems"]:
                (kind,) = action
                self.actions.add(f"dynamodb:{_ITEM_ACTIONS[kind]}")
        else:
            self.actions.add(f"{prefix}:{model.name}")


@pytest.fixture
def record_calls(env: dict[str, str]) -> Callable[[], contextlib.AbstractContextManager[Recorder]]:
    """``with record_calls() as calls:`` records the app's AWS calls inside."""
    from chalicelib import aws as aws_clients

    @contextlib.contextmanager
    def recording() -> Iterator[Recorder]:
        aws_clients.reset()  # fresh clients, and the secret read again
        recorder = Recorder()
        clients = [aws_clients.dynamodb(), aws_clients.sesv2(), aws_clients.ssm()]
        for client in clients:
            client.meta.events.register("before-parameter-build.*.*", recorder)
        try:
            yield recorder
        finally:
            for client in clients:
                client.meta.events.unregister("before-parameter-build.*.*", recorder)

    return recording
