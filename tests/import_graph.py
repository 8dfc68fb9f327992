"""The project's import rules, checked over the source with `ast`: rooms, the pure core, cycles.

Every import statement counts, wherever it stands: at module level, inside a function, or
under `if TYPE_CHECKING:` (a type-only import is still a dependency a reader must follow).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

# The rooms walked, and the rooms each may not import (arrows point one way).
ROOMS = ("common", "frontend", "backend", "tools")
PRODUCT = ("common", "frontend", "backend")
FORBIDDEN: Mapping[str, frozenset[str]] = {
    "common": frozenset({"frontend", "backend", "tools", "tests"}),
    "frontend": frozenset({"backend", "tools", "tests"}),
    "backend": frozenset({"frontend", "tools", "tests"}),
    "tools": frozenset({"tests"}),
}

# The pure core (a package name covers its modules), and what it may not reach, even through
# another product module: web frameworks, servers, cloud SDKs and HTTP clients.
PURE = (
    "frontend.signature",
    "frontend.delivery",
    "frontend.schemas",
    "frontend.framing",
    "common.envelope",
    "common.reduction",
    "common.json_limits",
    "backend.telemetry",
)
IO_PACKAGES = frozenset({"flask", "werkzeug", "gunicorn", "azure", "opencensus", "requests"})


@dataclass(frozen=True)
class Import:
    """One imported name, resolved to an absolute dotted name, and where it stands."""

    importer: str
    target: str
    path: Path
    line: int


def module_name(root: Path, path: Path) -> str:
    """The dotted name of the module at `path` below `root` (a package's is its folder's)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(root: Path, rooms: Iterable[str] = ROOMS) -> dict[str, Path]:
    """Every module of `rooms` below `root`, by dotted name."""
    return {
        module_name(root, path): path
        for room in rooms
        for path in sorted((root / room).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def imports_of(name: str, path: Path, modules: Mapping[str, Path]) -> Iterator[Import]:
    """The imports in one module's source, relative ones made absolute.

    `from package import name` names the submodule `package.name` when there is one.
    """
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(name, is_package, node.level, node.module)
            submodules = (f"{base}.{alias.name}" for alias in node.names)
            targets = [submodule if submodule in modules else base for submodule in submodules]
        else:
            continue
        for target in dict.fromkeys(targets):
            yield Import(name, target, path, node.lineno)


def _absolute(name: str, is_package: bool, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    package = name.split(".") if is_package else name.split(".")[:-1]
    anchor = package[: len(package) - (level - 1)]
    return ".".join([*anchor, module] if module else anchor)


def all_imports(root: Path, rooms: Iterable[str] = ROOMS) -> list[Import]:
    """Every import of every module in `rooms` below `root`."""
    modules = find_modules(root, rooms)
    return [found for name, path in modules.items() for found in imports_of(name, path, modules)]


def room_violations(root: Path, imports: Iterable[Import]) -> list[str]:
    """One line per import that points against the arrows between rooms."""
    found = []
    for imported in imports:
        room, target_room = _top(imported.importer), _top(imported.target)
        if target_room in FORBIDDEN.get(room, frozenset()):
            found.append(f"{_where(root, imported)}: {room} may not import {target_room}")
    return found


def purity_violations(root: Path, imports: Iterable[Import]) -> list[str]:
    """One line per pure module that reaches an I/O package, directly or through product code."""
    by_importer: dict[str, list[Import]] = {}
    for imported in imports:
        by_importer.setdefault(imported.importer, []).append(imported)
    found = []
    for module in sorted(by_importer):
        if not is_pure(module):
            continue
        for chain in _io_chains(module, by_importer):
            route = " -> ".join(step.target for step in chain)
            found.append(f"{_where(root, chain[0])}: pure {module} reaches {route}")
    return found


def is_pure(module: str) -> bool:
    """Tell whether `module` belongs to the pure core."""
    return any(module == pure or module.startswith(pure + ".") for pure in PURE)


def _io_chains(start: str, by_importer: Mapping[str, list[Import]]) -> list[list[Import]]:
    """The shortest import chain from `start` to each I/O package it reaches."""
    chains: list[list[Import]] = []
    seen = {start}
    frontier: list[list[Import]] = [[step] for step in by_importer.get(start, [])]
    while frontier:
        following: list[list[Import]] = []
        for chain in frontier:
            target = chain[-1].target
            if _top(target) in IO_PACKAGES:
                chains.append(chain)
            elif target not in seen and _top(target) in PRODUCT:
                seen.add(target)
                following.extend([*chain, step] for step in by_importer.get(target, []))
        frontier = following
    return chains


def cycles(imports: Iterable[Import], rooms: Iterable[str] = PRODUCT) -> list[list[str]]:
    """Each group of modules of `rooms` that import one another in a circle, sorted."""
    walked = set(rooms)
    graph: dict[str, set[str]] = {}
    for imported in imports:
        if _top(imported.importer) in walked and _top(imported.target) in walked:
            if imported.target != imported.importer:
                graph.setdefault(imported.importer, set()).add(imported.target)
    return sorted(sorted(group) for group in _strongly_connected(graph) if len(group) > 1)


def _strongly_connected(graph: Mapping[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative so a deep graph cannot exhaust the stack."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, ())))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _where(root: Path, imported: Import) -> str:
    relative = imported.path.relative_to(root).as_posix()
    return f"{relative}:{imported.line}: {imported.importer} imports {imported.target}"
