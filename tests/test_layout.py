"""The package layout is the pipeline: each room imports only the rooms before it.

docs/architecture.md draws the order; each package's docstring says what it
holds. A new import that climbs back up (say ``plan`` importing ``run``) makes
the walk of one chatbot impossible to read from the folders, so it fails here
with the file and the line. Imports under ``if TYPE_CHECKING:`` are
annotations only and do not count.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import wizchat_management
import wizsync

# Low to high. A room may import any room before it, never one after it.
ORDER = (
    "engine",  # requests, retries, rate limits: knows nothing of manifests or runs
    "journal",  # SQLite journal, the run lock, the recorder of engine events
    "manifest",  # the manifest file: model, loader, targets, selectors
    "render",  # templates, sources, secrets → one desired document per chatbot
    "fleet",  # session, pinned targets, live configs + rendered documents
    "plan",  # server-side dry-runs, plan files
    "apply",  # ordered batches, write-ahead journaling, failure budget
    "rollback",  # documents that restore what a run changed
    "report",  # human, JSON and markdown views of results
    "run",  # the orchestration: one lifecycle for plan, apply, resume, rollback
    "export",  # live configs → files
    "demo",  # the main job end to end on the embedded emulator
    "commands",  # thin click commands
    "cli",  # the entry point
)
ROOT = Path(wizsync.__file__).parent


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    return skip


def _imports(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, absolute module) of every run-time ``from … import`` in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or id(node) in skip:
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            found.append((node.lineno, ".".join(base + ([node.module] if node.module else []))))
        else:
            found.append((node.lineno, node.module or ""))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and id(node) not in skip:
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def _room(path: Path) -> str:
    return path.relative_to(ROOT).with_suffix("").parts[0]


def _package(path: Path) -> str:
    # A module's package, and an __init__'s own package, are both its folder.
    return ".".join(("wizsync",) + path.relative_to(ROOT).parent.parts)


def test_every_room_of_wizsync_is_in_the_order():
    rooms = {_room(p) for p in ROOT.rglob("*.py") if p.name != "__init__.py" or p.parent != ROOT}
    assert rooms == set(ORDER), f"rooms not placed in ORDER: {sorted(rooms - set(ORDER))}"


def test_no_room_imports_a_room_after_it():
    climbs = []
    for path in sorted(ROOT.rglob("*.py")):
        if path.parent == ROOT and path.name == "__init__.py":
            continue
        room = _room(path)
        for line, module in _imports(path, _package(path)):
            if not module.startswith("wizsync."):
                continue
            target = module.split(".")[1]
            if target != room and target in ORDER and ORDER.index(target) > ORDER.index(room):
                climbs.append(f"{path.relative_to(ROOT.parent)}:{line}: {room} imports {module}")
    assert not climbs, "imports that climb back up the pipeline:\n" + "\n".join(climbs)


def test_the_sdk_never_imports_the_tool():
    sdk = Path(wizchat_management.__file__).parent
    bad = [
        f"{p.relative_to(sdk.parent)}:{line}: {m}"
        for p in sorted(sdk.rglob("*.py"))
        for line, m in _imports(p, "wizchat_management")
        if m == "wizsync" or m.startswith("wizsync.")
    ]
    assert not bad, "the SDK imports the tool:\n" + "\n".join(bad)


def test_the_architecture_page_places_every_room_and_names_only_real_files():
    page = (ROOT.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z_]+)(?:/|\.py)` \|", page, re.M)
    assert rows == list(ORDER), "docs/architecture.md's table must list the rooms in ORDER"
    cited = set(re.findall(r"`([a-z_/]+\.py)`", page))
    missing = sorted(c for c in cited if not (ROOT / c).exists() and not (ROOT.parent / c).exists())
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


def test_every_source_file_the_docs_name_exists():
    docs = [ROOT.parent / "README.md", *sorted((ROOT.parent / "docs").glob("*.md"))]
    missing = [
        f"{page.name}: {cited}"
        for page in docs
        for cited in sorted(set(re.findall(r"\b((?:wizsync|wizchat_management|tests|scripts|bench)/[\w/]+\.py)\b",
                                           page.read_text(encoding="utf-8"))))
        if not (ROOT.parent / cited).exists()
    ]
    assert not missing, "docs name source files that do not exist (moved?):\n" + "\n".join(missing)
