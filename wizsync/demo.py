"""``wizsync demo``: the main job end to end on the embedded emulator, nothing to configure.

The demo is a real user of the library, not a special path: it writes a real
manifest and keys file into a working directory, then calls the same
functions the commands call (``open_session``, ``export_fleet``,
``load_fleet``, ``run_plan``, ``apply_run``) against an in-process emulator
whose state lives in that directory, so every step can be re-run by hand
afterwards against ``wizsync emulator --state <dir>/emulator.db``.

The steps are reported through a small ``DemoUI`` so the library never
decides where text goes (stdout, or stderr under ``--json``).

Secrets: the demo's ``${secret:...}`` value is generated, set in this
process's environment only for the run, and written to the keys file
(mode 600) next to the API keys so the re-run commands render the same
documents. It is never printed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .apply.batches import ApplyOptions
from .engine import run
from .export import export_fleet
from .fleet.load import FleetItem, bind_targets, load_fleet
from .fleet.session import open_session
from .plan.dryrun import has_changes
from .run.plan_run import PlanRun, run_plan
from .run.flows import RunOutcome, apply_run

__all__ = [
    "CANARY",
    "DEMO_SECRET",
    "DemoError",
    "DemoPaths",
    "DemoResult",
    "DemoUI",
    "fresh_dir",
    "manifest_text",
    "dotenv_text",
    "rerun_commands",
    "run_demo",
]

#: The ``${secret:...}`` variable of the demo manifest's production overlay.
DEMO_SECRET = "WIZSYNC_DEMO_MCP_TOKEN"
#: The canary chatbot: an explicit entry (labels, wave, per-chatbot override) in tenant acme.
CANARY = "support-billing"
#: Its address: the bare name is every tenant's support-billing, the address is acme's alone.
CANARY_ADDRESS = f"acme/{CANARY}"
TENANTS = ("acme", "globex", "initech")
SOURCE_ENV, TARGET_ENV = "staging", "production"


class DemoError(Exception):
    """The demo cannot run as asked (e.g. ``--dir`` already holds something)."""


class DemoUI(Protocol):
    """Where the demo's steps go; the command decides the stream."""

    def step(self, number: int, title: str) -> None: ...
    def line(self, text: str = "") -> None: ...
    def rich(self, renderable: Any) -> None: ...
    def reporter(self, quiet: bool) -> Any: ...


@dataclass(frozen=True)
class DemoPaths:
    dir: Path

    @property
    def manifest(self) -> Path:
        return self.dir / "wizsync.yaml"

    @property
    def keys(self) -> Path:
        return self.dir / "keys.env"

    @property
    def state(self) -> Path:
        return self.dir / "emulator.db"

    @property
    def journal(self) -> Path:
        return self.dir / "journal.db"

    @property
    def configs(self) -> Path:
        return self.dir / "configs"


@dataclass
class DemoResult:
    paths: DemoPaths
    base_url: str
    port: int
    exported: int
    plan: PlanRun
    apply: RunOutcome
    commands: list[tuple[str, str]] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.apply.summary.run_id


# -- pure parts: the directory name, the files, the commands ------------------------------


def fresh_dir(parent: Path, base: str = "wizsync-demo") -> Path:
    """``parent/base``, or ``base-2``, ``base-3``... : the first name not taken."""
    candidate, n = parent / base, 1
    while candidate.exists():
        n += 1
        candidate = parent / f"{base}-{n}"
    return candidate


