"""Live progress of long runs, for people (rich, on a TTY) and for CI logs (plain).

The plan/apply code calls a tiny interface and never cares which one it got::

    reporter = make_reporter(sys.stderr, tty=None, color=None, quiet=False, verbose=False)
    reporter.start(total=300, labels={"acme": 120, "globex": 180}, batches=5, title="apply")
    reporter.batch_started(2, 10)
    reporter.item_done("acme-support", "acme", "applied", "(rev 7) 0.31s")
    reporter.keys({"acme/production": KeyState(requests=24, throttled=1)})   # cumulative, per key label
    reporter.message("halting: failure budget exceeded")
    reporter.finish()

On a TTY: one rich progress row for the run (batch n/N, done/total, 429s,
retries, ETA) and one per tenant. Otherwise one line per event, timestamped,
with no control character: ``[12:00:01] batch 2/5 acme-support applied (rev 7) 0.31s``.
Human text only: it goes to stderr; ``--json`` goes to stdout elsewhere.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Callable, Iterable, Mapping, Protocol

if TYPE_CHECKING:  # rich is imported by the live reporter only: a --json or CI run never needs it
    from rich.console import Console
    from rich.progress import TaskID

from .terminal import color_enabled, is_tty, make_console
from .values import safe_text

ATTENTION_STATES = frozenset({"failed", "drifted", "error", "halted"})


# Plain output: a progress line at most this often (seconds) while a phase runs.
PLAIN_EVERY = 5.0
# Request events -v prints as they happen (the engine's kinds, wizsync.engine.executor.OnEvent).
VERBOSE_EVENTS = frozenset({"retry", "throttled", "wait_capped", "waiting"})
# Shown without -v, and under --quiet: the run stopped itself (engine/retry.py, halts_run).
ALWAYS_SHOWN = frozenset({"halted"})


@dataclass(frozen=True)
class KeyState:
    """One API key as the live view shows it (from ``Executor.stats()``)."""

    requests: int = 0
    throttled: int = 0  # 429 answers
    retries: int = 0
    pace: float | None = None  # requests/s the limiter allows now
    waiting: str | None = None  # why the key sends nothing now: rate, retry-after, ...
    wait_seconds: float = 0.0

    def text(self) -> str:
        parts = [f"{self.requests} req", f"{self.throttled}×429", f"{self.retries} retries"]
        if self.pace is not None:
            parts.append(f"{self.pace:g}/s")
        if self.waiting is not None and self.wait_seconds >= 0.05:
            parts.append(f"waiting {self.wait_seconds:.1f}s ({self.waiting})")
        return ", ".join(parts)


def key_states(stats: Mapping[str, Mapping[str, Any]]) -> dict[str, KeyState]:
    """``Executor.stats()`` → the live view's per-key state (a pure function)."""
    out = {}
    for label, st in stats.items():
        waiting = st.get("waiting") or None
        out[label] = KeyState(
            requests=int(st.get("requests") or 0), throttled=int(st.get("throttled") or 0),
            retries=int(st.get("retries") or 0), pace=st.get("rate"),
            waiting=waiting["reason"] if waiting else None, wait_seconds=float(waiting["seconds"]) if waiting else 0.0,
        )
    return out


def event_line(label: str, context: str | None, kind: str, detail: Mapping[str, Any]) -> str | None:
    """The -v line of one request event (a retry, a 429 wait, a capped wait, a key waiting), or None."""
    who = f"{label}{f' {context}' if context else ''}"
    if kind == "retry":
        return f"{who}: retry after attempt {detail.get('attempt')} ({detail.get('error')}), waiting {detail.get('wait')}s"
    if kind == "throttled":
        after = detail.get("retry_after")
        return (f"{who}: 429 on attempt {detail.get('attempt')}, waiting {detail.get('wait')}s"
                f"{f' (Retry-After {after})' if after is not None else ''}")
    if kind == "wait_capped":
        return (f"{label}: the server asked to wait {detail.get('asked')}s ({detail.get('source')}); "
                f"waiting {detail.get('capped_to')}s at most")
    if kind == "waiting":
        return f"{label}: waiting {detail.get('seconds')}s ({detail.get('reason')})"
    if kind == "halted":
        return f"{who}: {detail.get('error')}; the run is stopped: no further request is sent"
    return None


