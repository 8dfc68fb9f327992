"""The layout holds: arrows between rooms point one way, the pure core does no I/O, no import
cycles, and no Python file is too long to read whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.import_graph import (
    IO_PACKAGES,
    PURE,
    ROOMS,
    all_imports,
    cycles,
    find_modules,
    is_pure,
    purity_violations,
    room_violations,
)

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE_LINES = 400
# Folders that hold no source of ours: installed packages, caches, run output, git itself.
NOT_SOURCE = frozenset({".venv", "node_modules", "var", "__pycache__"})


def long_files(root: Path, limit: int = MAX_FILE_LINES) -> list[str]:
    """Each Python file below `root` with more than `limit` lines, and its count."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(
            name for name in subfolders if name not in NOT_SOURCE and not name.startswith(".")
        )
        for name in sorted(files):
            if name.endswith(".py"):
                path = Path(folder, name)
                with path.open("rb") as source:
                    count = sum(1 for _ in source)
                if count > limit:
                    found.append(f"{path.relative_to(root).as_posix()}: {count} lines")
    return found


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write `files` (path: source) below `root`, with the packages' `__init__.py`."""
    for relative, source in files.items():
        path = root / relative
        for package in [path.parent, *path.parent.parents]:
            if package == root:
                break
            package.mkdir(parents=True, exist_ok=True)
            (package / "__init__.py").touch()
        path.write_text(source, encoding="utf-8")
    return root


# The real tree.


def test_the_walk_covers_every_room() -> None:
    modules = find_modules(ROOT)

    assert {name.split(".")[0] for name in modules} == set(ROOMS)
    assert {"frontend.delivery", "backend.telemetry.mapping", "tools.demo"} <= set(modules)


def test_every_module_named_pure_exists() -> None:
    # A renamed module would otherwise leave the purity rule checking nothing.
    assert set(PURE) <= set(find_modules(ROOT))


def test_arrows_between_rooms_point_one_way() -> None:
    assert room_violations(ROOT, all_imports(ROOT)) == []


def test_the_pure_core_reaches_no_web_server_cloud_or_http_package() -> None:
    assert purity_violations(ROOT, all_imports(ROOT)) == []


def test_product_modules_import_no_cycle() -> None:
    assert cycles(all_imports(ROOT)) == []


def test_no_python_file_is_over_400_lines() -> None:
    assert long_files(ROOT) == []


# Each rule can fail: the same checks on small trees written for the purpose.


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"common/util.py": "from frontend.views import answer\n"},
            "common/util.py:1: common.util imports frontend.views: common may not import frontend",
        ),
        (
            {"common/util.py": "def load():\n    import backend.worker\n"},
            "common/util.py:2: common.util imports backend.worker: common may not import backend",
        ),
        (
            {"common/util.py": "from tools import demo\n"},
            "common/util.py:1: common.util imports tools: common may not import tools",
        ),
        (
            {"frontend/app.py": "import backend.pool\n"},
            "frontend/app.py:1: frontend.app imports backend.pool: frontend may not import backend",
        ),
        (
            {
                "backend/worker.py": (
                    "from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n"
                    "    from frontend.delivery import Route\n"
                )
            },
            "backend/worker.py:3: backend.worker imports frontend.delivery: "
            "backend may not import frontend",
        ),
        (
            {"frontend/app.py": "from tools.devstack import run\n"},
            "frontend/app.py:1: frontend.app imports tools.devstack: frontend may not import tools",
        ),
        (
            {"backend/pool.py": "def fixture():\n    from tests.payloads import job\n"},
            "backend/pool.py:2: backend.pool imports tests.payloads: backend may not import tests",
        ),
        (
            {"tools/bench/payload.py": "from tests.payloads import JOB_ID\n"},
            "tools/bench/payload.py:1: tools.bench.payload imports tests.payloads: "
            "tools may not import tests",
        ),
    ],
    ids=[
        "common-frontend",
        "common-backend-in-function",
        "common-tools",
        "frontend-backend",
        "backend-frontend-type-only",
        "frontend-tools",
        "backend-tests",
        "tools-tests",
    ],
)
def test_an_import_against_the_arrows_is_reported(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    root = write_tree(tmp_path, files)

    assert room_violations(root, all_imports(root)) == [expected]


def test_imports_along_the_arrows_are_allowed(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "common/util.py": "import json\n",
            "frontend/app.py": "from common.util import x\nimport flask\n",
            "backend/worker.py": "from common import util\n",
            "tools/demo.py": "import backend.worker\nimport frontend.app\nimport common.util\n",
        },
    )

    assert room_violations(root, all_imports(root)) == []


