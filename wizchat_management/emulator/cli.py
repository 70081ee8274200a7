"""``wizsync emulator`` / ``python -m wizchat_management.emulator``: run the emulator in the foreground."""

from __future__ import annotations

import click

from .engine import is_loopback_host
from .ratelimit import LIMITER_KINDS, RETRY_AFTER_FORMS


@click.command("emulator", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (loopback only unless --allow-remote).")
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535), help="Port (0 = any free port).")
@click.option("--state", "state_path", type=click.Path(dir_okay=False), help="SQLite file: keep everything across restarts.")
@click.option("--seed", default=None, help="'demo' or a seed file (YAML); used only when the state is empty.")
@click.option("--keys-out", type=click.Path(dir_okay=False), help="Write the API keys as a dotenv file (mode 600).")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), help="Per-key rate limit (requests/s); default unlimited.")
@click.option("--burst", type=click.IntRange(min=1), help="Per-key bucket capacity (default: the rate, rounded up).")
@click.option("--limiter", type=click.Choice(LIMITER_KINDS), default=None,
              help="How a limit counts: token-bucket (default), fixed-window (burst requests per burst/rate s, "
                   "aligned), sliding-window (burst requests in any trailing burst/rate s).")
@click.option("--no-rate-headers", is_flag=True,
              help="Send no X-RateLimit-* headers and no details.retryAfterMs (a server that tells nothing).")
@click.option("--retry-after", "retry_after", type=click.Choice(RETRY_AFTER_FORMS), default=None,
              help="Retry-After of a 429: seconds (default), http-date (RFC 9110) or none.")
@click.option("--org-rate", type=click.FloatRange(min=0, min_open=True),
              help="One limit (requests/s) shared by every key of an organization, on top of --rate.")
@click.option("--org-burst", type=click.IntRange(min=1), help="Burst of --org-rate (default: the rate, rounded up).")
@click.option("--latency-ms", default=0.0, type=click.FloatRange(min=0), help="Latency added to every API answer.")
@click.option("--jitter-ms", default=0.0, type=click.FloatRange(min=0), help="Plus a uniform random 0..jitter.")
@click.option("--error-rate", default=0.0, type=click.FloatRange(0, 1), help="Probability of a 500/503 answer.")
@click.option("--drop-rate", default=0.0, type=click.FloatRange(0, 1), help="Probability of dropping the connection.")
@click.option("--lose-after-apply-rate", default=0.0, type=click.FloatRange(0, 1),
              help="Probability that an apply (not a dry run) is carried out, then its answer is lost.")
@click.option("--ignore-dry-run", is_flag=True,
              help="Act as a gateway that drops the dryRun query parameter: every dry-run is carried out.")
@click.option("--fault-seed", default=0, type=int, help="Seed of the fault RNG (reproducible runs).")
@click.option("--admin-token", help="Token of the /_emulator/ admin API (default: generated and printed).")
@click.option("--allow-remote", is_flag=True, help="Allow binding a non-loopback interface.")
def emulator_command(
    host: str, port: int, state_path: str | None, seed: str | None, keys_out: str | None, rate: float | None,
    burst: int | None, limiter: str | None, no_rate_headers: bool, retry_after: str | None, org_rate: float | None,
    org_burst: int | None, latency_ms: float, jitter_ms: float, error_rate: float, drop_rate: float,
    lose_after_apply_rate: float, ignore_dry_run: bool, fault_seed: int, admin_token: str | None, allow_remote: bool,
) -> None:
    """Run a local WizChat Management API emulator (stateful, on loopback).

    \b
    Examples:
      wizsync emulator --seed demo --keys-out .env.emulator --state emu.db --rate 10 --burst 20
      wizsync emulator --seed demo --rate 2 --limiter fixed-window --no-rate-headers --retry-after none
      python -m wizchat_management.emulator --seed fleet.yaml --org-rate 8 --lose-after-apply-rate 0.1
    """
    from .seed import SeedError, write_keys_file
    from .server import bind_socket, make_context, serve

    if not allow_remote and not is_loopback_host(host):
        raise click.ClickException(f"refusing to bind {host}: not a loopback address (pass --allow-remote to insist)")
    if burst is not None and rate is None:
        raise click.ClickException("--burst needs --rate")
    if org_burst is not None and org_rate is None:
        raise click.ClickException("--org-burst needs --org-rate")
    try:
        ctx = make_context(
            seed=seed, state_path=state_path, rate=rate, burst=burst, latency_ms=latency_ms, jitter_ms=jitter_ms,
            error_rate=error_rate, drop_rate=drop_rate, fault_seed=fault_seed, admin_token=admin_token,
            limiter=limiter, rate_headers=False if no_rate_headers else None, retry_after=retry_after,
            org_rate=org_rate, org_burst=org_burst, lose_after_apply_rate=lose_after_apply_rate,
            ignore_dry_run=ignore_dry_run,
        )
    except (SeedError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"WizChat emulator listening on http://{shown}:{bound}")
    click.echo(f"Admin token: {ctx.admin_token}  (admin API under /_emulator/)")
    keys = list(ctx.state.keys.values())
    if keys_out:
        write_keys_file(keys_out, keys)
        names = [k.env_name for k in keys if k.env_name]
        click.echo(f"API keys written to {keys_out}: {', '.join(names) or '(none with an envName)'}")
    else:
        click.echo(f"{len(keys)} API key(s) loaded; use --keys-out FILE to write them as a dotenv file")
    summary = f"{len(ctx.state.orgs)} organization(s), {len(ctx.state.chatbots)} chatbot(s)"
    click.echo(f"State: {summary}" + (f", persisted to {state_path}" if state_path else ", in memory"), nl=True)
    serve(ctx, sock)
