"""Rendering: manifest target + source document → desired ChatbotConfigDocument (no network).

Public API::

    live_config_needed(manifest, target) -> LiveConfigRef | None   # what to get_config() first
    render_target(manifest, target, source_document=None) -> RenderedDocument
    RenderedDocument.masked        # dict, secrets as "<secret:NAME>": display, diff, journal, export
    RenderedDocument.hash          # document_hash(masked)
    RenderedDocument.secret_names / missing_secrets(environ)
    RenderedDocument.resolve(environ=None) -> dict   # real values: only to build the request
    document_hash(masked_doc) -> "sha256:<hex>"
    check_manifest(manifest, environments=None, environ=None) -> CheckReport   # what validate checks
    merge_spec(base_spec, patch_spec, origin)        # the overlay merge rules

Errors are ``wizsync.manifest.ManifestError``.
"""

from .check import CheckReport, check_manifest
from .document import RenderedDocument, SecretSlot, render_target, template_scopes
from .hashing import canonical_json, document_hash
from .merge import merge_spec
from .secrets import SecretRef, SecretText
from .sources import LiveConfigRef, live_config_needed, load_source_file
from .templates import Origin, expand

__all__ = [
    "CheckReport",
    "LiveConfigRef",
    "Origin",
    "RenderedDocument",
    "SecretRef",
    "SecretSlot",
    "SecretText",
    "canonical_json",
    "check_manifest",
    "document_hash",
    "expand",
    "live_config_needed",
    "load_source_file",
    "merge_spec",
    "render_target",
    "template_scopes",
]