class Reporter(Protocol):
    """What plan/apply/resume/rollback tell the person watching (PlainReporter, RichReporter, LoggingReporter)."""

    def start(
        self, total: int, labels: Mapping[str, int] | Iterable[str] = (), batches: int | None = None, title: str = ""
    ) -> None: ...
    def phase(self, title: str, total: int | None = None) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def batch_started(self, n: int, size: int) -> None: ...
    def item_done(self, name: str, tenant: str, state: str, detail: str = "") -> None: ...
    def keys(self, states: Mapping[str, KeyState]) -> None: ...
    def request_event(self, label: str, context: str | None, kind: str, detail: Mapping[str, Any]) -> None: ...
    def message(self, text: str) -> None: ...
    def pause(self) -> None: ...
    def unpause(self) -> None: ...
    def finish(self) -> None: ...


def _label_totals(labels: Mapping[str, int] | Iterable[str]) -> dict[str, int | None]:
    """``{tenant: count}``, or one tenant per chatbot (counted here)."""
    if isinstance(labels, Mapping):
        return {str(k): int(v) for k, v in labels.items()}
    totals: dict[str, int | None] = {}
    for k in labels:
        totals[str(k)] = (totals.get(str(k)) or 0) + 1
    return totals


class _Counts:
    """What both reporters keep: done/total, states, per-label stats, batch."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.batches: int | None = None
        self.batch: int | None = None
        self.states: dict[str, int] = {}
        self.keys: dict[str, tuple[int, int, int]] = {}
        self.key_states: dict[str, KeyState] = {}
        self.started = time.monotonic()
        # The phase before the rollout (loading the fleet, the up-front plan), if one is running.
        self.phase: str | None = None
        self.phase_total: int | None = None
        self.phase_done = 0
        self.phase_started = self.started

    def progress_text(self, now: float) -> str:
        """``plan production: 120/300 (40%), ~12s left; acme/production waiting 2.0s (retry-after)``."""
        if self.phase is not None:
            title, done, total, since = self.phase, self.phase_done, self.phase_total, self.phase_started
        else:
            title, done, total, since = "run", self.done, self.total, self.started
        if total:
            text = f"{title}: {done}/{total}"
        else:  # nothing to count yet (the fleet's listings): time and requests so far
            text = f"{title}: {now - since:.0f}s, {sum(st.requests for st in self.key_states.values())} requests"
        if total and done:
            left = (now - since) / done * (total - done)
            text += f" ({100 * done // total}%), ~{left:.0f}s left"
        busy = [f"{label} {st.text()}" for label, st in sorted(self.key_states.items())
                if st.waiting not in (None, "rate") or st.throttled or st.retries][:5]
        return text + ("; " + "; ".join(busy) if busy else "")

    def batch_tag(self) -> str:
        if self.batch is None:
            return ""
        return f"batch {self.batch}/{self.batches}" if self.batches else f"batch {self.batch}"

    def states_text(self) -> str:
        return ", ".join(f"{s} {n}" for s, n in sorted(self.states.items()))

    def keys_text(self) -> str:
        return "; ".join(
            f"{label} {r} requests, {t} throttled (429), {x} retries" for label, (r, t, x) in sorted(self.keys.items())
        )

    def totals(self) -> tuple[int, int]:
        return sum(t for _, t, _ in self.keys.values()), sum(x for _, _, x in self.keys.values())


class PlainReporter:
    """One timestamped line per event; no control characters, ever."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        quiet: bool = False,
        verbose: bool = False,
        now: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet, self.verbose, self.now = quiet, verbose, now
        self.c = _Counts()
        self._finished = False
        self._last = time.monotonic()

    def _line(self, text: str, important: bool = False) -> None:
        if self.quiet and not important:
            return
        self.stream.write(f"[{self.now():%H:%M:%S}] {safe_text(text)}\n")
        self.stream.flush()

    def start(
        self, total: int, labels: Mapping[str, int] | Iterable[str] = (), batches: int | None = None, title: str = ""
    ) -> None:
        keys, key_states = self.c.keys, self.c.key_states
        self.c = _Counts()
        self.c.keys, self.c.key_states = keys, key_states
        self.c.total, self.c.batches = total, batches
        self._last = time.monotonic()
        parts = [f"{total} chatbots"]
        n_labels = len(_label_totals(labels))
        if n_labels:
            parts.append(f"{n_labels} tenants")
        if batches:
            parts.append(f"{batches} batches")
        self._line(f"{title or 'run'}: " + ", ".join(parts))

    def batch_started(self, n: int, size: int) -> None:
        self.c.batch = n
        self._line(f"{self.c.batch_tag()} started: {size} chatbots")

    def item_done(self, name: str, tenant: str, state: str, detail: str = "") -> None:
        self.c.done += 1
        self.c.states[state] = self.c.states.get(state, 0) + 1
        tag = self.c.batch_tag()
        text = " ".join(x for x in (tag, name, state, detail) if x)
        self._line(text, important=state in ATTENTION_STATES)
        self._maybe_progress()

    def _maybe_progress(self) -> None:
        now = time.monotonic()
        if now - self._last >= PLAIN_EVERY:
            self._last = now
            self._line(self.c.progress_text(now))

    def phase(self, title: str, total: int | None = None) -> None:
        self.c.phase, self.c.phase_total, self.c.phase_done = title, total, 0
        self.c.phase_started = self._last = time.monotonic()
        self._line(f"{title}: started" + (f" ({total})" if total else ""))

    def advance(self, n: int = 1) -> None:
        self.c.phase_done += n
        self._maybe_progress()

    def keys(self, states: Mapping[str, KeyState]) -> None:
        self.c.key_states = dict(states)
        for label, st in states.items():
            self.c.keys[label] = (st.requests, st.throttled, st.retries)
        self._maybe_progress()

    def request_event(self, label: str, context: str | None, kind: str, detail: Mapping[str, Any]) -> None:
        if kind in ALWAYS_SHOWN or (self.verbose and kind in VERBOSE_EVENTS):
            line = event_line(label, context, kind, detail)
            if line:
                self._line(line, important=kind in ALWAYS_SHOWN)

    def message(self, text: str) -> None:
        self._line(text, important=True)

    def pause(self) -> None:
        """Nothing to pause: plain lines never redraw (a prompt reads its own line)."""

    def unpause(self) -> None:
        pass

    def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        elapsed = time.monotonic() - self.c.started
        self._line(f"done: {self.c.done}/{self.c.total} chatbots ({self.c.states_text() or 'none'}) in {elapsed:.1f}s")
        if self.c.keys:
            self._line(f"keys: {self.c.keys_text()}")


