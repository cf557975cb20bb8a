"""The code stays lint-clean, typed, formatted and layered (ruff, mypy, import-linter)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATHS = ["src", "tests", "benchmarks", "scripts"]


@pytest.mark.parametrize(
    "cmd",
    [
        [sys.executable, "-m", "ruff", "check", *PATHS],
        [sys.executable, "-m", "ruff", "format", "--check", *PATHS],
        [sys.executable, "-m", "mypy"],
        [str(Path(sys.executable).with_name("lint-imports"))],
    ],
    ids=["ruff-check", "ruff-format", "mypy", "import-linter"],
)
def test_tool_passes(cmd):
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


SRC = ROOT / "src" / "truckcarbon"
MAX_LINES = 500


def test_no_source_file_is_longer_than_a_newcomer_can_read():
    long = {
        p.relative_to(SRC).as_posix(): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text("utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split by concept, at most {MAX_LINES} lines: {long}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> set[str]:
    """Every truckcarbon module imported anywhere in the file (functions too), except under TYPE_CHECKING."""
    tree = ast.parse(path.read_text("utf-8"))
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], *([base] if base else [])]
                )
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("truckcarbon")}


def test_no_import_cycle():
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {m: {i for i in _imports(p, m) if i in paths and i != m} for m, p in paths.items()}
    # A package imports its own submodules (its public API); a submodule importing its package back is the cycle.
    for m in graph:
        graph[m] = {i for i in graph[m] if not i.startswith(m + ".")}
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        seen[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if seen.get(n) == 1:
                return [*stack[stack.index(n) :], n]
            if n not in seen and (cycle := visit(n)):
                return cycle
        seen[m] = 2
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in seen and (cycle := visit(m)):
            pytest.fail(" -> ".join(cycle))


def _module_names() -> list[str]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def test_every_exception_of_the_package_derives_from_the_root_error():
    """A caller catches every truckcarbon failure with one ``except TruckcarbonError``."""
    import importlib
    import inspect

    from truckcarbon.core.errors import TruckcarbonError

    strays = []
    for name in _module_names():
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, BaseException) and not issubclass(cls, TruckcarbonError):
                strays.append(f"{name}.{cls.__name__}")
    assert not strays, f"exceptions not derived from TruckcarbonError: {strays}"


def test_architecture_tour_lists_every_module():
    """docs/architecture.md has one line per module: a module added or moved is added or moved there."""
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    listed = {line.split("`")[1] for line in doc.splitlines() if line.startswith("- `") and line.count("`") >= 2}
    modules = {str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if p.relative_to(SRC) != Path("__init__.py")}
    assert modules - listed == set(), f"modules missing from docs/architecture.md: {sorted(modules - listed)}"
    assert listed - modules == set(), f"docs/architecture.md lists missing modules: {sorted(listed - modules)}"
