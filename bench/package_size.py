#!/usr/bin/env python3
"""Deployment package: zip and unzipped size against Lambda's limits.

Runs ``chalice package --stage dev`` into a temporary folder (as
tests/integration/test_package.py does; AWS_DEFAULT_REGION defaults to
ca-central-1), then prints the zip's size against the 50 MB limit of a
direct upload, the unzipped size against the 250 MB limit (function and
layers together), the largest top-level entries, how much of it is the
project's own code, and checks that no development tool is in it (the
chalice CLI, moto, pytest, playwright, boto3/botocore and the like).

    python bench/package_size.py [--stage dev] [--top 12]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
ZIP_LIMIT = 50 * MB  # direct upload of a .zip (larger ones go through S3)
UNZIPPED_LIMIT = 250 * MB  # the function and all its layers, unzipped

# Top-level names (distribution names normalised) that must never ship.
DEV_TOOLS = {
    "moto",
    "pytest",
    "_pytest",
    "pluggy",
    "playwright",
    "boto3",
    "botocore",
    "s3transfer",
    "hypothesis",
    "ruff",
    "mypy",
    "mypy_extensions",
    "cfnlint",
    "cfn_lint",
    "samtranslator",
    "werkzeug",
    "flask",
    "responses",
    "tests",
    "tools",
    "bench",
}
DEV_PREFIXES = ("mypy_boto3", "boto3_stubs", "botocore_stubs", "types_")
OWN = {"app.py", "chalicelib", "templates"}
# Chalice ships its small runtime module, never the CLI and deployer.
CHALICE_RUNTIME = {"chalice/__init__.py", "chalice/app.py", "chalice/app.pyi"}


def top_name(path: str) -> str:
    return path.split("/", 1)[0]


def distribution(name: str) -> str:
    """``moto-5.2.5.dist-info`` -> ``moto``; ``foo.py`` -> ``foo``."""
    base = name.removesuffix(".py")
    if base.endswith((".dist-info", ".egg-info", ".data")):
        base = base.split("-", 1)[0]
    return base.lower().replace("-", "_")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()

    chalice = Path(sys.executable).with_name("chalice")
    env = {**os.environ}
    env.setdefault("AWS_DEFAULT_REGION", "ca-central-1")
    with tempfile.TemporaryDirectory(prefix="takeback-package-") as scratch:
        out = Path(scratch) / "cfn"
        start = time.perf_counter()
        subprocess.run(
            [str(chalice), "package", "--stage", args.stage, str(out)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            env=env,
        )
        took = time.perf_counter() - start
        archive = out / "deployment.zip"
        zipped = archive.stat().st_size
        with zipfile.ZipFile(archive) as opened:
            entries = [info for info in opened.infolist() if not info.is_dir()]

    unzipped = sum(info.file_size for info in entries)
    by_top: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for info in entries:
        figures = by_top[top_name(info.filename)]
        figures[0] += info.file_size
        figures[1] += info.compress_size
        figures[2] += 1
    own = sum(figures[0] for name, figures in by_top.items() if name in OWN)

    print(f"chalice package --stage {args.stage}: {took:.1f} s, {len(entries)} files")
    print(
        f"zip       {zipped / MB:7.2f} MB  of the {ZIP_LIMIT // MB} MB direct-upload limit "
        f"({zipped / ZIP_LIMIT:.1%})"
    )
    print(
        f"unzipped  {unzipped / MB:7.2f} MB  of the {UNZIPPED_LIMIT // MB} MB limit "
        f"({unzipped / UNZIPPED_LIMIT:.1%}); the project's own code and templates "
        f"{own / MB:.2f} MB ({own / unzipped:.1%})"
    )
    print("largest top-level entries (unzipped MB, zipped MB, files):")
    ranked = sorted(by_top.items(), key=lambda pair: pair[1][0], reverse=True)
    for name, (size, compressed, files) in ranked[: args.top]:
        print(f"  {name:<40} {size / MB:7.2f} {compressed / MB:7.2f} {files:6d}")

    problems = []
    for name in by_top:
        dist = distribution(name)
        if dist in DEV_TOOLS or dist.startswith(DEV_PREFIXES):
            problems.append(f"development tool in the package: {name}")
    chalice_files = {info.filename for info in entries if top_name(info.filename) == "chalice"}
    extra = chalice_files - CHALICE_RUNTIME
    if extra:
        problems.append(f"chalice CLI/deployer files in the package: {sorted(extra)[:5]} ...")
    if not any(name == "templates" for name in by_top):
        problems.append("templates/ is missing from the package")
    print(
        "dev tools: "
        + (
            "none (no chalice CLI, moto, pytest, playwright, boto3/botocore, stubs, "
            "tests/tools/bench)"
            if not problems
            else "PROBLEMS"
        )
    )
    for problem in problems:
        print(f"  PROBLEM {problem}")
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
