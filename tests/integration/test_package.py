"""`chalice package` ships the templates: the deployed zip renders them all."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tools.local_stack import ROOT, aws_environment, stage_environment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package")
    chalice = Path(sys.executable).with_name("chalice")
    subprocess.run(
        [str(chalice), "package", "--stage", "dev", str(out / "cfn")],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={**os.environ, "AWS_DEFAULT_REGION": "ca-central-1"},
    )
    unzipped = out / "unzipped"
    with zipfile.ZipFile(out / "cfn" / "deployment.zip") as archive:
        archive.extractall(unzipped)
    return unzipped


def test_every_template_is_in_the_package(package: Path) -> None:
    for source in (ROOT / "templates").rglob("*"):
        if source.is_file():
            shipped = package / "templates" / source.relative_to(ROOT / "templates")
            assert shipped.read_bytes() == source.read_bytes(), shipped


def test_no_development_tools_in_the_package(package: Path) -> None:
    names = {path.name.split("-")[0].lower() for path in package.iterdir()}
    for tool in ("moto", "pytest", "playwright", "boto3", "botocore", "tests", "tools", "bench"):
        assert tool not in names, tool
    # Chalice adds only its small runtime module, never the CLI.
    assert {path.name for path in (package / "chalice").iterdir()} <= {
        "__init__.py",
        "app.py",
        "app.pyi",
    }


def test_the_packaged_app_imports_and_renders_every_template(package: Path, aws: str) -> None:
    env = {
        **os.environ,
        **stage_environment("local"),
        **aws_environment(aws),
        "PYTHONPATH": "",
    }
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("render_all.py"))],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "from all 18 runtime templates" in result.stdout, result.stdout
