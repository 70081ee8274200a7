"""Export: the live config of every selected chatbot, one deterministic YAML file each.

Layout ``DIR/<env>/<tenant>/<name>.yaml``. The files are meant to be read
back as ``file`` sources, so they are written as templates: a literal
``${`` in a value is escaped as ``$${``. Secrets stay ``"<redacted>"`` (the
server never returns them; sent back, ``"<redacted>"`` keeps the live value).

What the server sent that this wizsync's contract does not name (a section,
a key, an item field) is written too, and listed in the file's
``allowUnknown``, so an exported file is always a valid ``file`` source.

File names are unique and stable for any chatbot name (``file_stem``): a
plain name (lower-case letters, digits, ``.``, ``_``, ``-``) is the file
name; any other (``a/b``, ``a b``, ``.``, ``..``, ``Help``, non-ASCII) gets
a short suffix derived from the chatbot id: ``a_b-3f2a9c1e.yaml``.

Deterministic: keys sorted (the item key first), no timestamp, so exporting
an unchanged fleet again changes no byte — a file whose content is the same
is not even rewritten. A new file is written to a temporary name and renamed
into place, so a killed export never leaves a half-written file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wizchat_management import ITEM_KEYS, ChatbotConfigDocument

from .engine import Executor
from .manifest import ManifestError, Target
from .render.authoring import unknown_paths

__all__ = ["ExportedFile", "export_document", "export_paths", "file_stem", "id_suffix", "write_atomic", "export_fleet"]

# An array item's identifying field is written first.
_ITEM_KEYS = frozenset(ITEM_KEYS.values())
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


# A plain name is its own file name on any disk: lower case (no Help/help clash on a
# case-insensitive one), no separator, no leading dot, not ending in a dot.
_PLAIN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def id_suffix(chatbot_id: str) -> str:
    """8 hex characters derived from the chatbot id: the same id, the same suffix, on every export."""
    return hashlib.sha256(chatbot_id.encode("utf-8")).hexdigest()[:8]


def file_stem(name: str, chatbot_id: str) -> str:
    """The file name (without ``.yaml``) of a chatbot: a function of its name and id alone.

    So it is the same whatever else is exported with it, in any order, with any
    selection. A plain name is its own stem; any other (``a/b``, ``a b``, ``.``,
    ``..``, ``Help``, non-ASCII) is made safe and takes the id suffix, so
    ``a/b``, ``a_b`` and ``a b`` stay three files.
    """
    if _PLAIN.match(name) and not name.endswith("."):
        return name
    return f"{_UNSAFE.sub('_', name).strip('._')[:64] or 'chatbot'}-{id_suffix(chatbot_id)}"


def export_paths(out_dir: Path, targets: Sequence[Target]) -> dict[str, Path]:
    """``DIR/<env>/<tenant>/<stem>.yaml`` of each target, by address; ``ManifestError`` if two would share one."""
    paths: dict[str, Path] = {}
    owners: dict[str, str] = {}
    for target in targets:
        assert target.chatbot_id is not None  # bound before export
        name = target.chatbot_name if target.chatbot_name is not None else target.name
        path = out_dir / target.environment / target.tenant / f"{file_stem(name, target.chatbot_id)}.yaml"
        other = owners.setdefault(str(path).casefold(), target.name)
        if other != target.name:
            # Only a name crafted as another's suffixed stem gets here: refuse, never overwrite.
            raise ManifestError(
                f"export: '{other}' and '{target.name}' would be written to one file ({path.name})",
                hint="Rename one of them on the server, or leave one out with --chatbot/--select",
            )
        paths[target.name] = path
    return paths


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

    paths = export_paths(out_dir, targets)

    async def one(target: Target) -> ExportedFile:
        chatbot_id = target.chatbot_id
        assert chatbot_id is not None
        doc = await ex.call(f"{target.tenant}/{target.environment}", lambda c: c.get_config(chatbot_id), context=target.name)
        path = paths[target.name]
        header = f"# wizsync export: {target.environment}/{target.name} ({chatbot_id})\n"
        document = export_document(doc)
        if "allowUnknown" in document:
            header += "# allowUnknown: what the server sent that this wizsync does not know (see docs/manifest.md)\n"
        changed = write_atomic(path, render_yaml(document, header))
        return ExportedFile(target, path, changed)

    return await ex.map(targets, one)
