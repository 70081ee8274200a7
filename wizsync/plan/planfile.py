"""Plan files (``plan --out FILE``, ``apply FILE``): a plan that travels, like ``terraform plan -out``.

A self-contained JSON file (format in docs/plan-files.md): every chatbot's
desired document with secrets left as ``${secret:NAME}`` references (never a
value), the operations the plan showed and the revision it planned against,
each key's base URL and the name of the variable holding it, the manifest's
hash and the wizsync version. ``apply FILE`` needs no manifest: keys and
secrets come from the environment, and a chatbot whose fresh plan differs
from the file (or whose revision moved) is ``drifted`` and not applied.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..engine import KeySpec
from ..journal.scratch import ScratchDb
from ..manifest import ManifestError
from ..render.hashing import document_hash
from ..render.secrets import SecretRef, SecretText

if TYPE_CHECKING:
    from wizchat_management.models import Operation

    from ..fleet.session import Session
    from ..render.document import RenderedDocument
    from .dryrun import PlanOutcome

__all__ = ["FORMAT", "PlanFile", "PlanFileDocument", "PlanFileWriter", "is_plan_file", "load_plan_file",
           "plan_file_document", "write_plan_file"]

FORMAT = "wizsync.planfile/v1"
_REF = re.compile(r"\$\{secret:([A-Za-z_][A-Za-z0-9_]*)\}")


def _template(text: SecretText) -> str:
    return "".join(p if isinstance(p, str) else "${secret:" + p.name + "}" for p in text.parts)


def _parse(template: str) -> SecretText:
    parts: list[str | SecretRef] = []
    last = 0
    for m in _REF.finditer(template):
        if m.start() > last:
            parts.append(template[last:m.start()])
        parts.append(SecretRef(m.group(1)))
        last = m.end()
    if last < len(template):
        parts.append(template[last:])
    return SecretText(tuple(parts))


def _set(doc: Any, path: Sequence[Any], value: Any) -> None:
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


@dataclass(frozen=True)
class PlanFileDocument:
    """A desired document read back from a plan file (``apply.Desired``): secrets resolved only into requests."""

    name: str
    masked: dict[str, Any]
    slots: tuple[tuple[tuple[Any, ...], SecretText], ...]

    @property
    def hash(self) -> str:
        return document_hash(self.masked)

    @property
    def secret_names(self) -> list[str]:
        return list(dict.fromkeys(n for _, text in self.slots for n in text.names))

    def resolve(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        environ = os.environ if environ is None else environ
        body = copy.deepcopy(self.masked)
        for path, text in self.slots:
            _set(body, path, text.resolve(environ, where=f"chatbot '{self.name}' of the plan file"))
        return body


def plan_file_document(rendered: RenderedDocument) -> dict[str, Any]:
    """A rendered document as the file holds it: secret strings as their ``${secret:NAME}`` templates."""
    doc = copy.deepcopy(rendered.masked)
    for slot in rendered.secret_slots:
        _set(doc, slot.path, _template(slot.text))
    return {"document": doc, "secrets": [list(slot.path) for slot in rendered.secret_slots]}


@dataclass(frozen=True)
class PlanFile:
    path: Path
    data: dict[str, Any]

    @property
    def environment(self) -> str:
        return str(self.data["environment"])

    @property
    def protected(self) -> bool:
        return bool(self.data.get("protected"))

    @property
    def hash(self) -> str:
        return "sha256:" + hashlib.sha256(self.path.read_bytes()).hexdigest()

    def chatbots(self) -> list[dict[str, Any]]:
        return list(self.data["chatbots"])

    def operations(self, index: int) -> list[Operation]:
        """The operations the plan showed for its ``index``-th chatbot; a hand-edited, broken one is named."""
        from pydantic import ValidationError

        from wizchat_management.models import Operation

        try:
            return [Operation.model_validate(op) for op in self.chatbots()[index].get("ops") or []]
        except (ValidationError, AttributeError, TypeError) as exc:
            first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise ManifestError(f"the plan file's operations of chatbot {index + 1} are not operations: {first}",
                                file=str(self.path), key=f"chatbots[{index}].ops",
                                hint="Plan again (wizsync plan ... --out FILE) rather than editing the file") from None

    def document(self, entry: Mapping[str, Any]) -> PlanFileDocument:
        doc = copy.deepcopy(entry["document"])
        slots = []
        for path in entry.get("secrets") or []:
            parent: Any = doc
            for part in path[:-1]:
                parent = parent[part]
            text = _parse(str(parent[path[-1]]))
            parent[path[-1]] = text.masked()
            slots.append((tuple(path), text))
        return PlanFileDocument(str(entry["name"]), doc, tuple(slots))

    def key_specs(self, environ: Mapping[str, str] | None = None) -> dict[str, KeySpec]:
        """Every key the plan needs, read from the variables it names (a missing one: an error naming it)."""
        environ = os.environ if environ is None else environ
        specs = {}
        for label, key in sorted(self.data["keys"].items()):
            variable = key.get("env")
            if not variable:
                raise ManifestError(
                    f"the plan file has no variable for the key of {label} (the manifest reads it from a file)",
                    file=str(self.path), key=f"keys.{label}",
                    hint="A plan file names keys by environment variable: give that tenant {env: NAME} in the manifest and plan again",
                )
            value = (environ.get(variable) or "").strip()
            if not value:
                raise ManifestError(
                    f"the plan file's key for {label} is read from the environment variable {variable}, which is not set",
                    file=str(self.path), key=f"keys.{label}.env", hint=f"Export {variable} before applying the plan",
                )
            specs[label] = KeySpec(api_key=value, base_url=str(key["base_url"]))
        return specs


def is_plan_file(path: str | os.PathLike[str]) -> bool:
    """A JSON file that says it is a plan file (a manifest is YAML, and never starts with this)."""
    try:
        with open(path, "rb") as f:
            head = f.read(200)
    except OSError:
        return False
    return head.lstrip().startswith(b"{") and b'"format"' in head and FORMAT.split("/")[0].encode() in head


def load_plan_file(path: str | os.PathLike[str]) -> PlanFile:
    path = Path(path).resolve()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ManifestError(f"cannot read the plan file: {exc}", file=str(path)) from None
    fmt = data.get("format") if isinstance(data, dict) else None
    if fmt != FORMAT:
        raise ManifestError(f"not a plan file this wizsync reads (format {fmt!r}, expected {FORMAT!r})",
                            file=str(path), key="format",
                            hint="Plan again with this wizsync version (wizsync plan ... --out FILE)")
    for key in ("environment", "keys", "chatbots"):
        if key not in data:
            raise ManifestError(f"the plan file has no {key!r}", file=str(path), key=key)
    return PlanFile(path, data)


class PlannedRun(Protocol):
    """What a plan file is made from: a completed plan run (``run.plan_run.PlanRun``)."""

    run_id: str
    outcomes: list[PlanOutcome]


def write_plan_file(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    """Written whole or not at all (a temp file renamed over it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    # "format" first: is_plan_file() recognises a plan file by its first bytes.
    tmp.write_text(json.dumps(dict(data), indent=2, ensure_ascii=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _chatbot_entry(session: Session, outcome: PlanOutcome, no_prune: bool) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """One planned chatbot as the file holds it, with its key's label and entry."""
    from ..fleet.load import FleetItem
    from .dryrun import effective_prune, ops_of

    item, result = outcome.item, outcome.result
    assert result is not None and isinstance(item, FleetItem)  # a plan with errors writes no file
    target = item.target
    ref = session.manifest.tenants[target.tenant].keys[target.environment]
    key = {"env": ref.env, "base_url": session.keys[item.label].base_url}
    entry = {
        "name": item.name, "tenant": target.tenant, "environment": target.environment,
        "chatbot_id": item.chatbot_id, "label": item.label, "prune": effective_prune(item, no_prune),
        "doc_hash": item.rendered.hash, "revision": result.revision,
        "ops": [op.model_dump(mode="json") for op in ops_of(result)],
        **plan_file_document(item.rendered),
    }
    return item.label, key, entry


def _head(session: Session, run_id: str, keys: dict[str, dict[str, Any]], *, no_prune: bool, version: str) -> dict[str, Any]:
    from ..journal import now_rfc3339

    return {
        "format": FORMAT,
        "wizsync_version": version,
        "created_at": now_rfc3339(),
        "plan_run": run_id,
        "environment": session.environment,
        "protected": bool(session.manifest.environments[session.environment].protected),
        "manifest": {"name": session.manifest_path.name, "hash": session.manifest_hash},
        "options": {**session.selectors, "no_prune": no_prune, "concurrency": session.concurrency},
        "keys": keys,
    }


def plan_file_data(session: Session, plan_run: PlannedRun, *, no_prune: bool, version: str) -> dict[str, Any]:
    """The plan file of a completed plan run, whole in memory (:class:`PlanFileWriter` streams the same file)."""
    keys: dict[str, dict[str, Any]] = {}
    chatbots = []
    for outcome in plan_run.outcomes:
        label, key, entry = _chatbot_entry(session, outcome, no_prune)
        keys[label] = key
        chatbots.append(entry)
    return {**_head(session, plan_run.run_id, keys, no_prune=no_prune, version=version), "chatbots": chatbots}


class PlanFileWriter:
    """``plan --out FILE`` without holding the plan: each chatbot's entry is encoded as its dry-run is
    recorded, kept in a private temporary SQLite file (mode 0600, unlinked once open where the OS
    allows it), and written in the fleet's order at the end, with the bytes of
    ``write_plan_file(path, plan_file_data(...))``. What it holds is what the file holds: secrets
    as ``${secret:NAME}`` references, keys as variable names.
    """

    def __init__(self, session: Session, *, no_prune: bool) -> None:
        self.session, self.no_prune = session, no_prune
        self._position: dict[str, int] = {}
        self._keys: dict[str, tuple[int, dict[str, Any]]] = {}  # label -> (first position, key entry)
        self._pending: list[tuple[int, str]] = []
        # A scratch file: the journal holds the plan; an interrupted plan writes no plan file.
        self._scratch = ScratchDb("wizsync-planfile-", "CREATE TABLE rows (position INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        self._db = self._scratch.db

    def order(self, names: Sequence[str]) -> None:
        """The fleet's order (the file lists chatbots in it), given before the first outcome."""
        self._position = {name: i for i, name in enumerate(names)}

    def add(self, outcome: PlanOutcome) -> None:
        """One recorded dry-run (a failed one is skipped: a plan with errors writes no file)."""
        position = self._position.get(outcome.item.name)
        if outcome.result is None or position is None:
            return
        label, key, entry = _chatbot_entry(self.session, outcome, self.no_prune)
        if label not in self._keys or position < self._keys[label][0]:
            self._keys[label] = (position, key)
        # Indented as an item of the top-level "chatbots" list (json.dumps's indent is a prefix per level).
        self._pending.append((position, json.dumps(entry, indent=2, ensure_ascii=True).replace("\n", "\n    ")))
        if len(self._pending) >= 500:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            with self._db:
                self._db.executemany("INSERT INTO rows VALUES (?, ?)", self._pending)
            self._pending.clear()

    def _chunks(self, run_id: str, version: str) -> Iterator[str]:
        self._flush()
        keys = {label: key for label, (_, key) in sorted(self._keys.items(), key=lambda kv: kv[1][0])}
        head = json.dumps(_head(self.session, run_id, keys, no_prune=self.no_prune, version=version),
                          indent=2, ensure_ascii=True)
        sep = '[\n    '
        yield head[:-2] + ',\n  "chatbots": '
        rows = self._db.execute("SELECT body FROM rows ORDER BY position")
        for (body,) in rows:
            yield sep + body
            sep = ",\n    "
        yield "[]\n}\n" if sep.startswith("[") else "\n  ]\n}\n"

    def write(self, path: str | os.PathLike[str], run_id: str, version: str) -> None:
        """Written whole or not at all, like :func:`write_plan_file`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                for chunk in self._chunks(run_id, version):
                    f.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def close(self) -> None:
        self._scratch.close()

    def __enter__(self) -> PlanFileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
