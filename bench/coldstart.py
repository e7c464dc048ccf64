#!/usr/bin/env python3
"""Cold start: what importing the app costs against `import chalice, boto3`.

Every Lambda cold start pays for importing app.py. Each sample runs in a
fresh interpreter (same executable, same environment) so nothing is cached
in-process. Prints medians of --runs samples and the ratio (target <= 1.2x).
Also times the first request through chalice.test.Client in a fresh process
(import + settings + first route), against a moto-free health check.

    python bench/coldstart.py [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TIMED_IMPORT = """
import time, sys
sys.path.insert(0, {root!r})
start = time.perf_counter()
{statement}
print(time.perf_counter() - start)
"""

FIRST_REQUEST = """
import time, sys, os
sys.path.insert(0, {root!r})
start = time.perf_counter()
from chalice.test import Client
from app import app
with Client(app, stage_name="local", project_dir={root!r}) as client:
    response = client.http.get("/health")
assert response.status_code == 200
print(time.perf_counter() - start)
"""


def sample(code: str) -> float:
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return float(output.strip().splitlines()[-1])


def median_ms(code: str, runs: int) -> float:
    return statistics.median(sample(code) for _ in range(runs)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    root = str(ROOT)
    baseline = median_ms(TIMED_IMPORT.format(root=root, statement="import chalice, boto3"), runs)
    app = median_ms(TIMED_IMPORT.format(root=root, statement="import app"), runs)
    first = median_ms(FIRST_REQUEST.format(root=root), runs)
    print(f"import chalice, boto3        median {baseline:7.1f} ms  ({runs} fresh interpreters)")
    print(f"import app                   median {app:7.1f} ms")
    print(f"ratio app / baseline         {app / baseline:7.2f}x  (target <= 1.2x)")
    print(f"first request (Client, /health) median {first:7.1f} ms")


if __name__ == "__main__":
    main()
