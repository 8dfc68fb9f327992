"""The images' inputs: the build context after .dockerignore, the locks, the base image, compose.

Docker cannot build here, so the context is computed with Docker's documented .dockerignore
rules (https://docs.docker.com/build/concepts/context/#dockerignore-files): patterns in order,
the last match wins, `!` re-includes, `**` spans folders, and a folder's pattern covers all in it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tools.azurite import PROJECT_ROOT

DOCKER = PROJECT_ROOT / "docker"
SERVICES = ("frontend", "backend")
_PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)", re.MULTILINE)


def _regex(pattern: str) -> re.Pattern[str]:
    out, index = "", 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out, index = out + "(?:.*/)?", index + 3
        elif pattern.startswith("**", index):
            out, index = out + ".*", index + 2
        else:
            char = pattern[index]
            out += {"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char))
            index += 1
    return re.compile(out)


class DockerIgnore:
    """The exclusion rules of one .dockerignore file."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, str, re.Pattern[str]]] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            keep = line.startswith("!")
            pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
            self.rules.append((keep, pattern, _regex(pattern)))

    def excludes(self, path: str) -> bool:
        """The file or folder at `path` (relative, with `/`) is left out of the context."""
        parts = path.split("/")
        candidates = ["/".join(parts[: end + 1]) for end in range(len(parts))]
        excluded = False
        for keep, _, regex in self.rules:
            if any(regex.fullmatch(candidate) for candidate in candidates):
                excluded = not keep
        return excluded

    def may_reinclude_under(self, folder: str) -> bool:
        """Some `!` rule could bring back a file below an excluded folder."""
        return any(keep and pattern.startswith(f"{folder}/") for keep, pattern, _ in self.rules)


def build_context(root: Path) -> list[str]:
    """The files `docker build` sends from `root`, after its .dockerignore."""
    rules = DockerIgnore((root / ".dockerignore").read_text(encoding="utf-8"))
    files: list[str] = []
    for folder, subfolders, names in os.walk(root, followlinks=False):
        relative = Path(folder).relative_to(root).as_posix()
        prefix = "" if relative == "." else f"{relative}/"
        subfolders[:] = [
            name
            for name in subfolders
            if not rules.excludes(prefix + name) or rules.may_reinclude_under(prefix + name)
        ]
        files += [prefix + name for name in names if not rules.excludes(prefix + name)]
    return sorted(files)


@pytest.fixture(scope="module")
def rules() -> DockerIgnore:
    return DockerIgnore((PROJECT_ROOT / ".dockerignore").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        # The examples of Docker's own documentation.
        ("*/temp*", "somedir/temporary.txt", True),
        ("*/temp*", "temp.txt", False),
        ("*/*/temp*", "somedir/subdir/temporary.txt", True),
        ("temp?", "tempa", True),
        ("**/*.go", "a/b/c.go", True),
        ("**/*.go", "c.go", True),
        ("*.md\n!README*.md\nREADME-secret.md", "README.md", False),
        ("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", True),
        ("*.md\n!README*.md\nREADME-secret.md", "notes.md", True),
        ("var", "var/azurite/data.json", True),
    ],
)
def test_the_matcher_follows_dockers_rules(patterns: str, path: str, excluded: bool) -> None:
    assert DockerIgnore(patterns).excludes(path) is excluded


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        "var/webhook-secret",
        "var/azurite/__queuestorage__/data",
        "var/telemetry.jsonl",
        ".venv/bin/python",
        "node_modules/.bin/azurite",
        ".git/config",
        "tests/conftest.py",
        "tools/devstack.py",
        "docs/operations.md",
        "infra/main.bicep",
        "backend/.env",
        "common/__pycache__/settings.cpython-311.pyc",
        "requirements/dev.txt",
        "package.json",
    ],
)
def test_secrets_state_tooling_and_tests_stay_out_of_the_context(
    rules: DockerIgnore, path: str
) -> None:
    assert rules.excludes(path)


