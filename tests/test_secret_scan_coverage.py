"""Every test that runs wizsync takes the ``secret_scan`` fixture (tests/secret_scan.py; or a module's
own ``scan`` fixture, or makes a ``SecretScan`` and checks it), which fails it at teardown if an API
key or a secret value shows in what wizsync printed, wrote or journaled.

Checked statically (ast): a test "runs wizsync" when its body, or a helper of the same module it
calls (transitively), invokes the click group (``invoke(cli, ...)``), starts ``wizsync.cli`` as a
process, or goes through a ``SecretScan``/``Cli`` helper. Tests of the emulator alone, of the
docs or of the scanner itself do not run wizsync and are not concerned.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent
# Source fragments that mean "this runs wizsync".
MARKERS = ("invoke(cli", "wizsync.cli", "secret_scan.run(", "scan.run(", "Cli(")


class _Source:
    """``ast.get_source_segment`` without re-splitting the file for every node (that was seconds per run)."""

    def __init__(self, source: str) -> None:
        self.data = source.encode()
        self.starts = [0]
        for line in self.data.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))

    def segment(self, node: ast.AST) -> str:
        start = self.starts[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
        end = self.starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
        return self.data[start:end].decode()


def _runs_wizsync(module: ast.Module, source: str) -> dict[str, bool]:
    """Function name -> whether it runs wizsync, directly or through a same-module helper."""
    text = _Source(source)
    functions = {n.name: n for n in ast.walk(module) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    direct = {name: any(m in text.segment(node) for m in MARKERS) for name, node in functions.items()}
    calls = {name: {c.func.id for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
             for name, node in functions.items()}
    result = dict(direct)
    changed = True
    while changed:
        changed = False
        for name in functions:
            if not result[name] and any(result.get(callee) for callee in calls[name]):
                result[name] = changed = True
    return result


def offenders() -> list[str]:
    found = []
    for path in sorted(TESTS.glob("test_*.py")):
        if path.name in {Path(__file__).name, "test_secret_scan.py"}:
            continue
        source = path.read_text()
        module = ast.parse(source)
        runs = _runs_wizsync(module, source)
        text = _Source(source)
        for node in module.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                params = {a.arg for a in node.args.args + node.args.kwonlyargs}
                body = text.segment(node)
                # ``scan``: a module's own SecretScan fixture; or a scanner made and checked in the test itself
                scanned = bool(params & {"secret_scan", "scan"}) or ("SecretScan(" in body and ".check()" in body)
                if runs[node.name] and not scanned:
                    found.append(f"{path.name}::{node.name}")
    return found


def test_every_test_that_runs_wizsync_takes_the_secret_scan_fixture() -> None:
    assert offenders() == []


def test_the_audit_sees_a_test_that_runs_wizsync_without_it() -> None:
    source = (
        "def helper(tmp):\n    return CliRunner().invoke(cli, ['validate', tmp])\n"
        "def test_a(tmp_path):\n    helper(tmp_path)\n"
        "def test_b(tmp_path, secret_scan):\n    helper(tmp_path)\n"
        "def test_c(tmp_path):\n    assert 1\n"
    )
    runs = _runs_wizsync(ast.parse(source), source)
    assert runs == {"helper": True, "test_a": True, "test_b": True, "test_c": False}
