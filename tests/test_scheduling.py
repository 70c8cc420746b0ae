"""`make test`'s scheduler (tests/conftest.py) keeps each test module on one worker, so a module's platform is
built once. It once reordered a worker's collection, whose indices name the tests to run: modules were then
split across workers (module fixtures built twice) without any test failing. This test would have caught it."""

import re
import subprocess
import sys

from core.settings import REPO_ROOT

# collected in this (alphabetical) order, scheduled in FIRST order: test_layers before test_catalog
MODULES = ("tests/test_catalog.py", "tests/test_layers.py", "tests/test_redaction.py")


def test_each_module_runs_on_one_worker():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "2",
            "--dist",
            "loadscope",
            "-v",
            "-p",
            "no:cacheprovider",
            *MODULES,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    workers: dict[str, set[str]] = {}
    for worker, module in re.findall(r"\[(gw\d+)\][^\n]*PASSED (tests/\w+\.py)::", result.stdout):
        workers.setdefault(module, set()).add(worker)
    assert set(workers) == set(MODULES), result.stdout[-3000:]
    assert all(len(ran_on) == 1 for ran_on in workers.values()), workers