def check_dir(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise DemoError(
            f"{path} already exists and is not an empty directory; the demo writes a fresh emulator state, "
            "manifest and journal there. Pass another --dir, or leave --dir out to get a fresh folder"
        )


MANIFEST = """\
# wizsync demo: promote the staging configs of three tenants to production.
#
# Written by `wizsync demo` for the emulator it started at {base_url}.
# Re-run any step by hand: serve the same emulator state on the same port
#   wizsync emulator --state {state} --port {port} --seed demo
# then, in another terminal, from the directory holding this folder:
#   set -a; . {keys}; set +a
#   wizsync plan {manifest} --env production --journal {journal}
#
# What it shows:
# - source: the live staging config of each chatbot (promotion, matched by name);
# - sections: only core, telemetry, mcpServers and skills are managed; security
#   (origins, webhook secret) and domains differ per environment on purpose and
#   are never touched;
# - a production overlay for every chatbot with a per-environment variable
#   (${{region}}), a built-in one (${{tenant}}) and a secret (${{secret:{secret}}},
#   read from the environment at apply time, shown as <secret:...>);
# - a per-chatbot override, labels and a canary wave;
# - rollout: the canary alone first, then 10%, then the rest; the run halts
#   if more than 5% of the chatbots fail.
version: 1
description: Demo fleet, staging -> production for acme, globex and initech
environments:
  staging:
    baseUrl: {base_url}
    vars: {{region: eu-staging}}
  production:
    baseUrl: {base_url}
    protected: true                  # apply asks to confirm unless --yes
    vars: {{region: eu}}
tenants:
  acme:
    keys:
      staging: {{env: WIZCHAT_ACME_STAGING_KEY}}
      production: {{env: WIZCHAT_ACME_PRODUCTION_KEY}}
    vars: {{brand: Acme}}
  globex:
    keys:
      staging: {{env: WIZCHAT_GLOBEX_STAGING_KEY}}
      production: {{env: WIZCHAT_GLOBEX_PRODUCTION_KEY}}
    vars: {{brand: Globex}}
  initech:
    keys:
      staging: {{env: WIZCHAT_INITECH_STAGING_KEY}}
      production: {{env: WIZCHAT_INITECH_PRODUCTION_KEY}}
    vars: {{brand: Initech}}
defaults:
  source: {{environment: staging}}
  sections: [core, telemetry, mcpServers, skills]
  prune: true
overlays:
  production:
    spec:
      telemetry: {{sampleRate: 0.1}}
      mcpServers:
        - name: search
          url: https://mcp.${{region}}.${{tenant}}.example/search
          headers: {{Authorization: "Bearer ${{secret:{secret}}}"}}
chatbots:
  - name: {canary}                # acme's; the same name in the other tenants is discovered below
    tenant: acme
    labels: {{tier: gold, team: billing}}
    wave: canary
    overrides:
      production: {{spec: {{core: {{temperature: 0.1}}}}}}   # staging runs at 0.2
  - discover: {{tenant: acme}}
    labels: {{tier: standard}}
  - discover: {{tenant: globex}}
    labels: {{tier: standard}}
  - discover: {{tenant: initech}}
    labels: {{tier: standard}}
rollout:
  waves: [canary, default]
  batches: [1, "10%", "100%"]
  maxFailures: "5%"
  concurrency: 16
"""


def manifest_text(base_url: str, port: int, paths: Mapping[str, str]) -> str:
    """The demo manifest for an emulator at ``base_url``; ``paths`` as the user should type them."""
    return MANIFEST.format(base_url=base_url, port=port, secret=DEMO_SECRET, canary=CANARY, **paths)


def dotenv_text(values: Mapping[str, str]) -> str:
    lines = ["# wizsync demo: emulator API keys and the demo's secret (local emulator only; generated)."]
    lines += [f"{name}={value}" for name, value in sorted(values.items())]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Owner-only: credentials, even if only for the emulator."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def shown_path(path: Path, cwd: Path) -> str:
    """Relative to ``cwd`` when inside it (short, copy-pastable), else absolute; shell-quoted."""
    try:
        text = str(path.resolve().relative_to(cwd.resolve()))
    except ValueError:
        text = str(path.resolve())
    return shlex.quote(text)


def display_paths(paths: DemoPaths, cwd: Path) -> dict[str, str]:
    return {k: shown_path(getattr(paths, k), cwd) for k in ("dir", "manifest", "keys", "state", "journal", "configs")}


def rerun_commands(paths: DemoPaths, port: int, run_id: str, cwd: Path) -> list[tuple[str, str]]:
    """(what it does, command) for each step, to run by hand after the demo."""
    p = display_paths(paths, cwd)
    m, j = p["manifest"], f"--journal {p['journal']}"
    return [
        ("in another terminal: serve the demo's emulator state again, on the same port",
         f"wizsync emulator --state {p['state']} --port {port} --seed demo"),
        ("load the API keys and the demo's secret into this shell", f"set -a; . {p['keys']}; set +a"),
        ("check the manifest offline", f"wizsync validate {m}"),
        ("export staging (byte-identical files when nothing changed)", f"wizsync export {m} --env staging --out {p['configs']}"),
        ("render one production document, secrets masked", f"wizsync render {m} --env production --chatbot {CANARY_ADDRESS} --online"),
        ("plan production again (nothing left to change)", f"wizsync plan {m} --env production {j}"),
        ("apply (production is protected: --yes confirms)", f"wizsync apply {m} --env production {j} --yes"),
        ("the run history", f"wizsync runs {j}"),
        ("the demo's apply run, from the journal", f"wizsync show {run_id} {j}"),
        ("continue a run that was interrupted (this one completed: nothing to do)", f"wizsync resume {run_id} {j}"),
        ("restore what the run changed, as a run of its own", f"wizsync rollback {run_id} {j} --yes"),
    ]


# -- the run ---------------------------------------------------------------------------------


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str], environ: MutableMapping[str, str] = os.environ) -> Iterator[None]:
    """Set ``values`` for the duration only (the demo's keys and secret never outlive it)."""
    saved = {k: environ.get(k) for k in values}
    environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                environ.pop(k, None)
            else:
                environ[k] = v


