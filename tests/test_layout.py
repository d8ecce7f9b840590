"""The package's layout holds its architecture (issue 25): no module imports another in a circle,
and each part imports only the parts below it, as its docstring says.

Imports are read with ``ast``, not by importing. Every import counts, at module level or inside a
function: a deferred import keeps start-up light but is still a dependency, and a circle of them
means two modules that cannot be understood (or moved) one without the other; the two circles
this test was written for (``experiments.spec`` -> ``cli``, ``actors.workers`` ->
``training.collect``) were both function-level. Imports under ``if TYPE_CHECKING:`` are left out:
they are never executed and only name a type for an annotation.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = "contrastive_rl"

# Which parts of the package each part may import: the layering, bottom to top. A part is a
# top-level module or a subpackage; ``__init__`` is the package's own public surface. Each
# subpackage's docstring states its row (a line "May import: ..."), checked below.
LAYERS: dict[str, set[str]] = {
    "errors": set(),
    "types": set(),
    "version": set(),
    "envs": set(),
    "presets": {"envs"},
    "validation": {"envs", "errors", "presets"},
    "config": {"envs", "errors", "presets", "validation"},
    "flags": {"config", "presets"},
    "datasets": {"envs", "errors"},
    "runs": {"config", "envs", "errors", "presets", "version"},
    "agent": {"config", "envs", "errors", "presets", "types"},
    "actors": {"agent", "config", "envs", "errors", "presets", "types"},
    "training": {
        *("actors", "agent", "config", "datasets", "envs"),
        *("errors", "presets", "runs", "types"),
    },
    "api": {"agent", "config", "envs", "errors", "presets", "runs", "training"},
    "experiments": {
        *("api", "config", "datasets", "envs", "errors"),
        *("flags", "presets", "runs", "version"),
    },
    "cli": {
        *("agent", "api", "config", "datasets", "envs", "errors", "experiments"),
        *("flags", "presets", "runs", "training", "version"),
    },
    "__init__": {"api", "config", "envs", "presets", "version"},
}


def module_names(root: pathlib.Path, package: str) -> dict[str, pathlib.Path]:
    """Dotted name -> file of every module of ``package`` under ``root``."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.If) and _is_type_checking(node):
            children = list(node.orelse)
        stack.extend(children)
    return found


def import_graph(root: pathlib.Path, package: str) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``from a import b`` is module ``a.b`` when
    that is a module, else ``a``; a parent package is not counted for importing its child)."""
    modules = module_names(root, package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
                continue
            base = node.module or ""
            if node.level:
                here = name.split(".") if is_package else name.split(".")[:-1]
                here = here[: len(here) - node.level + 1]
                base = ".".join(here + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.add(sub if sub in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle ``[a, b, ..., a]``, or None (depth-first search, colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_module_imports_another_in_a_circle():
    circle = find_circle(import_graph(ROOT, PACKAGE))
    assert circle is None, "import circle: " + " -> ".join(circle)


def test_the_circle_finder_finds_a_function_level_circle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import g\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    (pkg / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n"
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.d"] == set()  # annotations only: not a dependency
    circle = find_circle(graph)
    assert circle is not None and set(circle) == {"pkg.a", "pkg.sub.b", "pkg.c"}
    (pkg / "c.py").write_text("")
    assert find_circle(import_graph(tmp_path, "pkg")) is None


def test_every_part_is_in_the_layering_and_has_a_docstring():
    package = ROOT / PACKAGE
    parts = {p.stem for p in package.glob("*.py")} - {"__init__"}
    parts |= {p.parent.name for p in package.glob("*/__init__.py")}
    assert parts | {"__init__"} == set(LAYERS)
    for path in [*package.glob("*.py"), *package.glob("*/*.py")]:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc and doc.strip(), f"{path.relative_to(ROOT)} does not say what it is for"


def test_the_layering_has_no_circle():
    assert find_circle({part: set(allowed) for part, allowed in LAYERS.items()}) is None


def test_each_part_imports_only_what_the_layering_allows():
    wrong = []
    for module, targets in import_graph(ROOT, PACKAGE).items():
        here = part_of(module)
        for target in targets:
            there = part_of(target)
            if there != here and there not in LAYERS[here]:
                wrong.append(f"{module} imports {target} ({here} may import: {LAYERS[here]})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    "package", sorted(p.parent.name for p in (ROOT / PACKAGE).glob("*/__init__.py"))
)
def test_each_package_docstring_states_its_row_of_the_layering(package):
    doc = ast.get_docstring(ast.parse((ROOT / PACKAGE / package / "__init__.py").read_text()))
    lines = [line for line in (doc or "").splitlines() if line.startswith("May import:")]
    assert len(lines) == 1, f"{package}/__init__.py: no 'May import:' line in its docstring"
    text = lines[0].removeprefix("May import:").strip().rstrip(".")
    stated = set() if text.startswith("nothing") else {t.strip() for t in text.split(",")}
    assert stated == LAYERS[package]
