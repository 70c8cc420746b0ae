"""The layers point one way (docs/architecture.md, "The house"): the core imports nothing of ours and no
Dagster; the contracts, the Feast repo, the resources and the endpoint build on it; the code locations and
the CLI sit on top. A module that imports from a layer above it, or a private name from another module,
fails here with the file and line."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# package -> the packages of ours it may import (besides itself)
ALLOWED = {
    "core": set(),
    "expectations": {"core"},
    "feature_repo": {"core"},
    "resources": {"core", "feature_repo"},
    "serving": {"core", "feature_repo", "resources"},
    "hybrid_assets": {"core", "expectations", "feature_repo", "resources"},
    "hybrid_cli": {"core", "expectations", "feature_repo", "resources", "serving", "hybrid_assets"},
}
# on top of everything (any import allowed), but no private name of ours crosses a module there either
TOOLS = {"benchmarks": set(ALLOWED)}
# third-party packages a layer must not import: the core runs without Dagster (and without GX, Feast)
FORBIDDEN = {"core": {"dagster", "great_expectations", "feast"}}


def _imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield node.lineno, node.module, alias.name


def _violations() -> list[str]:
    problems = []
    for package, allowed in {**ALLOWED, **TOOLS}.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            where = path.relative_to(ROOT)
            for line, module, name in _imports(path):
                top = module.split(".")[0]
                if top in ALLOWED and top != package and top not in allowed:
                    problems.append(f"{where}:{line}: {package} imports {module} (a layer above it)")
                if top in FORBIDDEN.get(package, ()):
                    problems.append(f"{where}:{line}: {package} imports {module}")
                ours = top in ALLOWED or top in TOOLS
                if ours and name and name.startswith("_") and not name.startswith("__"):
                    problems.append(f"{where}:{line}: imports the private name {name} from {module}")
                if ours and any(
                    part.startswith("_") and not part.startswith("__") for part in module.split(".")
                ):
                    problems.append(f"{where}:{line}: imports the private module {module}")
    return problems


def test_layers_point_one_way_and_private_names_stay_home():
    assert _violations() == []


def test_the_check_sees_a_violation(tmp_path, monkeypatch):
    """The check itself can fail: a core module that imports Dagster and a code location is reported."""
    bad = tmp_path / "core"
    bad.mkdir()
    (bad / "bad.py").write_text(
        "import dagster\nfrom hybrid_assets.onprem import assets\nfrom core.x import _y\n"
    )
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    problems = _violations()
    assert any("core imports dagster" in p for p in problems)
    assert any("imports hybrid_assets.onprem" in p for p in problems)
    assert any("private name _y" in p for p in problems)