def _fleet_size(emu: Any) -> int:
    return len(emu.state.chatbots)


def _get(doc: Any, *path: Any) -> Any:
    for part in path:
        if isinstance(part, str) and isinstance(doc, dict):
            doc = doc.get(part)
        elif isinstance(part, tuple) and isinstance(doc, list):  # ("name", value): an array item
            doc = next((x for x in doc if isinstance(x, dict) and x.get(part[0]) == part[1]), None)
        else:
            return None
    return doc


def _render_lines(canary: FleetItem) -> list[str]:
    """What the overlay, the override and the secret did to the canary's document (masked)."""
    spec = canary.rendered.masked.get("spec", {})
    search = ("name", "search")
    return [
        f"core.temperature: {_get(spec, 'core', 'temperature')}   (per-chatbot override)",
        f"telemetry.sampleRate: {_get(spec, 'telemetry', 'sampleRate')}   (production overlay)",
        f"mcpServers[search].url: {_get(spec, 'mcpServers', search, 'url')}   (overlay: ${{region}}, ${{tenant}})",
        f"mcpServers[search].headers.Authorization: {_get(spec, 'mcpServers', search, 'headers', 'Authorization')}"
        "   (a secret: masked everywhere)",
    ]


async def _export(paths: DemoPaths) -> int:
    session = open_session(paths.manifest, SOURCE_ENV, journal=paths.journal, check=False, sources=False)
    async with session.executor() as ex:
        targets = await bind_targets(ex, session.plan)
        outcomes = await export_fleet(ex, targets, paths.configs)
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        raise DemoError(f"export failed for {len(failed)} chatbot(s), e.g. {failed[0].item.name}")
    return len(outcomes)


async def _render(paths: DemoPaths) -> list[FleetItem]:
    session = open_session(paths.manifest, TARGET_ENV, journal=paths.journal)
    async with session.executor() as ex:
        return await load_fleet(ex, session.plan)


