"""Export: the live config of every selected chatbot, one deterministic YAML file each.

Layout ``DIR/<env>/<tenant>/<name>.yaml``. The files are meant to be read
back as ``file`` sources, so they are written as templates: a literal
``${`` in a value is escaped as ``$${``. Secrets stay ``"<redacted>"`` (the
server never returns them; sent back, ``"<redacted>"`` keeps the live value).

What the server sent that this wizsync's contract does not name (a section,
a key, an item field) is written too, and listed in the file's
``allowUnknown``, so an exported file is always a valid ``file`` source.

Deterministic: keys sorted (the item key first), no timestamp, so exporting
an unchanged fleet again changes no byte — a file whose content is the same
is not even rewritten. A new file is written to a temporary name and renamed
into place, so a killed export never leaves a half-written file.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wizchat_management import ChatbotConfigDocument

from .engine import Executor
from .manifest import Target
from .render.authoring import unknown_paths

__all__ = ["ExportedFile", "export_document", "export_path", "write_atomic", "export_fleet"]

_ITEM_KEYS = ("name", "hostname")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ExportedFile:
    target: Target
    path: Path
    changed: bool


def _escape(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (k not in _ITEM_KEYS, k))
        return {k: _escape(value[k]) for k in keys}
    if isinstance(value, list):
        return [_escape(v) for v in value]
    return value


def export_document(doc: ChatbotConfigDocument) -> dict[str, Any]:
    """The exported form: the server's document, stable (no exportedAt), templating-safe."""
    data = doc.model_dump(mode="json", by_alias=True, exclude_unset=True)
    metadata = data.get("metadata") or {}
    metadata.pop("exportedAt", None)  # changes on every read; the file must not
    out: dict[str, Any] = {"apiVersion": data.pop("apiVersion"), "kind": data.pop("kind")}
    if metadata:
        out["metadata"] = _escape(metadata)
    data.pop("metadata", None)
    out["spec"] = _escape(data.pop("spec"))
    data.pop("allowUnknown", None)  # ours to write, below: never a server's field of that name
    out.update(_escape(data))  # fields the server added that we do not know: kept
    # What this wizsync's contract does not name (a newer server's fields), listed so the file
    # stays a valid source: a file source is checked strictly except under allowUnknown.
    unknown = unknown_paths(out)
    if unknown:
        out["allowUnknown"] = unknown
    return out


def render_yaml(document: dict[str, Any], header: str) -> str:
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    return header + body


def export_path(out_dir: Path, target: Target) -> Path:
    name = _UNSAFE.sub("_", target.chatbot_name or target.name.rsplit("/", 1)[-1]).strip("._") or "chatbot"
    return out_dir / target.environment / _UNSAFE.sub("_", target.tenant) / f"{name}.yaml"


def write_atomic(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` by rename; False (and no write) when it already holds exactly that."""
    data = text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return True


async def export_fleet(ex: Executor, targets: Sequence[Target], out_dir: Path) -> list[Any]:
    """get_config of every target concurrently; each file written as soon as its answer arrives.

    Returns ``Outcome`` objects (``item`` the target, ``value`` an ``ExportedFile``).
    """

    # A previous export killed mid-write may have left its temporary files: ours by name, safe to drop.
    for env in {t.environment for t in targets}:
        for stale in (out_dir / env).glob("*/.*.yaml.*.tmp"):
            stale.unlink(missing_ok=True)

    async def one(target: Target) -> ExportedFile:
        chatbot_id = target.chatbot_id
        assert chatbot_id is not None
        doc = await ex.call(f"{target.tenant}/{target.environment}", lambda c: c.get_config(chatbot_id), context=target.name)
        path = export_path(out_dir, target)
        header = f"# wizsync export: {target.environment}/{target.tenant}/{target.name} ({chatbot_id})\n"
        document = export_document(doc)
        if "allowUnknown" in document:
            header += "# allowUnknown: what the server sent that this wizsync does not know (see docs/manifest.md)\n"
        changed = write_atomic(path, render_yaml(document, header))
        return ExportedFile(target, path, changed)

    return await ex.map(targets, one)
