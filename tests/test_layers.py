"""The package's layers: import-linter's contracts (pyproject.toml) hold, and no module
imports in a circle but a model module and its managers' querysets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command;"
                               " sys.exit(lint_imports_command())", "--no-cache"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def test_the_import_contracts_are_kept():
    result = lint_imports(ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_a_lower_layer_importing_a_higher_one_breaks_a_contract(tmp_path):
    """The contracts bite: capture importing the pipeline is reported."""
    shutil.copytree(ROOT / "django_recs", tmp_path / "django_recs",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    recording = tmp_path / "django_recs" / "capture" / "recording.py"
    recording.write_text(recording.read_text() + "\nfrom ..pipeline import runs  # noqa\n")
    result = lint_imports(tmp_path, tmp_path)
    assert result.returncode != 0
    assert "django_recs.capture.recording -> django_recs.pipeline.runs" in result.stdout


def strongly_connected(graph) -> list[set[str]]:
    """The import cycles of ``graph``: its strongly connected groups of two or more modules."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(group)

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return groups


def test_no_module_imports_in_a_circle_but_models_and_their_querysets():
    # Imports inside functions count: grimp reads every import statement.
    graph = grimp.build_graph("django_recs")
    assert strongly_connected(graph) == [{"django_recs.models", "django_recs.querysets"}]


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    assert strongly_connected(graph) == [{"a", "b", "c"}]
