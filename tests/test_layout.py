"""The package's layout holds: imports only go down the layers, no module cycles, short
functions. The layers are stated in docs/architecture.md; this test keeps them true."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "seglib"
# bottom to top: a module may import its own layer and the layers before it
LAYERS = ("core", "masks", "backends", "labels", "training", "refine", "formats", "course", "cli")
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    """The layer of ``seglib.X...``; ``seglib`` itself (only ``__version__``) is below them
    all and ``seglib.__main__`` on top."""
    parts = module.split(".")
    if module == "seglib":
        return -1
    if len(parts) < 2 or parts[1] not in LAYERS:
        return len(LAYERS)
    return LAYERS.index(parts[1])


def imported_modules(path: Path) -> set[str]:
    """Every seglib module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("seglib")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith("seglib"):
                continue
            for a in node.names:  # `from seglib.core import files` imports a module
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


def test_every_module_sits_in_a_layer() -> None:
    stray = [m for m in MODULES if m.count(".") >= 1 and m.split(".")[1] not in LAYERS
             and m not in ("seglib.__main__",)]
    assert stray == [], f"modules outside the layers {LAYERS}: {stray}"


def test_the_package_root_imports_nothing_of_its_own() -> None:
    assert imported_modules(PACKAGE / "__init__.py") == set()


def test_imports_only_go_down_the_layers() -> None:
    upward = []
    for name, path in MODULES.items():
        for target in imported_modules(path):
            if layer(target) > layer(name):
                upward.append(f"{name} imports {target}")
    assert upward == []


def test_the_layer_check_finds_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from seglib.course.figures import overlay\n")
    assert layer("seglib.masks.draw") < layer(next(iter(imported_modules(bad))))


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str]:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        state[n] = 2
        stack.pop()
        return []

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return []


def test_no_import_cycles_between_modules() -> None:
    graph = {name: {t for t in imported_modules(path) if t in MODULES and t != name}
             for name, path in MODULES.items()}
    for name in graph:  # a package's __init__ is imported with any of its modules
        graph[name] -= {p for p in graph[name] if name.startswith(p + ".")}
    assert _cycle(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{path.relative_to(ROOT)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
            for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]


@pytest.mark.parametrize("layer_name", LAYERS)
def test_no_function_over_60_lines(layer_name: str) -> None:
    too_long = [f for p in sorted((PACKAGE / layer_name).rglob("*.py"))
                for f in long_functions(p)]
    assert too_long == []


def _notebook_uses(path: Path) -> list[tuple[str, str]]:
    """``(module, name)`` for every ``alias.name`` a notebook's code reads from a seglib module
    it imports (``from seglib.x import y as alias``), and every ``from seglib.x import name``."""
    import importlib
    import json

    code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                     if c["cell_type"] == "code")
    code = "\n".join(ln for ln in code.splitlines() if not ln.startswith("%"))
    tree, aliases, uses = ast.parse(code), {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("seglib"):
            for a in node.names:
                target = f"{node.module}.{a.name}"
                if target in MODULES:
                    aliases[a.asname or a.name] = target
                else:
                    uses.append((node.module, a.name))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases):
            uses.append((aliases[node.value.id], node.attr))
    return [(m, n) for m, n in uses if not hasattr(importlib.import_module(m), n)]


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")),
                         ids=lambda p: p.stem)
def test_every_seglib_name_a_notebook_uses_exists(notebook: Path) -> None:
    assert _notebook_uses(notebook) == []
