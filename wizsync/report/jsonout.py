"""The ``--json`` document of ``plan``, ``apply``, ``show`` (and the other run commands).

Stable and deterministic: the same input gives the same bytes. Keys come in
the order below; free-form values (``before``/``after``, ``run``) have their
object keys sorted; chatbots are sorted by (tenant, name, chatbot_id);
operations keep the server's (execution) order. The output is ASCII
(``\\uXXXX`` escapes), two-space indented, with a trailing newline, on stdout.

Schema (version 1)::

    {
      "schema": "wizsync.report/v1",
      "command": "plan" | "apply" | "show" | "resume" | "rollback" | ...,
      "run_id": str | null,
      "environment": str | null,
      "status": str | null,          # run status: running|completed|halted|failed|interrupted
      "run": object | null,          # extra run facts from the journal (times, options), keys sorted
      "chatbots": [
        {
          "name": str,               # address: tenant/name
          "tenant": str,
          "chatbot_id": str | null,  # "cb_..." in this environment
          "state": str | null,       # journal state: planned|applied|unchanged|failed|drifted|skipped|...
          "batch": int | null,
          "revision": int | null,    # revision after the call (apply) / as planned
          "summary": {"create": int, "update": int, "delete": int, "noop": int} | null,
          "operations": [            # every operation, noop included, server order
            {"op": "create"|"update"|"delete"|"noop",
             "section": "core"|"security"|"telemetry"|"domains"|"mcpServers"|"skills",
             "key": str | null,      # item key (array sections), null for object sections
             "changes": [{"path": str, "before": any, "after": any}] | null}
          ],
          "failed": {"op", "section", "key", "code", "message"} | null,   # apply stopped here
          "error": {"code": str, "message": str} | null                    # not planned/applied at all
        }
      ],
      "totals": {"chatbots", "chatbots_with_changes", "errors", "failed",
                 "create", "update", "delete", "noop"},                    # ints
      "deletes": [{"chatbot": str, "tenant": str, "section": str, "key": str | null}],
      "keys": {label: {"requests": int, "throttled": int, "retries": int}},  # labels sorted
      "estimate": {"requests": int, "floor_seconds": float,
                   "by_key": {label: float}, "unknown": [label]} | null,
      "error": {"code": str, "message": str, "file": null, "line": null, "key": null} | null
                                     # null when the command succeeded; else why it exits non-zero:
                                     # code "chatbots_failed" (plan), or the run's status
                                     # "halted" | "failed" | "interrupted" (apply/resume/rollback)
    }

Secrets: values are the server's (secrets as ``"<redacted>"``), except where
the masked desired document holds a ``<secret:NAME>`` reference, which is
shown instead; any forbidden value (resolved secrets, API keys) is replaced by
``***`` anywhere in the document.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Sequence

from .jsontext import indented
from .model import SUMMARY_KEYS, ChatbotReport
from .summary import Estimate, compute_totals, list_deletes
from .values import forbidden_list, scrub, secret_display

SCHEMA = "wizsync.report/v1"


def _norm(value: Any) -> Any:
    """JSON-ready copy with object keys sorted (deterministic bytes)."""
    if hasattr(value, "value") and not isinstance(value, (str, int, float)):
        return value.value  # Enums
    if isinstance(value, Mapping):
        return {str(k): _norm(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _ev(v: Any) -> Any:
    return v.value if hasattr(v, "value") else v


def chatbot_entry(report: ChatbotReport, forbidden: Sequence[str] = ()) -> dict[str, Any]:
    """One element of ``chatbots`` (see the module schema)."""
    fb = forbidden_list(forbidden)
    operations = []
    plan = report.plan
    if plan is not None:
        for op in plan.operations:
            section = _ev(op.section)
            changes = None
            if op.changes is not None:
                changes = []
                for c in op.changes:
                    shown = secret_display(report.desired, section, op.key, c.path)
                    changes.append(
                        {
                            "path": c.path,
                            "before": _norm(c.before),
                            "after": _norm(shown if shown is not None else c.after),
                        }
                    )
            operations.append({"op": _ev(op.op), "section": section, "key": op.key, "changes": changes})
    counts = report.counts
    entry = {
        "name": report.name,
        "tenant": report.tenant,
        "chatbot_id": report.chatbot_id,
        "state": report.state,
        "batch": report.batch,
        "revision": report.effective_revision,
        "summary": {k: counts[k] for k in SUMMARY_KEYS} if counts is not None else None,
        "operations": operations,
        "failed": _failed_entry(report),
        "error": (
            {"code": str(report.error.get("code", "error")), "message": str(report.error.get("message", ""))}
            if report.error
            else None
        ),
    }
    if report.journal is not None:
        applied = report.journal.applied
        entry["applied_ops"] = None if applied is None else [op.model_dump(mode="json") for op in applied]
    return scrub(entry, fb)  # type: ignore[no-any-return]


def _failed_entry(report: ChatbotReport) -> dict[str, Any] | None:
    """Where the apply stopped: the server's answer, else the journal's record of it (a 422 seen earlier)."""
    failed = report.failed
    if failed is not None:
        return {"op": _ev(failed.op), "section": _ev(failed.section), "key": failed.key,
                "code": failed.code, "message": failed.message}
    step = report.journal.failed if report.journal is not None else None
    if step is None:
        return None
    return {"op": step.op, "section": step.section, "key": step.key, "code": step.code, "message": step.message}


def build_document(
    command: str,
    reports: Iterable[ChatbotReport],
    *,
    run_id: str | None = None,
    environment: str | None = None,
    status: str | None = None,
    keys: Mapping[str, Mapping[str, int]] | None = None,
    estimate: Estimate | None = None,
    run: Mapping[str, Any] | None = None,
    forbidden: Iterable[str] = (),
    error: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``--json`` document as a dict (see the module schema)."""
    fb = forbidden_list(forbidden)
    items = sorted(reports, key=lambda r: (r.tenant, r.name, r.chatbot_id or ""))
    key_stats = keys or {}
    doc = {
        "schema": SCHEMA,
        "command": command,
        "run_id": run_id,
        "environment": environment,
        "status": status,
        "run": _norm(run) if run is not None else None,
        "chatbots": [chatbot_entry(r, fb) for r in items],
        "totals": compute_totals(items).as_dict(),
        "deletes": [d.as_dict() for d in list_deletes(items)],
        "keys": {
            label: {f: int((key_stats[label] or {}).get(f, 0) or 0) for f in ("requests", "throttled", "retries")}
            for label in sorted(key_stats)
        },
        "estimate": estimate.as_dict() if estimate is not None else None,
        "error": run_error(**error) if error is not None else None,
    }
    return scrub(doc, fb)  # type: ignore[no-any-return]


