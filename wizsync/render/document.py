"""``render_target``: one target's desired ``ChatbotConfigDocument`` (pure but for reading file sources).

Pipeline: source document → templates (file sources only: live configs are
data, not templates) → environment overlay → chatbot override (both
templated) → keep only the managed sections (others null = unmanaged).
What the user wrote (a file source, each overlay and override) is checked
against the contract (``authoring``) and every problem is raised at once; a
live config is the server's data and is never refused for what it holds.

The result, ``RenderedDocument``, holds the masked document (secrets shown as
``<secret:NAME>``: for display, diffs, hashing, journal, exports) and the
places of the secret references; ``resolve(environ)`` builds the real request
body and should be called only right before sending it.
"""

from __future__ import annotations

import copy
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from wizchat_management import SECTIONS

from wizsync.manifest import ManifestError, Manifest, Target, raise_all
from wizsync.manifest.errors import format_key_path
from wizsync.manifest.model import DocumentPatch, check_allow_unknown

from . import memo
from .authoring import DOCS, AllowUnknown, check_authored
from .authoring import problems as authoring_problems

from .hashing import document_hash
from .merge import merge_spec, reject_delete_markers
from .secrets import SecretText
from .sources import load_source_file
from .templates import Origin, expand

__all__ = ["Packed", "RenderedDocument", "SecretSlot", "render_target", "template_scopes"]

API_VERSION = "wizchat.com/v1"
KIND = "ChatbotConfig"


@dataclass(frozen=True)
class SecretSlot:
    """A string in the document that holds secret references, at ``path``."""

    path: tuple[Any, ...]
    text: SecretText


class Packed:
    """A masked document kept as bytes until it is needed, and its hash once computed.

    A fleet's documents wait for their dry-run a long while: as bytes (a pickle, which keeps
    every key order and value type exactly) one costs a few hundred bytes instead of a tree
    of dicts and strings ten times that. Shared by the copies of one render (``memo``), so
    the hash is computed once.
    """

    __slots__ = ("data", "hash")

    def __init__(self, masked: dict[str, Any]) -> None:
        self.data = pickle.dumps(masked, protocol=pickle.HIGHEST_PROTOCOL)
        self.hash: str | None = None

    def unpack(self) -> dict[str, Any]:
        """A new copy of the masked document (nobody else holds it)."""
        return pickle.loads(self.data)  # type: ignore[no-any-return]  # our own bytes, from this process