def _info(throttled: int, retries: int) -> str:
    return f"429s {throttled}  retries {retries}"


class RichReporter:
    """rich ``Progress``: a bar per phase (fleet, up-front plan), a run row (batch, done/total, 429s,
    retries, ETA), a row per tenant and one per API key (requests, 429s, retries, pace, and why and
    how long it is waiting)."""

    def __init__(self, console: Console, quiet: bool = False, verbose: bool = False) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console, self.quiet, self.verbose = console, quiet, verbose
        self.c = _Counts()
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            refresh_per_second=4,
        )
        self.title = "run"
        self.run_task: TaskID | None = None
        self.phase_task: TaskID | None = None
        self.rows: dict[str, TaskID] = {}
        self.key_rows: dict[str, TaskID] = {}
        self._started = self._finished = False

    def _ensure_started(self) -> None:
        if not self._started:
            self.progress.start()
            self._started = True

    def _row(self, label: str, total: int | None = None) -> TaskID:
        if label not in self.rows:
            self.rows[label] = self.progress.add_task(f"  {safe_text(label)}", total=total, info=_info(0, 0))
        return self.rows[label]

    def _describe(self) -> str:
        tag = self.c.batch_tag()
        return f"{safe_text(self.title)} {tag}".rstrip()

    def _end_phase(self) -> None:
        if self.phase_task is not None:
            task = self.progress.tasks[self.phase_task]
            self.progress.update(self.phase_task, total=task.completed, completed=task.completed)
            self.phase_task = None

    def phase(self, title: str, total: int | None = None) -> None:
        self._end_phase()
        self.c.phase, self.c.phase_total, self.c.phase_done = title, total, 0
        self.phase_task = self.progress.add_task(safe_text(title), total=total, info="")
        self._ensure_started()

    def advance(self, n: int = 1) -> None:
        self.c.phase_done += n
        if self.phase_task is not None:
            self.progress.advance(self.phase_task, n)

    def start(
        self, total: int, labels: Mapping[str, int] | Iterable[str] = (), batches: int | None = None, title: str = ""
    ) -> None:
        self._end_phase()
        keys, key_states = self.c.keys, self.c.key_states
        self.c = _Counts()
        self.c.keys, self.c.key_states = keys, key_states
        self.c.total, self.c.batches = total, batches
        self.title = title or "run"
        self.run_task = self.progress.add_task(self._describe(), total=total, info=_info(0, 0))
        for label, n in sorted(_label_totals(labels).items()):
            self._row(label, n)
        self._ensure_started()

    def _print(self, text: str, style: str | None = None) -> None:
        from rich.text import Text

        self.progress.console.print(Text(safe_text(text), style=style or ""))

    def batch_started(self, n: int, size: int) -> None:
        self.c.batch = n
        if self.run_task is not None:
            self.progress.update(self.run_task, description=self._describe())
        if self.verbose:
            self._print(f"{self.c.batch_tag()} started: {size} chatbots", "bold")

    def item_done(self, name: str, tenant: str, state: str, detail: str = "") -> None:
        self.c.done += 1
        self.c.states[state] = self.c.states.get(state, 0) + 1
        if self.run_task is not None:
            self.progress.advance(self.run_task)
        self.progress.advance(self._row(tenant))
        if state in ATTENTION_STATES or self.verbose:
            line = " ".join(x for x in (self.c.batch_tag(), name, state, detail) if x)
            self._print(line, "bold red" if state in ATTENTION_STATES else None)

    def _totals_to_run_row(self) -> None:
        if self.run_task is not None:
            t, x = self.c.totals()
            self.progress.update(self.run_task, info=_info(t, x))

    def keys(self, states: Mapping[str, KeyState]) -> None:
        self.c.key_states = dict(states)
        for label, st in sorted(states.items()):
            self.c.keys[label] = (st.requests, st.throttled, st.retries)
            if label not in self.key_rows:
                self.key_rows[label] = self.progress.add_task(f"  key {safe_text(label)}", total=None, info="")
            self.progress.update(self.key_rows[label], info=safe_text(st.text()))
        # A tenant's row counts the 429s and retries of its keys (labels "tenant/env").
        by_tenant: dict[str, tuple[int, int]] = {}
        for label, (_, throttled, retries) in self.c.keys.items():
            t0, x0 = by_tenant.get(label.split("/", 1)[0], (0, 0))
            by_tenant[label.split("/", 1)[0]] = (t0 + throttled, x0 + retries)
        for tenant, (throttled, retries) in by_tenant.items():
            if tenant in self.rows:
                self.progress.update(self.rows[tenant], info=_info(throttled, retries))
        self._totals_to_run_row()
        self._ensure_started()

    def request_event(self, label: str, context: str | None, kind: str, detail: Mapping[str, Any]) -> None:
        if kind in ALWAYS_SHOWN or (self.verbose and kind in VERBOSE_EVENTS):
            line = event_line(label, context, kind, detail)
            if line:
                self._print(line, "red" if kind in ALWAYS_SHOWN else "yellow")

    def pause(self) -> None:
        """Stop redrawing (a prompt must be seen, and read, on the terminal); ``unpause`` goes on."""
        if self._started and not self._finished:
            self.progress.stop()

    def unpause(self) -> None:
        if self._started and not self._finished:
            self.progress.start()

    def message(self, text: str) -> None:
        self._print(text)

    def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._end_phase()
        if self._started:
            self.progress.refresh()
            self.progress.stop()
        if not self.quiet:
            elapsed = time.monotonic() - self.c.started
            self._print(f"done: {self.c.done}/{self.c.total} chatbots ({self.c.states_text() or 'none'}) in {elapsed:.1f}s")
            if self.c.keys:
                self._print(f"keys: {self.c.keys_text()}", "dim")


def make_reporter(
    stream: IO[str] | None = None,
    tty: bool | None = None,
    color: bool | None = None,
    quiet: bool = False,
    verbose: bool = False,
    console: Console | None = None,
) -> RichReporter | PlainReporter:
    """The reporter for ``stream`` (default stderr).

    ``tty``/``color`` None = detect (``NO_COLOR``, ``TERM=dumb``, isatty). Live
    progress needs a TTY and not ``quiet``; otherwise plain lines. ``console``
    (a rich Console, e.g. a test one) forces the live reporter on it.
    """
    stream = stream if stream is not None else sys.stderr
    if console is not None:
        return RichReporter(console, quiet=quiet, verbose=verbose)
    tty = is_tty(stream) if tty is None else tty
    if not tty or quiet:
        return PlainReporter(stream, quiet=quiet, verbose=verbose)
    color = color_enabled(stream, tty=True) if color is None else color
    live = make_console(stream, color=color)
    if not color:
        from rich.console import Console

        # Cursor movement needs a terminal even when colours are off.
        live = Console(file=stream, force_terminal=True, color_system=None, highlight=False, emoji=False)
    return RichReporter(live, quiet=quiet, verbose=verbose)