def run_error(code: str, message: str, **_: Any) -> dict[str, Any]:
    """The ``error`` object, with the same keys as the error document's (wizsync.report.errordoc)."""
    return {"code": code, "message": message, "file": None, "line": None, "key": None}


def plan_document(reports: Iterable[ChatbotReport], **kw: Any) -> dict[str, Any]:
    """:func:`build_document` for ``plan`` (status defaults to ``completed``)."""
    kw.setdefault("status", "completed")
    return build_document("plan", reports, **kw)


def dumps(doc: Mapping[str, Any]) -> str:
    """Deterministic text of a document: ASCII, indent 2, trailing newline."""
    return indented(doc) + "\n"


def stream_document(command: str, rows: Iterable[str], totals: Any, deletes: Iterable[Any], *,
                    extra: Mapping[str, Any] | None = None, **kw: Any) -> Iterator[str]:
    """:func:`dumps` of :func:`build_document`, in pieces, with ``chatbots`` streamed from ``rows``.

    ``rows``: each chatbot's entry as ``json.dumps(entry, indent=2, ensure_ascii=True)`` (a
    :class:`.spool.ReportSpool`), already in report order; ``totals``/``deletes`` the fleet's (they
    come after the chatbots); ``extra`` keys go last. The bytes are the same as
    ``dumps(build_document(...))``'s.
    """
    doc = build_document(command, [], **kw)
    doc.update(extra or {})
    doc["totals"] = totals.as_dict()
    doc["deletes"] = scrub([d.as_dict() for d in deletes], forbidden_list(kw.get("forbidden", ())))
    head, tail = dumps(doc).split(f'\n  "chatbots": [],\n', 1)
    first = True
    for row in rows:
        yield (head + '\n  "chatbots": [\n' if first else ",\n") + "    " + row.replace("\n", "\n    ")
        first = False
    yield (head + '\n  "chatbots": [],\n' if first else "\n  ],\n") + tail