def test_the_context_holds_what_the_images_copy_and_nothing_else() -> None:
    files = build_context(PROJECT_ROOT)

    top = {path.split("/")[0] for path in files}
    assert top <= {"common", "frontend", "backend", "requirements"}
    assert not [path for path in files if "__pycache__" in path or "/.env" in f"/{path}"]
    for service in SERVICES:
        dockerfile = (DOCKER / f"{service}.Dockerfile").read_text(encoding="utf-8")
        sources = re.findall(r"^COPY\s+(\S+)\s+\S+\s*$", dockerfile, re.MULTILINE)
        assert f"requirements/{service}.lock" in sources
        for source in sources:
            assert [path for path in files if path == source or path.startswith(source)], source


def test_both_images_start_from_the_same_base_pinned_by_digest() -> None:
    bases = {
        re.findall(r"^FROM\s+(\S+)", (DOCKER / f"{service}.Dockerfile").read_text(), re.MULTILINE)[
            0
        ]
        for service in SERVICES
    }

    [base] = bases
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", base)


@pytest.mark.parametrize("name", ["dev", "checkov", *SERVICES])
def test_each_lock_pins_every_requirement_with_hashes(name: str) -> None:
    wanted = (PROJECT_ROOT / "requirements" / f"{name}.txt").read_text(encoding="utf-8")
    lock = (PROJECT_ROOT / "requirements" / f"{name}.lock").read_text(encoding="utf-8")
    locked = {package.lower(): version for package, version in _PIN.findall(lock)}
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n", 2)[2])

    # Every direct pin of the .txt (and the files it includes) is locked at its version:
    # a pin changed without `make lock` fails here.
    for text in [wanted] + [
        (PROJECT_ROOT / "requirements" / included).read_text(encoding="utf-8")
        for included in re.findall(r"^-r\s+(\S+)", wanted, re.MULTILINE)
    ]:
        for package, version in _PIN.findall(text):
            name_only = re.sub(r"\[.*\]$", "", package).lower()  # extras lock as the package
            assert locked.get(name_only) == version, f"{package}: run `make lock`"
    # And every locked package, transitive ones included, carries its hashes
    # (a universal lock may pin one package twice, once per range of Python versions)
    assert len({entry.split("==")[0].lower() for entry in entries}) == len(locked)
    assert len(locked) > len(_PIN.findall(wanted))
    assert all("--hash=sha256:" in entry for entry in entries)


@pytest.mark.parametrize("service", SERVICES)
def test_images_and_make_install_install_the_locks_with_hashes_required(service: str) -> None:
    dockerfile = (DOCKER / f"{service}.Dockerfile").read_text(encoding="utf-8")
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")

    assert f"pip install --require-hashes --no-deps -r requirements/{service}.lock" in dockerfile
    assert "pip check" in dockerfile
    # Containers keep the default JSON logs; only `make run` asks for text.
    assert "LOG_FORMAT" not in dockerfile
    assert "--require-hashes --no-deps \\\n\t\t-r requirements/dev.lock" in makefile
    assert re.search(r"^lock: .*## ", makefile, re.MULTILINE)


def test_compose_waits_for_a_healthy_azurite_and_keeps_telemetry_on_a_volume() -> None:
    compose = (DOCKER / "compose.yaml").read_text(encoding="utf-8")
    azurite = compose.split("\n  azurite:\n", 1)[1].split("\n\n", 1)[0]

    assert "healthcheck:" in azurite
    assert compose.count("condition: service_healthy") == 2
    assert "- telemetry:/var/lib/github-telemetry" in compose
    assert re.search(r"^  telemetry:$", compose, re.MULTILINE)
    assert "BACKEND_TELEMETRY_FILE=/var/lib/github-telemetry/" in (
        DOCKER / "backend.Dockerfile"
    ).read_text(encoding="utf-8")
