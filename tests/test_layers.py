"""The architecture as the imports show it: data flows one way (ui → service → qa → index, lab beside ui), no
module imports one that imports it back (directly or around a loop), and answering never imports the offline work."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("index", "qa", "service", "ui", "lab")
# What each package may import of the others: ui → service → qa → index, ui and lab reading qa's data model;
# `ui/cli.py` runs `citeqa train` and `citeqa eval`, so ui reaches lab.
MAY_IMPORT = {"index": set(), "qa": {"index"}, "service": {"index", "qa"}, "lab": {"index", "qa", "service"},
              "ui": {"index", "qa", "service", "lab"}}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every project module a file imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] in PACKAGES}


GRAPH = {module_name(path): imports_of(path) for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_each_module_imports_only_the_layers_below_it(module):
    layer = module.split(".")[0]
    upward = {name for name in GRAPH[module] if name.split(".")[0] not in MAY_IMPORT[layer] | {layer}}
    assert not upward, f"{module} imports {sorted(upward)}"


def test_no_module_imports_one_that_imports_it_back():
    def reaches(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for name in GRAPH.get(todo.pop(), ()):
                if name not in seen:
                    seen.add(name)
                    todo.append(name)
        return seen

    loops = sorted(module for module in GRAPH if module in reaches(module))
    assert not loops, f"modules on an import loop: {loops}"


def test_the_environment_is_read_by_the_settings_alone():
    """Every variable is read through a settings section (`*/settings.py`); the one write is `serve --workers`
    handing its workers their share of the cores as the setting CITEQA_THREADS."""
    readers = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            source = path.read_text(encoding="utf-8")
            uses = [word for word in ("os.environ", "os.getenv", "os.cpu_count") if word in source]
            if uses and path.name != "settings.py":
                readers[module_name(path)] = uses
    assert readers == {"ui.server": ["os.environ"]}
