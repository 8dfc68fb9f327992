"""Read the Bicep templates offline: tree-sitter for syntax, pycep-parser for structure.

No Bicep compiler is reachable from where the tests run, so syntax is checked with the
tree-sitter grammar and the templates' content with pycep-parser's JSON-shaped tree. In that
tree an identifier and a string literal both read as plain strings ('queue' may be either).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import tree_sitter_bicep
from pycep import BicepParser
from tree_sitter import Language, Node, Parser

from tools.azurite import PROJECT_ROOT

INFRA = PROJECT_ROOT / "infra"


def bicep_files(root: Path) -> list[Path]:
    """Every template under `root`, in a stable order."""
    return sorted(root.rglob("*.bicep"))


@cache
def _parser() -> Parser:
    return Parser(Language(tree_sitter_bicep.language()))


def _broken_nodes(node: Node) -> Iterator[Node]:
    if node.type == "ERROR" or node.is_missing:
        yield node
    for child in node.children:
        yield from _broken_nodes(child)


def syntax_errors(path: Path) -> list[str]:
    """Where tree-sitter found an ERROR or a MISSING node in `path`, as `file:line:col kind`."""
    tree = _parser().parse(path.read_bytes())
    return [
        f"{path.name}:{node.start_point[0] + 1}:{node.start_point[1] + 1} "
        f"{'missing ' + node.type if node.is_missing else 'error'}"
        for node in _broken_nodes(tree.root_node)
    ]


def parse(path: Path) -> dict[str, Any]:
    """pycep-parser's tree of one template."""
    return dict(BicepParser().parse(file_path=path))


@dataclass(frozen=True)
class Resource:
    """One resource declaration: where, its symbol, type, API version and body."""

    file: str
    symbol: str
    type: str
    api_version: str
    existing: bool
    body: dict[str, Any]
    decorators: list[Any]


def _body(config: dict[str, Any]) -> dict[str, Any]:
    """A conditional declaration (`= if (...) {...}`) nests its body one level down."""
    return dict(config["config"]) if "condition" in config else config


def resources(root: Path) -> list[Resource]:
    """Every resource declared in the templates under `root`."""
    found = []
    for path in bicep_files(root):
        for symbol, resource in (parse(path).get("resources") or {}).items():
            found.append(
                Resource(
                    file=str(path.relative_to(root)),
                    symbol=symbol,
                    type=resource["type"],
                    api_version=resource["api_version"],
                    existing=bool(resource["existing"]),
                    body=_body(resource["config"]),
                    decorators=resource["decorators"],
                )
            )
    return found


def declared(root: Path, resource_type: str) -> list[Resource]:
    """The resources of `resource_type` that the templates create (not `existing` ones)."""
    return [r for r in resources(root) if r.type == resource_type and not r.existing]


def accessor(value: Any) -> tuple[str, str] | None:
    """(`a`, `b`) for an expression `a.b`, else None."""
    if isinstance(value, dict) and "operator" in value:
        operator = value["operator"]
        if operator.get("type") == "property_accessor":
            operands = operator["operands"]
            return str(operands["operand_1"]), str(operands["operand_2"])
    return None


def function_call(value: Any, name: str) -> dict[str, Any] | None:
    """The parameters of a call to `name(...)`, or None."""
    if isinstance(value, dict) and "function" in value and value["function"]["type"] == name:
        return dict(value["function"]["parameters"])
    return None


def broken_copy(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """A copy of `infra/` with `old` replaced by `new` in `file`; fails if `old` is absent."""
    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy)
    target = copy / file
    text = target.read_text(encoding="utf-8")
    assert old in text, f"{file} no longer contains {old!r}"
    target.write_text(text.replace(old, new), encoding="utf-8")
    return copy
