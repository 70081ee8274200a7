"""``wizsync export``: write the live config of every selected chatbot as a YAML file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from wizsync.engine import Transport, run
from wizsync.report.errordoc import emit
from wizsync.export import ExportedFile, export_fleet
from wizsync.fleet.load import bind_targets
from wizsync.plan.dryrun import error_info
from wizsync.fleet.session import Session, open_session

from wizsync.fleet.shards import ShardSpec

from .common import (
    concurrency_option,
    env_option,
    manifest_argument,
    output_options,
    selection_options,
    shard_option,
    transport_options,
    user_errors,
)

__all__ = ["export"]


async def _export(session: Session, out_dir: Path) -> list[object]:
    async with session.executor() as ex:
        targets = await bind_targets(ex, session.plan)
        return await export_fleet(ex, targets, out_dir)


@click.command("export")
@manifest_argument
@env_option
@click.option("--out", "out_dir", required=True, metavar="DIR", type=click.Path(file_okay=False), help="Output directory.")
@selection_options
@shard_option
@concurrency_option
@transport_options
@output_options
def export(
    manifest_path: str,
    environment: str,
    out_dir: str,
    select: tuple[str, ...],
    chatbots: tuple[str, ...],
    shard: ShardSpec | None,
    concurrency: int | None,
    transport: Transport,
    as_json: bool,
    no_color: bool,
    verbose: bool,
    quiet: bool,
) -> None:
    """Write the live config of every selected chatbot of ENV to DIR/<env>/<tenant>/<name>.yaml.

    Deterministic: exporting an unchanged fleet again changes no byte.
    A name that is not a plain lower-case file name (a/b, a b, ., .., Help)
    gets a short suffix derived from its chatbot id: a_b-3f2a9c1e.yaml.
    Secrets stay "<redacted>". Each file works as a `source: {file: ...}`.

    \b
    Examples:
      wizsync export wizsync.yaml --env staging --out configs
      wizsync export wizsync.yaml --env production --out snapshot --chatbot 'acme-*'
      wizsync export wizsync.yaml --env production --out snapshot --shard auto/4
    """
    with user_errors():
        session = open_session(manifest_path, environment, select=select, chatbots=chatbots,
                               concurrency=concurrency, check=False, sources=False, shard=shard,
                               transport=transport)
        outcomes = run(_export(session, Path(out_dir)))
    failures = [o for o in outcomes if o.error is not None]  # type: ignore[attr-defined]
    exported: list[ExportedFile] = [o.value for o in outcomes if o.error is None]  # type: ignore[attr-defined]
    if as_json:
        payload = {
            "environment": environment,
            "out": out_dir,
            "files": [
                {"name": f.target.name, "tenant": f.target.tenant, "chatbot_id": f.target.chatbot_id,
                 "path": str(f.path), "changed": f.changed} for f in exported
            ],
            "errors": [{"name": o.item.name, **error_info(o.error)} for o in failures],  # type: ignore[attr-defined]
        }
        emit(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    else:
        changed = sum(f.changed for f in exported)
        files = len({f.path for f in exported})  # one file per chatbot (export_paths); said as counted
        for o in failures:
            info = error_info(o.error)  # type: ignore[attr-defined]
            click.echo(f"error: {o.item.name}: {info['code']}: {info['message']}", err=True)  # type: ignore[attr-defined]
        click.echo(f"Exported {len(exported)} chatbot(s) of '{environment}' to {out_dir}: {files} file(s), "
                   f"{changed} written, {files - changed} unchanged.")
    if failures:
        sys.exit(1)
