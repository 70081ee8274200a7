"""``check_manifest``: everything ``wizsync validate`` checks offline, as data.

For every environment and chatbot entry: every template renders (file
sources fully; for live sources the overlays and overrides), every
``${secret:NAME}`` variable is set, every key file/variable a tenant needs
is readable. Problems are collected (deduplicated by location), not raised,
so a user sees them all at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from wizsync.manifest import Manifest, ManifestError, ManifestErrors, read_api_key, resolve_targets

from .document import render_target

__all__ = ["CheckReport", "check_manifest"]


@dataclass
class CheckReport:
    environments: list[str]
    documents: int = 0
    secrets: list[str] = field(default_factory=list)
    errors: list[ManifestError] = field(default_factory=list)
    _seen: set[tuple[object, ...]] = field(default_factory=set, repr=False)

    def add(self, error: ManifestError) -> None:
        if isinstance(error, ManifestErrors):
            for one in error.errors:
                self.add(one)
            return
        # The same overlay mistake shows up once per chatbot: report its location once.
        where = (error.file, error.line, error.key) if error.line else (str(error),)
        if where not in self._seen:
            self._seen.add(where)
            self.errors.append(error)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_manifest(
    manifest: Manifest, environments: Iterable[str] | None = None, environ: Mapping[str, str] | None = None
) -> CheckReport:
    environ = os.environ if environ is None else environ
    envs = list(environments) if environments else list(manifest.environments)
    report = CheckReport(envs)
    for env in envs:
        try:
            plan = resolve_targets(manifest, env)
        except ManifestError as exc:
            report.add(exc)
            continue
        tenants_used: list[str] = []
        for target in plan.targets:
            if target.tenant not in tenants_used:
                tenants_used.append(target.tenant)
            try:
                rendered = render_target(manifest, target, overlays_only=True)
            except ManifestError as exc:
                report.add(exc)
                continue
            report.documents += 1
            report.secrets.extend(n for n in rendered.secret_names if n not in report.secrets)
            for error in rendered.missing_secrets(environ):
                report.add(error)
        for tenant in tenants_used:
            try:
                read_api_key(manifest, tenant, env, environ)
            except ManifestError as exc:
                report.add(exc)
    return report
