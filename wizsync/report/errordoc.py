"""The ``--json`` document of a command that ended in an error before (or instead of) its own document.

With ``--json`` every exit prints exactly ONE JSON document on stdout: the
command's own (``wizsync.report/v1``, with ``error`` set when it failed), or,
when the command never got that far (a usage error, a manifest error, a
refusal, a bug), this one (schema in docs/json.md)::

    {
      "schema": "wizsync.error/v1",
      "command": "plan",                 # the subcommand, or null
      "exit_code": 2,
      "error": {
        "code": "usage_error",           # see CODES
        "message": "...",                # the one paragraph stderr shows, without "Error: "
        "file": "wizsync.yaml" | null,   # where known
        "line": 12 | null,
        "key": "chatbots[3].source" | null
      }
    }

Commands write their documents through :func:`emit` so the CLI edge knows
whether one was written already (and never writes a second).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from typing import Any, Iterable

__all__ = ["ERROR_SCHEMA", "CODES", "ErrorInfo", "error_document", "emit", "written", "reset"]

ERROR_SCHEMA = "wizsync.error/v1"

#: ``error.code`` values of the error document (a run's own failures use the run's status instead).
CODES = {
    "usage_error": "a bad option or argument (exit 2)",
    "manifest_error": "the manifest, a source document, a key or a secret variable is wrong (exit 1)",
    "journal_error": "the journal cannot be read or written, or a run id is unknown (exit 1)",
    "refused": "the run refused to start: deletes not allowed, not confirmed, a changed manifest (exit 1)",
    "locked": "another process holds the run or its environment (exit 1)",
    "plan_file_error": "a plan file that cannot be read or applied here (exit 1)",
    "aborted": "the command was aborted at a prompt or by Ctrl-C (exit 1 or 130)",
    "internal_error": "a bug in wizsync (exit 1)",
    "error": "any other error (exit 1)",
}


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    message: str
    file: str | None = None
    line: int | None = None
    key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def error_document(command: str | None, exit_code: int, error: ErrorInfo) -> dict[str, Any]:
    return {"schema": ERROR_SCHEMA, "command": command, "exit_code": exit_code, "error": error.as_dict()}


_state = {"written": False}


def emit(text: str) -> None:
    """Write a command's JSON document on stdout (the only way commands do, so none is written twice)."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
    _state["written"] = True


def emit_stream(chunks: Iterable[str]) -> None:
    """:func:`emit` of a document that comes in pieces (a fleet's report, never whole in memory)."""
    for chunk in chunks:
        sys.stdout.write(chunk)
        _state["written"] = True
    sys.stdout.flush()


def written() -> bool:
    return _state["written"]


def reset() -> None:
    """A new command starts (tests run many in one process)."""
    _state["written"] = False


def dumps_error(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=True) + "\n"
