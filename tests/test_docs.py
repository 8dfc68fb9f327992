"""README.md and docs/: every relative link resolves, anchors included; the README stays short."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 250

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_CODE_SPAN = re.compile(r"(`+).*?\1")
# [text](target) and ![alt](target), with an optional "title"; the target may sit in <...>.
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield (line number, line) for the lines outside fenced code blocks."""
    fence = ""
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line)
        if fence:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = ""
            continue
        if match:
            fence = match.group(1)
            continue
        yield number, line


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    kept = "".join(ch for ch in text.lower() if ch.isalnum() or ch in "-_ ")
    return kept.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown text; repeated headings get -1, -2, … as on GitHub."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for _, line in prose_lines(text):
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def link_targets(text: str) -> Iterator[tuple[int, str]]:
    """Yield (line number, target) for every inline and reference link outside code."""
    for number, line in prose_lines(text):
        prose = _CODE_SPAN.sub("", line)
        for match in _INLINE_LINK.finditer(prose):
            yield number, match.group(1)
        reference = _REFERENCE.match(prose)
        if reference:
            yield number, reference.group(1)


def broken_links(path: Path, root: Path) -> list[str]:
    """Describe each relative link in `path` whose file, or heading, does not exist under `root`."""
    problems: list[str] = []
    text = path.read_text(encoding="utf-8")
    for number, target in link_targets(text):
        if not target or _SCHEME.match(target):
            continue
        where = f"{path.name}:{number}: {target}"
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / unquote(file_part)).resolve() if file_part else path.resolve()
        if not resolved.is_relative_to(root.resolve()):
            problems.append(f"{where}: points outside the repository")
        elif not resolved.exists():
            problems.append(f"{where}: no such file")
        elif anchor and resolved.suffix == ".md":
            if unquote(anchor) not in anchors(resolved.read_text(encoding="utf-8")):
                problems.append(f"{where}: no heading with that anchor")
    return problems


def documents() -> list[Path]:
    """The README and every page of docs/."""
    return [README, *sorted(DOCS.glob("*.md"))]


def test_readme_is_at_most_250_lines() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES


@pytest.mark.parametrize("document", documents(), ids=lambda path: path.name)
def test_every_relative_link_resolves(document: Path) -> None:
    assert broken_links(document, ROOT) == []


def test_every_page_of_docs_is_linked_from_the_readme() -> None:
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for _, target in link_targets(README.read_text(encoding="utf-8"))
        if not _SCHEME.match(target)
    }
    assert [page.name for page in sorted(DOCS.glob("*.md")) if page.resolve() not in linked] == []


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("Counted once: the idempotency ledger", "counted-once-the-idempotency-ledger"),
        ("Benchmark (`make bench`)", "benchmark-make-bench"),
        ("The queue message (envelope, version 1)", "the-queue-message-envelope-version-1"),
        ("One run attempt's tree", "one-run-attempts-tree"),
        ("[Configuration](docs/configuration.md) and `.env`", "configuration-and-env"),
        ("Why the lease is 2 × the timeout", "why-the-lease-is-2--the-timeout"),
        ("LEDGER_LEASE_SECONDS", "ledger_lease_seconds"),
    ],
)
def test_slug_follows_github(heading: str, expected: str) -> None:
    assert slug(heading) == expected


def test_repeated_headings_get_numbered_anchors_and_code_blocks_have_none() -> None:
    text = "# Title\n\n## Limits\n\n## Limits\n\n```bash\n# not a heading\n```\n"
    assert anchors(text) == {"title", "limits", "limits-1"}


def test_checker_reports_broken_links_and_anchors(tmp_path: Path) -> None:
    # Given a small tree: a README linking into docs/, well and badly
    (tmp_path / "outside.md").write_text("# Outside\n", encoding="utf-8")
    root = tmp_path / "repo"
    root.mkdir()
    (root / "docs").mkdir()
    (root / "docs" / "page.md").write_text("# Page\n\n## Cost and limits\n", encoding="utf-8")
    readme = root / "README.md"
    readme.write_text(
        "# Readme\n\n"
        "[fine](docs/page.md) [fine anchor](docs/page.md#cost-and-limits) [here](#readme)\n"
        "[web](https://example.com/x.md) `[in code](missing.md)`\n\n"
        "```\n[in a block](missing.md)\n```\n\n"
        "[gone](docs/missing.md)\n"
        "[bad anchor](docs/page.md#costs)\n"
        "[bad local anchor](#nowhere)\n"
        "[escapes](../outside.md)\n"
        "[ref]: docs/also-missing.md\n",
        encoding="utf-8",
    )
    # When it is checked
    problems = broken_links(readme, root)
    # Then exactly the broken links are reported, with their lines
    assert problems == [
        "README.md:10: docs/missing.md: no such file",
        "README.md:11: docs/page.md#costs: no heading with that anchor",
        "README.md:12: #nowhere: no heading with that anchor",
        "README.md:13: ../outside.md: points outside the repository",
        "README.md:14: docs/also-missing.md: no such file",
    ]
