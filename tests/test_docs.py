"""README.md and docs/: every relative link resolves, anchors included; the README stays short,
and its layout map matches the tree."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from collections.abc import Iterable, Iterator
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
# In the layout map, a line indented this far or further continues the description above it;
# any other line starts with the paths it names (`name.py`, `folder/`, or several, with ", ").
CONTINUATION_INDENT = 12
# What a walk of a checkout without git skips besides what .gitignore names.
NEVER_TRACKED = (".git",)


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


def layout_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the first fenced code block under the heading "Layout"."""
    lines = text.splitlines()
    titles = [_HEADING.match(line) for line in lines]
    heading = next((i for i, title in enumerate(titles) if title and title[1] == "Layout"), None)
    if heading is None:
        return []
    block: list[tuple[int, str]] = []
    fence = ""
    for number, line in enumerate(lines[heading + 1 :], start=heading + 2):
        match = _FENCE.match(line)
        if fence and match and match.group(1)[0] == fence[0]:
            return block
        if fence:
            block.append((number, line))
        elif match:
            fence = match.group(1)
        elif _HEADING.match(line):
            return []
    return block


def layout_paths(text: str) -> list[tuple[int, str]]:
    """(line number, path) for every folder (`x/`) and file the layout map names.

    Indentation nests a line under the folder named above it with two spaces less.
    """
    found: list[tuple[int, str]] = []
    folders: list[tuple[int, str]] = []  # (indent, path) of the folders enclosing the line
    for number, line in layout_lines(text):
        indent = len(line) - len(line.lstrip(" "))
        if not line.strip() or indent >= CONTINUATION_INDENT:
            continue
        while folders and folders[-1][0] >= indent:
            folders.pop()
        parent = folders[-1][1] if folders else ""
        names = [name.strip() for name in re.split(r"\s{2,}", line.strip())[0].split(",")]
        found += [(number, parent + name) for name in names]
        if len(names) == 1 and names[0].endswith("/"):
            folders.append((indent, parent + names[0]))
    return found


def missing_paths(readme: Path, root: Path) -> list[str]:
    """Describe each path of the layout map that is not in the tree below `root`."""
    problems: list[str] = []
    for number, path in layout_paths(readme.read_text(encoding="utf-8")):
        exists = (root / path).is_dir() if path.endswith("/") else (root / path).is_file()
        if not exists:
            kind = "folder" if path.endswith("/") else "file"
            problems.append(f"{readme.name}:{number}: {path}: no such {kind}")
    return problems


def unmapped_folders(readme: Path, folders: Iterable[str]) -> list[str]:
    """The top-level folders that the layout map leaves out, sorted."""
    named = {path for _, path in layout_paths(readme.read_text(encoding="utf-8"))}
    return sorted(folder for folder in folders if f"{folder}/" not in named)


def tracked_folders(root: Path) -> set[str]:
    """The top-level folders holding a file git tracks; without git, those .gitignore keeps."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True, timeout=30
        ).stdout.decode("utf-8")
    except (OSError, subprocess.SubprocessError):  # not a git checkout, or no git
        return walked_folders(root)
    return {path.split("/", 1)[0] for path in listed.split("\0") if "/" in path}


def walked_folders(root: Path) -> set[str]:
    """The top-level folders below `root` that .gitignore does not name, `.git` aside."""
    gitignore = root / ".gitignore"
    lines = gitignore.read_text(encoding="utf-8").splitlines() if gitignore.is_file() else []
    patterns = [line.strip().strip("/") for line in lines if line.strip()]
    ignored = [*NEVER_TRACKED, *(pattern for pattern in patterns if pattern[0] not in "#!")]
    return {
        path.name
        for path in root.iterdir()
        if path.is_dir() and not any(fnmatch.fnmatch(path.name, pattern) for pattern in ignored)
    }


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


def test_the_layout_map_names_the_tree_down_to_files() -> None:
    # An unreadable map would leave the two checks below nothing to check.
    named = {path for _, path in layout_paths(README.read_text(encoding="utf-8"))}

    assert {"frontend/batching.py", "backend/idempotency/transport.py", ".ci/"} <= named


def test_every_path_in_the_layout_map_exists() -> None:
    assert missing_paths(README, ROOT) == []


def test_every_tracked_top_level_folder_is_in_the_layout_map() -> None:
    folders = tracked_folders(ROOT)

    assert {".ci", "backend", "tests"} <= folders
    assert not folders & {".git", ".venv", "node_modules", "var"}
    assert unmapped_folders(README, folders) == []


def test_the_map_checker_reports_missing_paths_and_unmapped_folders(tmp_path: Path) -> None:
    # Given a small tree and a README whose map gets some of it wrong
    for path in ("app/main.py", "app/parts/one.py", "app/parts/two.py", "lib/util.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Readme\n\n## Layout\n\n```\n"
        "app/          the app\n"
        "  main.py     its entry point\n"
        "  gone.py     renamed since\n"
        "  parts/      its parts\n"
        "    one.py, two.py, three.py\n"
        "              numbered parts: this/ line is prose\n"
        "  main.py/    a file named as a folder\n"
        "old/          removed since\n"
        "```\n\n```\nnot/    a second block is not the map\n```\n",
        encoding="utf-8",
    )
    # When it is checked against the tree
    named = [path for _, path in layout_paths(readme.read_text(encoding="utf-8"))]
    problems = missing_paths(readme, tmp_path)
    left_out = unmapped_folders(readme, walked_folders(tmp_path))
    # Then nesting follows the indentation, and each wrong line and left-out folder is reported
    assert named == [
        "app/",
        "app/main.py",
        "app/gone.py",
        "app/parts/",
        "app/parts/one.py",
        "app/parts/two.py",
        "app/parts/three.py",
        "app/main.py/",
        "old/",
    ]
    assert problems == [
        "README.md:8: app/gone.py: no such file",
        "README.md:10: app/parts/three.py: no such file",
        "README.md:12: app/main.py/: no such folder",
        "README.md:13: old/: no such folder",
    ]
    assert left_out == ["lib"]


def test_a_readme_without_a_layout_map_names_nothing() -> None:
    assert layout_paths("# Readme\n\n## Layout\n\nProse only.\n\n## Next\n\n```\nx/\n```\n") == []


def test_walking_without_git_skips_what_gitignore_names(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("# local\n.venv\nvar/\n*.egg-info/\n", encoding="utf-8")
    for folder in (".ci", ".git", ".venv", "var", "pkg.egg-info", "src"):
        (tmp_path / folder).mkdir()
    (tmp_path / "notes.txt").write_text("", encoding="utf-8")

    assert walked_folders(tmp_path) == {".ci", "src"}