def _pipeline(paths: DemoPaths, ui: DemoUI, quiet: bool) -> tuple[int, PlanRun, RunOutcome]:
    from .report.diff import render_diffs
    from .report.model import plan_report
    from .report.summary import compute_totals, render_summary

    p = display_paths(paths, Path.cwd())

    ui.step(2, f"Export staging: the live config of every chatbot, one YAML file each, to {p['configs']}")
    exported = run(_export(paths))
    ui.line(f"{exported} chatbots of 3 tenants exported to {p['configs']}/staging/<tenant>/<name>.yaml "
            "(secrets stay \"<redacted>\").")

    ui.step(3, "Render production: staging configs + production overlay + overrides + a secret")
    fleet = run(_render(paths))
    canary = next(f for f in fleet if f.name == CANARY_ADDRESS)
    secret_names = sorted({n for f in fleet for n in f.rendered.secret_names})
    ui.line(f"{len(fleet)} documents rendered; secrets referenced: {', '.join(secret_names)} (never shown, never stored).")
    ui.line(f"{CANARY_ADDRESS} (wave canary, labels tier=gold) in production:")
    for text in _render_lines(canary):
        ui.line(f"  {text}")

    ui.step(4, "Plan production: a server-side dry-run of every chatbot, concurrently, journaled as a run")
    session = open_session(paths.manifest, TARGET_ENV, journal=paths.journal)
    plan = run(run_plan(session, reporter=ui.reporter(quiet=True)))
    if plan.errors:
        first = plan.errors[0]
        raise DemoError(f"the plan failed for {len(plan.errors)} chatbot(s), e.g. {first.item.name}: {first.error}")
    reports = [plan_report(o) for o in plan.outcomes]
    ui.line(f"The canary's diff ({CANARY_ADDRESS}); `wizsync plan` prints one per changed chatbot:")
    ui.rich(render_diffs([r for r in reports if r.name == CANARY_ADDRESS], plan.forbidden))
    by_tenant: dict[str, list[int]] = {}
    for o in plan.outcomes:
        counts = by_tenant.setdefault(o.item.target.tenant, [0, 0])
        counts[0] += 1
        counts[1] += bool(o.result is not None and has_changes(o.result))
    ui.line("Per tenant: " + "; ".join(f"{t} {c} of {n} chatbots change" for t, (n, c) in sorted(by_tenant.items())))
    ui.rich(render_summary(compute_totals(reports), title=f"Plan {plan.run_id}", forbidden=plan.forbidden))

    ui.step(5, "Apply production in batches: the canary alone, then 10%, then the rest (exactly the plan above)")
    rollout = session.manifest.rollout
    options = ApplyOptions(batches=list(rollout.batches), max_failures=rollout.maxFailures, plan_run=plan.run_id,
                           concurrency=session.concurrency)
    # confirm=None: the demo runs unattended; `wizsync apply` on a protected environment asks (or takes --yes).
    outcome = run(apply_run(session, options, confirm=None, reporter=ui.reporter(quiet=quiet)))
    return exported, plan, outcome


def run_demo(directory: Path, ui: DemoUI, *, port: int = 0, quiet: bool = False) -> DemoResult:
    """Start the emulator (state in ``directory``), write the manifest and keys, run the pipeline.

    Raises ``DemoError`` when ``directory`` is not fresh or a step fails;
    ``ManifestError``/``JournalError`` pass through (bugs in the demo, shown as such).
    """
    from wizchat_management.emulator import EmulatorServer

    check_dir(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = DemoPaths(directory)
    cwd = Path.cwd()
    p = display_paths(paths, cwd)

    ui.step(1, "Start the WizChat emulator with the demo fleet and write a manifest")
    with EmulatorServer(seed="demo", state_path=paths.state, port=port) as emu:
        bound_port = int(emu.base_url.rsplit(":", 1)[1])
        env = {**emu.key_env, DEMO_SECRET: "demo_" + secrets.token_urlsafe(24)}
        write_private(paths.keys, dotenv_text(env))
        paths.manifest.write_text(manifest_text(emu.base_url, bound_port, p), encoding="utf-8")
        ui.line(f"Emulator: {emu.base_url} (acme, globex, initech × staging, production: {_fleet_size(emu)} chatbots), "
                f"state in {p['state']}")
        ui.line(f"API keys and the demo secret: {p['keys']} (mode 600; names only here: {', '.join(sorted(env))})")
        ui.line(f"Manifest: {p['manifest']}  (read its header: what each part shows)")
        with patched_environ(env):
            exported, plan, outcome = _pipeline(paths, ui, quiet)
    commands = rerun_commands(paths, bound_port, outcome.summary.run_id, cwd)
    return DemoResult(paths, emu.base_url, bound_port, exported, plan, outcome, commands)
