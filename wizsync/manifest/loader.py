"""``load_manifest(path)``: read, parse, validate and cross-check a manifest.

Order of checks: file readable → YAML syntax (and duplicate keys) → no API
key written anywhere in the file → schema (Pydantic, unknown keys rejected) →
references. Problems raise ``ManifestError`` naming file, line and key; the
schema and reference checks report every problem they find at once
(``ManifestErrors``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import ManifestError, ManifestErrors
from wizchat_management import API_KEY_PREFIX, API_KEY_RE

from .model import Manifest
from .references import check_references
from .validation_errors import manifest_errors_from_validation
from .yaml_marks import LocatedYaml, load_plain_yaml, located_lines

__all__ = ["load_manifest", "read_text_file"]


# A manifest of 10,000 chatbots is about 2 MB (bench/scale.py); a config document a few KB.
MAX_FILE_BYTES = 16 * 1024 * 1024


def read_text_file(path: Path, shown_as: str, limit: int = MAX_FILE_BYTES) -> str:
    """UTF-8 text of ``path`` (at most ``limit`` bytes); unreadable → ``ManifestError`` naming ``shown_as``.

    Never more than ``limit + 1`` bytes are read, so a huge file costs no
    memory; errors never quote the content.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
        if len(raw) > limit:
            raise ManifestError(
                f"refused: the file is larger than {limit:,} bytes",
                file=shown_as,
                hint="Manifests and config documents are small text files: check the path",
            )
        return raw.decode("utf-8")
    except FileNotFoundError:
        raise ManifestError("file not found", file=shown_as, hint="Check the path") from None
    except IsADirectoryError:
        raise ManifestError("is a directory, not a file", file=shown_as) from None
    except PermissionError:
        raise ManifestError("permission denied reading the file", file=shown_as, hint="Check its permissions") from None
    except UnicodeDecodeError:
        raise ManifestError("not UTF-8 text", file=shown_as, hint="Save the file as UTF-8") from None
    except OSError as exc:
        raise ManifestError(f"cannot read the file ({exc.strerror})", file=shown_as) from None


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Load ``path`` into a validated ``Manifest``; raise ``ManifestError`` on any problem."""
    shown = str(path)
    text = read_text_file(Path(path), shown)
    data = load_plain_yaml(text, shown)
    # Lines only for an error: rebuilt from the text then (no line is kept for a manifest that loads).
    def located() -> LocatedYaml:
        return LocatedYaml(data, shown, located_lines(text, shown))

    if not isinstance(data, Mapping):
        raise ManifestError(
            "the manifest must be a YAML mapping starting with 'version: 1'", file=shown, line=located().line_of(()) or 1
        )
    _reject_inline_keys(located, data, ())
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestErrors(manifest_errors_from_validation(exc, located(), Manifest)) from None
    _share_common(manifest)
    manifest._file = shown
    manifest._base_dir = Path(path).resolve().parent
    manifest.keep_text(text)
    check_references(manifest)
    return manifest


def _share_common(manifest: Manifest) -> None:
    """One object for what many chatbot entries hold alike: a run keeps every entry until it ends.

    The set of keys each entry wrote, its tenant and environment names, and its empty
    ``labels``/``vars``/``overrides`` are the same for most entries of a large fleet (at
    10,000 chatbots, ~0.5 KB of the ~1.4 KB each entry held). Entries are never written to
    after loading, so sharing them changes nothing they read.
    """
    sets: dict[frozenset[str], set[str]] = {}
    names: dict[str, str] = {}
    empty: dict[str, Any] = {}
    for entry in manifest.chatbots:
        fields = entry.__pydantic_fields_set__
        object.__setattr__(entry, "__pydantic_fields_set__", sets.setdefault(frozenset(fields), fields))
        held = entry.__dict__
        if entry.tenant is not None:
            held["tenant"] = names.setdefault(entry.tenant, entry.tenant)
        if entry.ids:
            held["ids"] = {names.setdefault(env, env): chatbot_id for env, chatbot_id in entry.ids.items()}
        for name in ("labels", "vars", "overrides"):
            if not held[name]:
                held[name] = empty


def _reject_inline_keys(doc: Callable[[], LocatedYaml], node: Any, path: tuple[Any, ...]) -> None:
    """Any string that looks like a WizChat API key is refused, without echoing it."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            _reject_inline_keys(doc, value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _reject_inline_keys(doc, value, path + (index,))
    elif isinstance(node, str) and (API_KEY_RE.search(node) or node.startswith(API_KEY_PREFIX)):
        raise doc().error(
            path,
            "this value looks like a WizChat API key; a key must never be written in the manifest",
            "Put it in an environment variable or a key file and reference it from tenants.<name>.keys.<env> "
            "as {env: VARIABLE_NAME} or {file: path}; then revoke the key, since it was written to a file",
        )
