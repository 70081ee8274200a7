"""Cross-reference checks that the schema alone cannot express.

Run by ``load_manifest`` after validation: tenants, environments and waves
that entries refer to exist, chatbot names are unique, every chatbot has a
source, and file sources exist. Every problem is raised at once, each a
located ``ManifestError`` (with a "did you mean" when a name is close).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from typing import Any

from .errors import ManifestError, raise_all
from .files import OutsideRoots, confined_source
from .model import Manifest, Source

__all__ = ["check_references"]


def check_references(manifest: Manifest) -> None:
    """Raise every reference problem at once (``ManifestErrors``), or nothing."""
    errors: list[ManifestError] = []
    try:
        _check(manifest, errors)
    except ManifestError as exc:
        errors.append(exc)
    raise_all(errors)


def _check(manifest: Manifest, errors: list[ManifestError]) -> None:
    envs = list(manifest.environments)
    tenants = list(manifest.tenants)

    def known(path: tuple[Any, ...], value: str, names: Iterable[str], what: str) -> None:
        names = list(names)
        if value in names:
            return
        close = difflib.get_close_matches(value, names, n=1, cutoff=0.5)
        hint = (f"Did you mean '{close[0]}'? " if close else "") + f"Define it under {what}s: or fix the name"
        errors.append(manifest.error(path, f"unknown {what} '{value}' (known: {', '.join(names) or 'none'})", hint))

    for tenant, spec in manifest.tenants.items():
        for env in spec.keys:
            known(("tenants", tenant, "keys", env), env, envs, "environment")
        for env in spec.expect:
            known(("tenants", tenant, "expect", env), env, envs, "environment")
    for env in manifest.overlays:
        known(("overlays", env), env, envs, "environment")
    if manifest.defaults.source is not None:
        _check_source(manifest, ("defaults", "source"), manifest.defaults.source, known, envs, errors)

    waves = manifest.rollout.ordered_waves
    first_seen: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(manifest.chatbots):
        base: tuple[Any, ...] = ("chatbots", index)
        if entry.discover is not None:
            known(base + ("discover", "tenant"), entry.discover.tenant, tenants, "tenant")
        else:
            assert entry.name is not None and entry.tenant is not None
            known(base + ("tenant",), entry.tenant, tenants, "tenant")
            where = (entry.tenant, entry.name)
            if where in first_seen:
                j = first_seen[where]
                errors.append(manifest.error(
                    base + ("name",),
                    f"duplicate chatbot '{entry.tenant}/{entry.name}' (also chatbots[{j}], line {manifest.line_of(('chatbots', j))})",
                    "A name is unique within its tenant: rename one of them, or remove the copy",
                ))
            else:
                first_seen[where] = index
        for env in entry.ids:
            known(base + ("ids", env), env, envs, "environment")
        for env in entry.overrides:
            known(base + ("overrides", env), env, envs, "environment")
        if entry.wave is not None and entry.wave not in waves:
            errors.append(manifest.error(
                base + ("wave",),
                f"unknown wave '{entry.wave}' (rollout.waves: {', '.join(waves)})",
                "Add it to rollout.waves or fix the name",
            ))
        if entry.source is not None:
            _check_source(manifest, base + ("source",), entry.source, known, envs, errors)
        elif manifest.defaults.source is None:
            errors.append(manifest.error(
                base,
                "no source for this chatbot",
                "Set source: {file: ...}, {environment: ...} or {self: true} on it, or defaults.source",
            ))


def _check_source(
    manifest: Manifest, path: tuple[Any, ...], source: Source, known: Any, envs: list[str], errors: list[ManifestError]
) -> None:
    if source.environment is not None:
        known(path + ("environment",), source.environment, envs, "environment")
    if source.file is not None:
        try:
            file = confined_source(manifest, source.file)
        except OutsideRoots as exc:
            errors.append(manifest.error(
                path + ("file",),
                f"refused: {exc}",
                "File sources are read from the manifest's folder tree only; to read another folder, "
                "list it in fileRoots (see docs/manifest.md)",
            ))
            return
        if not file.is_file():
            errors.append(manifest.error(
                path + ("file",),
                f"source file '{source.file}' not found (looked in {manifest.base_dir})",
                "File paths are relative to the manifest's directory; `wizsync export` writes files you can use here",
            ))
        elif not os.access(file, os.R_OK):
            errors.append(manifest.error(path + ("file",), f"source file '{source.file}' is not readable", "Check its permissions"))
