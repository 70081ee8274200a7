"""``wizsync render``: print the desired documents of an environment, secrets masked."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import click
import yaml

from wizsync.engine import Transport, run
from wizsync.fleet.load import load_fleet
from wizsync.manifest import ManifestError, parse_selection
from wizsync.render import RenderedDocument
from wizsync.fleet.session import Session, open_session
from wizsync.report.errordoc import emit_stream

from .common import click_error, transport_options

__all__ = ["render"]

# libyaml's emitter: same text as the pure-Python one (checked on the demo fleet), ~5x faster;
# rendering 10,000 chatbots spent most of its time emitting YAML (bench/scale.py).
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


async def _documents(session: Session) -> list[RenderedDocument]:
    # The engine's pacing and retry policy, as for plan and apply; no listing or fetch when none is needed.
    async with session.executor() as ex:
        return [item.rendered for item in await load_fleet(ex, session.plan, check_secrets=False)]


def _header(doc: RenderedDocument) -> str:
    t = doc.target
    return (
        f"# chatbot: {t.name}  tenant: {t.tenant}  env: {t.environment}  id: {t.chatbot_id or '(by name)'}\n"
        f"# source: {t.source.kind}  wave: {t.wave}  {doc.hash}\n"
    )


def _yaml(doc: RenderedDocument) -> str:
    return _header(doc) + yaml.dump(doc.masked, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=100)


def _json_chunks(documents: list[RenderedDocument]) -> Iterator[str]:
    """``json.dumps([entry, ...], indent=2, ensure_ascii=False) + "\\n"``, one entry at a time."""
    sep = "[\n  "
    for d in documents:
        entry = {
            "name": d.target.name,
            "tenant": d.target.tenant,
            "environment": d.target.environment,
            "chatbotId": d.target.chatbot_id,
            "wave": d.target.wave,
            "hash": d.hash,
            "secrets": d.secret_names,
            "document": d.masked,
        }
        # json.dumps's indent is a prefix per level: an item of the top-level list is one level in.
        yield sep + json.dumps(entry, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        sep = ",\n  "
    yield "[]\n" if sep.startswith("[") else "\n]\n"


@click.command("render")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False))
@click.option("--env", "environment", required=True, metavar="ENV", help="Environment to render for.")
@click.option("--chatbot", "chatbots", multiple=True, metavar="GLOB", help="Only chatbots matching: an address tenant/name, or a bare name (every tenant); globs allowed (repeatable).")
@click.option("--select", "select", multiple=True, metavar="EXPR", help="Label filter, e.g. tier=gold,wave!=canary.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array on stdout instead of YAML.")
@click.option(
    "--online",
    is_flag=True,
    help="Allow read-only API calls: list chatbots (name matching, discover) and fetch live configs "
    "(environment/self sources).",
)
@transport_options
def render(
    manifest_path: str, environment: str, chatbots: tuple[str, ...], select: tuple[str, ...], as_json: bool, online: bool,
    transport: Transport,
) -> None:
    """Print the desired config documents of ENV, secrets shown as <secret:NAME>.

    Needs no network when every selected chatbot has a file source and an
    explicit id; otherwise pass --online.

    \b
    Examples:
      wizsync render wizsync.yaml --env production
      wizsync render wizsync.yaml --env production --chatbot 'acme-*' --json
      wizsync render wizsync.yaml --env staging --select tier=gold --online
    """
    try:
        parse_selection(select, chatbots)  # a bad filter is a usage error, before the manifest is read
    except ManifestError as exc:
        raise click.BadParameter(str(exc), param_hint="--select/--chatbot") from None
    try:
        session = open_session(manifest_path, environment, select=select, chatbots=chatbots, check=False,
                               keys="fetches" if online else "none", transport=transport)
        plan = session.plan
        live_sources = [t.name for t in plan.targets if t.source.kind != "file"]
        tenants = plan.listings_needed()
        if (tenants or live_sources) and not online:
            reasons = []
            if tenants:
                reasons.append(f"chatbots matched by name or discovered in tenant(s) {', '.join(tenants)}")
            if live_sources:
                shown = ", ".join(live_sources[:5]) + (", ..." if len(live_sources) > 5 else "")
                reasons.append(f"live sources (environment/self) for {shown}")
            raise ManifestError(
                f"render for '{environment}' needs live data: {'; '.join(reasons)}",
                file=manifest_path,
                hint="Re-run with --online (read-only API calls with the tenants' keys), "
                "or use file sources and explicit ids",
            )
        documents = run(_documents(session))
    except ManifestError as exc:
        raise click_error(exc) from None

    # Printed one document at a time: each waits packed (render.document.Packed) until its turn,
    # so the output (112 MB of YAML at 10,000 chatbots) is never held whole.
    if as_json:
        emit_stream(_json_chunks(documents))
    else:
        for i, d in enumerate(documents):
            click.echo(("---\n" if i else "") + _yaml(d), nl=False)
    missing = sorted({n for d in documents for n in d.secret_names if n not in os.environ})
    if missing:
        click.echo(f"note: secret(s) not set in this environment (apply will need them): {', '.join(missing)}", err=True)