@pytest.mark.parametrize("package", sorted(IO_PACKAGES))
def test_a_pure_module_importing_an_io_package_is_reported(tmp_path: Path, package: str) -> None:
    root = write_tree(tmp_path, {"frontend/signature.py": f"import {package}.client\n"})

    assert purity_violations(root, all_imports(root)) == [
        f"frontend/signature.py:1: frontend.signature imports {package}.client: "
        f"pure frontend.signature reaches {package}.client"
    ]


def test_a_pure_module_reaching_an_io_package_through_product_code_is_reported(
    tmp_path: Path,
) -> None:
    root = write_tree(
        tmp_path,
        {
            "backend/telemetry/jobs.py": "from ..sinks import base\n",
            "backend/sinks/base.py": "def send():\n    from azure.core import exceptions\n",
        },
    )

    assert purity_violations(root, all_imports(root)) == [
        "backend/telemetry/jobs.py:1: backend.telemetry.jobs imports backend.sinks.base: "
        "pure backend.telemetry.jobs reaches backend.sinks.base -> azure.core"
    ]


def test_modules_outside_the_pure_core_may_do_io(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "frontend/views.py": "import flask\nfrom frontend import delivery\n",
            "frontend/delivery.py": "from marshmallow import Schema\n",
        },
    )

    assert purity_violations(root, all_imports(root)) == []


@pytest.mark.parametrize(
    ("module", "pure"),
    [
        ("backend.telemetry", True),
        ("backend.telemetry.steps", True),
        ("common.envelope", True),
        ("backend.telemetryx", False),
        ("common.azure_queue", False),
        ("frontend.views", False),
    ],
)
def test_the_pure_core_is_named_by_module_and_package(module: str, pure: bool) -> None:
    assert is_pure(module) is pure


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {
                "backend/telemetry/jobs.py": "from backend.telemetry import steps\n",
                "backend/telemetry/steps.py": (
                    "from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n"
                    "    from backend.telemetry.jobs import JobContext\n"
                ),
            },
            [["backend.telemetry.jobs", "backend.telemetry.steps"]],
        ),
        (
            {
                "common/a.py": "from . import b\n",
                "common/b.py": "def later():\n    from .c import x\n",
                "common/c.py": "from common.a import y\n",
                "common/d.py": "from common import a\n",
            },
            [["common.a", "common.b", "common.c"]],
        ),
        (
            {"frontend/app.py": "import frontend.app\n"},
            [],
        ),
    ],
    ids=["type-only-pair", "relative-and-function-level-triangle", "self-import"],
)
def test_an_import_cycle_is_reported(
    tmp_path: Path, files: dict[str, str], expected: list[list[str]]
) -> None:
    root = write_tree(tmp_path, files)

    assert cycles(all_imports(root)) == expected


def test_relative_imports_resolve_from_the_module_or_the_package(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "backend/idempotency/__init__.py": "from .table import TableLedger\n",
            "backend/idempotency/table.py": "from . import layout\nfrom ..outcome import Outcome\n",
            "backend/idempotency/layout.py": "",
            "backend/outcome.py": "",
        },
    )

    found = {(found.importer, found.target) for found in all_imports(root)}

    assert found == {
        ("backend.idempotency", "backend.idempotency.table"),
        ("backend.idempotency.table", "backend.idempotency.layout"),
        ("backend.idempotency.table", "backend.outcome"),
    }


def test_a_file_over_the_limit_is_reported_and_tooling_folders_are_not_walked(
    tmp_path: Path,
) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "long.py").write_text("x = 1\n" * 401)
    (tmp_path / "tests" / "full.py").write_text("x = 1\n" * 400)
    for folder in (".venv", "node_modules"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "vendored.py").write_text("x = 1\n" * 1000)

    assert long_files(tmp_path) == ["tests/long.py: 401 lines"]