@dataclass(frozen=True, slots=True)
class RenderedDocument:
    """The desired config of one target. ``masked`` is safe to show; ``resolve`` is not."""

    target: Target
    packed: Packed
    secret_slots: tuple[SecretSlot, ...] = ()
    _masked: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def of(cls, target: Target, masked: dict[str, Any], secret_slots: tuple[SecretSlot, ...] = ()) -> RenderedDocument:
        return cls(target, Packed(masked), secret_slots)

    @property
    def masked(self) -> dict[str, Any]:
        # Unpacked on first use (the dry-run, the report row) and let go of with this object.
        if self._masked is None:
            object.__setattr__(self, "_masked", self.packed.unpack())
        assert self._masked is not None
        return self._masked

    @property
    def secret_names(self) -> list[str]:
        names: list[str] = []
        for slot in self.secret_slots:
            names.extend(n for n in slot.text.names if n not in names)
        return names

    @property
    def hash(self) -> str:
        # Asked for by the journal's item row, the plan row and the plan file: hashed once, from a
        # copy of its own, so a fleet's item rows do not unpack every document ahead of its dry-run.
        if self.packed.hash is None:
            self.packed.hash = document_hash(self.packed.unpack())
        return self.packed.hash

    def missing_secrets(self, environ: Mapping[str, str] | None = None) -> list[ManifestError]:
        """One located error per secret reference whose variable is unset (no value ever in it)."""
        environ = os.environ if environ is None else environ
        where = f"chatbot '{self.target.name}' in '{self.target.environment}'"
        return [
            ref.missing_error(where) for slot in self.secret_slots for ref in slot.text.refs if not environ.get(ref.name)
        ]

    def resolve(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The request body with real secret values. Never log, print, store or hash it."""
        if not self.secret_slots:
            # Nothing to put in: the masked document is the body. A new top level (the SDK takes
            # its own shallow copy too); nothing below it is written to on the way out.
            return dict(self.masked)
        environ = os.environ if environ is None else environ
        body = copy.deepcopy(self.masked)
        for slot in self.secret_slots:
            parent: Any = body
            for part in slot.path[:-1]:
                parent = parent[part]
            where = f"chatbot '{self.target.name}' at {format_key_path(slot.path)}"
            parent[slot.path[-1]] = slot.text.resolve(environ, where=where)
        return body


def template_scopes(manifest: Manifest, target: Target) -> list[tuple[str, Mapping[str, Any]]]:
    """Variable scopes in lookup order: chatbot, tenant, environment, manifest vars, built-ins."""
    return [
        (f"{format_key_path(target.entry_path)}.vars", target.vars),
        (f"tenants.{target.tenant}.vars", manifest.tenants[target.tenant].vars),
        (f"environments.{target.environment}.vars", manifest.environments[target.environment].vars),
        ("vars (top level)", manifest.vars),
        ("built-ins (env, tenant, chatbot)", {"env": target.environment, "tenant": target.tenant, "chatbot": _own_name(target)}),
    ]


def _own_name(target: Target) -> str:
    """``${chatbot}``: the chatbot's own name, never the ``tenant/name`` address.

    An unbound discover placeholder (``validate`` offline) has no name yet: its rule stands in.
    """
    return target.chatbot_name if target.chatbot_name is not None else target.name


def render_target(
    manifest: Manifest,
    target: Target,
    source_document: Mapping[str, Any] | BaseModel | None = None,
    *,
    overlays_only: bool = False,
) -> RenderedDocument:
    """Render ``target``. ``source_document`` is the live config for ``environment``/``self``
    sources (see ``live_config_needed``) and must be None for ``file`` sources, which are read here.
    Raises ``ManifestError`` naming the chatbot, file, line and field.

    ``overlays_only=True`` (for ``validate``, offline) renders a live-source target's
    overlay and override over an empty spec, without the final document check.

    A file-source document is rendered once per manifest object (``memo``): the
    offline check and fleet loading get the same one.
    """
    if target.source.kind == "file" and source_document is None:
        kept = memo.lookup(manifest, target)
        if kept is not None:
            return kept
        rendered = _render(manifest, target, None, overlays_only=overlays_only)
        memo.store(manifest, target, rendered)
        return rendered
    return _render(manifest, target, source_document, overlays_only=overlays_only)


def _render(
    manifest: Manifest,
    target: Target,
    source_document: Mapping[str, Any] | BaseModel | None,
    *,
    overlays_only: bool,
) -> RenderedDocument:
    scopes = template_scopes(manifest, target)
    allow = AllowUnknown.parse(manifest.allowUnknown)
    errors: list[ManifestError] = []
    patched = False
    if overlays_only and target.source.kind != "file":
        source_document = {"spec": {}}
    if target.source.kind == "file":
        assert target.source.file is not None
        doc = load_source_file(manifest, target.source.file)
        origin = Origin(doc.file, doc.line_of, (), target.name)
        # No copy of the file's data: expand() below builds every mapping and list anew.
        spec = _source_spec(doc.data, origin, strict=True, copy_it=False)
        allow = allow | _file_allow(doc.data, origin)
        unexpanded: list[ManifestError] = []
        spec = expand(spec, scopes, Origin(doc.file, doc.line_of, ("spec",), target.name), errors=unexpanded)
        authored = {**{k: v for k, v in doc.data.items() if k != "spec"}, "spec": spec}
        checked = check_authored(authored, "source", file=doc.file, line_of=doc.line_of, allow=allow, chatbot=target.name)
        errors += _with_templates(unexpanded, checked)
        source_label = doc.file
    else:
        if source_document is None:
            raise ManifestError(
                f"chatbot '{target.name}': its source is a live config ({target.source.kind}), which must be fetched first",
                file=manifest.file,
                line=manifest.line_of(target.entry_path),
                key=target.entry_path,
                hint="Run with network access (the command fetches it), or use a file source",
            )
        fresh = isinstance(source_document, BaseModel)  # dumped just now: nobody else holds it
        if isinstance(source_document, BaseModel):
            source_document = source_document.model_dump(mode="json", exclude_unset=True)
        where = f"live config of '{target.name}' ({target.source.kind})"
        # What the server sends is data, never checked against this wizsync's contract:
        # sections, keys and item fields it does not know are kept as they are.
        spec = _source_spec(source_document, Origin(where, lambda p: None, (), target.name), strict=False, copy_it=not fresh)
        source_label = where

    for path, patch in _patches(manifest, target):
        if patch is None or patch.spec is None:
            continue
        raw = patch.spec.model_dump(exclude_unset=True)
        unexpanded = []
        raw = expand(raw, scopes, Origin(manifest.file, manifest.line_of, path + ("spec",), target.name), errors=unexpanded)
        checked = check_authored(
            {"spec": raw}, "patch", file=manifest.file, line_of=manifest.line_of, prefix=path, allow=allow, chatbot=target.name
        )
        problems = _with_templates(unexpanded, checked)
        errors += problems
        if not problems:
            spec = merge_spec(spec, raw, Origin(manifest.file, manifest.line_of, path, target.name), copy_base=False)
            patched = True
    raise_all(errors)

    # Only the six sections this wizsync knows are ever sent: a section it does not know is
    # unmanaged (absent), so the server keeps it as it is. Inside a managed section, keys and
    # item fields it does not know are sent as the source has them.
    managed = {section: (spec.get(section) if section in target.sections else None) for section in SECTIONS}
    document = {"apiVersion": API_VERSION, "kind": KIND, "spec": managed}
    slots: list[SecretSlot] = []
    masked = _mask(document, (), slots)
    if target.source.kind == "file" and patched:  # unpatched, it is the file, checked above
        _check_document(masked, manifest, target, source_label, allow)
    return RenderedDocument.of(target, masked, tuple(slots))


def _with_templates(unexpanded: list[ManifestError], checked: list[ManifestError]) -> list[ManifestError]:
    """Template errors, then contract errors elsewhere: a template left unexpanded is no wrong type."""
    where = {e.key for e in unexpanded}
    return unexpanded + [e for e in checked if e.key not in where]


def _patches(manifest: Manifest, target: Target) -> list[tuple[tuple[Any, ...], DocumentPatch | None]]:
    return [
        (("overlays", target.environment), manifest.overlays.get(target.environment)),
        (target.entry_path + ("overrides", target.environment), target.override),
    ]


def _source_spec(data: Any, origin: Origin, *, strict: bool, copy_it: bool = True) -> dict[str, Any]:
    """The ``spec`` of a source document. ``strict`` (a file the user wrote) refuses what the
    contract check cannot read; a live config is taken as the server sent it."""
    if not isinstance(data, Mapping):
        raise origin.error((), "a source document must be a mapping with apiVersion, kind and spec")
    if data.get("apiVersion", API_VERSION) != API_VERSION:
        raise origin.error(("apiVersion",), f"apiVersion must be {API_VERSION}")
    if data.get("kind", KIND) != KIND:
        raise origin.error(("kind",), f"kind must be {KIND}")
    spec = data.get("spec")
    if not isinstance(spec, Mapping):
        raise origin.error(("spec",), "missing or invalid 'spec' (a mapping of config sections)")
    if strict:
        reject_delete_markers(dict(spec), origin, ("spec",))
    return copy.deepcopy(dict(spec)) if copy_it else dict(spec)


def _file_allow(data: Mapping[str, Any], origin: Origin) -> AllowUnknown:
    """A source file's own ``allowUnknown`` (``wizsync export`` writes it for what the server sent)."""
    entries = data.get("allowUnknown", [])
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise origin.error(("allowUnknown",), "allowUnknown must be a list of key paths such as spec.core.newField")
    try:
        check_allow_unknown(entries)
    except ValueError as exc:
        raise origin.error(("allowUnknown",), str(exc), f"See {DOCS}") from None
    return AllowUnknown.parse(entries)


def _mask(value: Any, path: tuple[Any, ...], slots: list[SecretSlot]) -> Any:
    if isinstance(value, SecretText):
        slots.append(SecretSlot(path, value))
        return value.masked()
    if isinstance(value, Mapping):
        return {k: _mask(v, path + (k,), slots) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, path + (i,), slots) for i, v in enumerate(value)]
    return value


def _check_document(masked: dict[str, Any], manifest: Manifest, target: Target, source_label: str, allow: AllowUnknown) -> None:
    """The merged document of a file source, checked as a whole (an overlay may null a required key)."""
    problems = [p for p in authoring_problems(masked, "source", plain=True) if not allow.covers(p.path)]
    errors = []
    for problem in problems:
        loc = problem.path
        # Point at the overlay or override that wrote the field if we can (mapping keys only),
        # else at the chatbot's entry.
        where: tuple[Any, ...] = target.entry_path
        for path, patch in reversed(_patches(manifest, target)):
            if patch is not None and all(isinstance(p, str) for p in loc) and _has_path(patch.model_dump(exclude_unset=True), loc):
                where = path + loc
                break
        errors.append(
            manifest.error(
                where,
                f"chatbot '{target.name}': the rendered document is invalid at {format_key_path(loc)}: {problem.message}",
                f"Fix the source ({source_label}) or the overlay/override that sets this field",
            )
        )
    raise_all(errors)


def _has_path(data: Any, path: tuple[Any, ...]) -> bool:
    for part in path:
        if not isinstance(data, Mapping) or part not in data:
            return False
        data = data[part]
    return True
