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


def test_a_module_using_the_session_platform_must_be_listed():
    """Otherwise it would be its own scope, and a second worker would build the session platform again."""
    import pytest

    from tests.conftest import PLATFORM_MODULES, SHARED_PLATFORM, _scope, pytest_collection_modifyitems

    class Item:
        nodeid, fixturenames = "tests/test_new.py::test_x", ("tmp_path", "platform")

    with pytest.raises(pytest.UsageError, match="add tests/test_new.py to PLATFORM_MODULES"):
        pytest_collection_modifyitems(None, [Item()])
    assert {_scope(f"{m}::t") for m in PLATFORM_MODULES} == {SHARED_PLATFORM}
    assert _scope("tests/test_hybrid.py::t") == "tests/test_hybrid.py"
