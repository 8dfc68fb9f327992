"""Every template parses with the Bicep tree-sitter grammar: no ERROR and no MISSING node."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.bicep import INFRA, bicep_files, broken_copy, syntax_errors


def test_the_templates_are_there() -> None:
    names = {path.relative_to(INFRA).as_posix() for path in bicep_files(INFRA)}

    assert {"main.bicep", "modules/frontend.bicep", "modules/backend.bicep"} <= names


@pytest.mark.parametrize("path", bicep_files(INFRA), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_a_template_parses_cleanly(path: Path) -> None:
    assert syntax_errors(path) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("  name: 'cae-${token}'\n", "  name: 'cae-${token}\n"),  # an unterminated string
        ("frontendPrincipalId: frontendIdentity", "frontendPrincipalId frontendIdentity"),
        ("\n}\n\nmodule storage", "\n\nmodule storage"),  # a missing brace
    ],
    ids=["unterminated-string", "missing-colon", "missing-brace"],
)
def test_a_broken_template_is_caught(tmp_path: Path, old: str, new: str) -> None:
    broken = broken_copy(tmp_path, "main.bicep", old, new)

    assert syntax_errors(broken / "main.bicep") != []
