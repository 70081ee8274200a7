"""``wizsync validate``: schema, references, templates, secrets and keys — offline unless ``--check-keys``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from wizsync.manifest import ManifestError, ManifestErrors, Manifest, load_manifest, resolve_targets
from wizsync.engine import DEFAULT_CONCURRENCY, Transport, run
from wizsync.journal import default_journal_path
from wizsync.fleet.keycheck import KeyCheck, check_keys
from wizsync.fleet.pinning import duplicate_key_errors
from wizsync.report.errordoc import emit
from wizsync.render import CheckReport, check_manifest

from .common import click_error, journal_option, transport_options

__all__ = ["validate"]


def _error_json(error: ManifestError) -> dict[str, object]:
    return {"message": str(error), "file": error.file, "line": error.line, "key": error.key}


def _errors_json(error: ManifestError) -> list[dict[str, object]]:
    return [_error_json(e) for e in (error.errors if isinstance(error, ManifestErrors) else [error])]


def _error_object(error: ManifestError, count: int = 1) -> dict[str, object]:
    """The ``error`` object every ``--json`` document of a failure has (docs/json.md): the first problem."""
    message = str(error) + (f" ({count - 1} more problem(s) in errors[])" if count > 1 else "")
    return {"code": "manifest_error", "message": message, "file": error.file, "line": error.line, "key": error.key}


def _check_keys(manifest: Manifest, report: CheckReport, transport: Transport, journal: Path) -> KeyCheck:
    """List the chatbots of every tenant in every checked environment; bind names; prove the targets."""
    check = run(check_keys(manifest, report.environments, concurrency=manifest.rollout.concurrency or DEFAULT_CONCURRENCY,
                           transport=transport, journal_path=journal))
    for error in check.errors:
        report.add(error)
    return check


@click.command("validate")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False))
@click.option("--env", "envs", multiple=True, metavar="ENV", help="Check only this environment (repeatable).")
@click.option(
    "--check-keys",
    is_flag=True,
    help="Also call list_chatbots with every tenant's key (read-only), match chatbot names and prove every "
    "target's key (docs/safety.md \"Wrong target\").",
)
@journal_option
@transport_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result on stdout.")
def validate(
    manifest_path: str, envs: tuple[str, ...], check_keys: bool, journal: str | None, transport: Transport, as_json: bool
) -> None:
    """Check a manifest: schema, references, templates, secrets, key files.

    No network unless --check-keys. Every problem is reported (not only the
    first), each as one paragraph naming file, line and key; exit 1 if there
    is any. Two targets configured with the same key value are refused
    offline; --check-keys also proves each target's key sees its own
    organization: no two keys see the same chatbot, each still sees what the
    journal pinned (--journal), and what the manifest's expect lists.
    Config documents (file sources, overlays, overrides) are checked against
    the API contract: types, allowed values, ranges, required and unknown
    keys (see allowUnknown in docs/manifest.md for newer fields).

    \b
    Examples:
      wizsync validate wizsync.yaml
      wizsync validate wizsync.yaml --env production
      wizsync validate wizsync.yaml --check-keys --json
    """
    manifest = _load(manifest_path, envs, as_json)
    report = check_manifest(manifest, envs or None)
    labels = [f"{t}/{env}" for env in report.environments for t, spec in manifest.tenants.items() if env in spec.keys]
    if report.ok:  # the keys' own problems first; then whether two targets share one
        for error in duplicate_key_errors(manifest, labels):
            report.add(error)
    keys = None
    if check_keys and report.ok:
        keys = _check_keys(manifest, report, transport, Path(journal) if journal else default_journal_path(manifest_path))
    if as_json:
        emit(json.dumps(_result_json(manifest_path, manifest, report, keys), indent=2))
    if report.ok:
        click.echo("ok: " + _summary(manifest_path, manifest, report, keys), err=as_json)
        for label, line in sorted((keys.proved if keys else {}).items()):
            click.echo(f"  {label}: {line}", err=as_json)
        return
    raise click_error(ManifestErrors(report.errors))


def _load(manifest_path: str, envs: tuple[str, ...], as_json: bool) -> Manifest:
    """The manifest, its named environments checked to exist; a load error also as the ``--json`` document."""
    try:
        manifest = load_manifest(manifest_path)
        for env in envs:
            resolve_targets(manifest, env)  # unknown environment → located error
    except ManifestError as exc:
        if as_json:
            errors = exc.errors if isinstance(exc, ManifestErrors) else [exc]
            emit(json.dumps({"valid": False, "errors": _errors_json(exc), "error": _error_object(errors[0], len(errors))},
                            indent=2))
        raise click_error(exc) from None
    return manifest


def _summary(manifest_path: str, manifest: Manifest, report: CheckReport, keys: KeyCheck | None) -> str:
    """The one-line ``ok:`` summary; ``keys`` when ``--check-keys`` ran."""
    entries = len(manifest.chatbots)
    discover = sum(1 for e in manifest.chatbots if e.discover is not None)
    return (
        f"{manifest_path}: {len(report.environments)} environment(s), {len(manifest.tenants)} tenant(s), "
        f"{entries} chatbot entr{'y' if entries == 1 else 'ies'} ({discover} discover), "
        f"{report.documents} document(s) rendered, {len(report.secrets)} secret(s) referenced"
        + (f", {keys.calls} key(s) checked online" if keys is not None else "")
    )


def _result_json(manifest_path: str, manifest: Manifest, report: CheckReport, keys: KeyCheck | None) -> dict[str, object]:
    """The ``validate --json`` document (docs/json.md)."""
    return {
        "valid": report.ok,
        "manifest": manifest_path,
        "environments": report.environments,
        "tenants": list(manifest.tenants),
        "chatbotEntries": len(manifest.chatbots),
        "documentsRendered": report.documents,
        "secrets": report.secrets,
        "keysChecked": keys.calls if keys else 0,
        "targets": keys.proved if keys else {},
        "errors": [_error_json(e) for e in report.errors],
        "error": _error_object(report.errors[0], len(report.errors)) if report.errors else None,
    }
