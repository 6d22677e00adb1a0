"""The package layering, checked over the real import graph (every ``import`` in every module,
including the ones inside functions).

Each ``bridge`` subpackage says in its docstring what it may import; :data:`ALLOWED` is that
promise in one table. ``runtimes`` knows nothing of ``bridge``; ``store`` and ``render`` know
nothing of chat, the fleet or the app; only ``app`` wires everything; there is no import cycle
between modules or between packages; and no module grows past :data:`MAX_LINES`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAX_LINES = 400

LEAVES = frozenset({"errors", "aio"})
"""Modules directly under ``bridge/`` that every package may use (they import nothing)."""

ALLOWED: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "aio": frozenset(),
    "devtools": frozenset(),
    "config": frozenset(),
    "store": frozenset({"config"}),
    "render": frozenset(),
    "chat": frozenset({"config", "render"}),
    "fleet": frozenset({"config", "store"}),
    "hooks": frozenset({"config", "store"}),
    "mirror": frozenset({"config", "store", "render", "chat", "fleet"}),
    "lifecycle": frozenset({"config", "store", "fleet", "hooks", "mirror"}),
    "channel": frozenset({"config", "store", "render", "chat", "fleet", "lifecycle"}),
    "doctor": frozenset({"config", "store", "fleet", "hooks", "chat"}),
    "answers": frozenset({"config", "store", "chat", "hooks", "lifecycle", "channel", "render"}),
    "review": frozenset({"config", "store", "chat", "channel", "mirror"}),
    "cluster": frozenset({"config", "store", "chat"}),
    "ops": frozenset({"config"}),
    "app": frozenset(
        {"config", "store", "render", "chat", "fleet", "hooks", "mirror", "lifecycle"}
        | {"channel", "doctor", "devtools", "review", "cluster", "answers", "ops"}
    ),
    # Entry points: ``python -m bridge`` and the pre-split ``python -m bridge.cli``.
    "__main__": frozenset({"app"}),
    "cli": frozenset({"app"}),
}
RUNTIMES_FOR = {"render": frozenset({"runtimes.events"})}
"""Which ``runtimes`` modules a package may import; absent means any (devtools: none)."""


def modules() -> Iterator[tuple[str, Path]]:
    for root in ("bridge", "runtimes"):
        for path in sorted((REPO / root).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def imports_of(name: str, path: Path) -> set[str]:
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # ``from bridge.config import paths`` imports the module bridge.config.paths.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] in ("bridge", "runtimes")}


GRAPH: dict[str, set[str]] = {}
for _name, _path in modules():
    GRAPH[_name] = imports_of(_name, _path)
KNOWN = set(GRAPH)
for _name in GRAPH:
    GRAPH[_name] = {m for m in GRAPH[_name] if m in KNOWN and m != _name}


def package_of(module: str) -> str:
    """``bridge.chat.slack.backend`` -> ``chat``; ``bridge.errors`` -> ``errors``."""
    parts = module.split(".")
    if parts[0] == "runtimes":
        return "runtimes"
    return parts[1] if len(parts) > 1 else "bridge"


def test_every_package_is_in_the_table_and_documents_its_imports() -> None:
    for init in sorted((REPO / "bridge").glob("*/__init__.py")):
        package = init.parent.name
        assert package in ALLOWED, f"bridge/{package}/ is missing from ALLOWED in this test"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert doc, f"bridge/{package}/__init__.py needs a docstring: what lives here"
        if package != "devtools":
            assert "import" in doc.lower(), f"bridge/{package}/ docstring: say what it may import"


def test_runtimes_import_nothing_from_bridge() -> None:
    bad = {m: sorted(d for d in deps if d.startswith("bridge")) for m, deps in GRAPH.items()}
    bad = {m: deps for m, deps in bad.items() if m.startswith("runtimes") and deps}
    assert not bad, bad


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    wrong: list[str] = []
    for module, deps in GRAPH.items():
        if not module.startswith("bridge") or package_of(module) != package:
            continue
        for dep in deps:
            target = package_of(dep)
            if target == "runtimes":
                allowed_runtimes = RUNTIMES_FOR.get(package)
                if package == "devtools" or (
                    allowed_runtimes is not None and dep not in allowed_runtimes
                ):
                    wrong.append(f"{module} -> {dep}")
                continue
            if target in (package, "bridge") or target in LEAVES:
                continue
            if target not in ALLOWED[package]:
                wrong.append(f"{module} -> {dep}")
    assert not wrong, f"bridge/{package}/ may not import these:\n" + "\n".join(sorted(wrong))


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_between_modules() -> None:
    # A package's __init__ is not a dependency of its modules' imports here: they are docstrings.
    assert _cycle(GRAPH) is None, " -> ".join(_cycle(GRAPH) or [])


def test_no_import_cycle_between_packages() -> None:
    packages: dict[str, set[str]] = {}
    for module, deps in GRAPH.items():
        src = package_of(module)
        packages.setdefault(src, set()).update(package_of(d) for d in deps if package_of(d) != src)
    assert _cycle(packages) is None, " -> ".join(_cycle(packages) or [])


def test_package_inits_import_nothing() -> None:
    """Importing ``bridge.hooks.client`` (run by every hook call) must not pull a package in."""
    heavy = {m: deps for m, deps in GRAPH.items() if m.count(".") == 1 and deps and m in KNOWN}
    heavy = {
        m: d for m, d in heavy.items() if (REPO / m.replace(".", "/") / "__init__.py").exists()
    }
    assert not heavy, heavy


def test_no_module_over_the_size_limit() -> None:
    long = {
        str(path.relative_to(REPO)): n
        for _name, path in modules()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split these by job (limit {MAX_LINES} lines): {long}"
