"""Live progress of long runs, for people (rich, on a TTY) and for CI logs (plain).

The plan/apply code calls a tiny interface and never cares which one it got::

    reporter = make_reporter(sys.stderr, tty=None, color=None, quiet=False, verbose=False)
    reporter.start(total=300, labels={"acme": 120, "globex": 180}, batches=5, title="apply")
    reporter.batch_started(2, 10)
    reporter.item_done("acme-support", "acme", "applied", "(rev 7) 0.31s")
    reporter.stats("acme", requests=24, throttled=1, retries=0)   # cumulative counts per key label
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
from typing import IO, Callable, Iterable, Mapping, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.text import Text

from .terminal import color_enabled, is_tty, make_console
from .values import safe_text

ATTENTION_STATES = frozenset({"failed", "drifted", "error", "halted"})


class Reporter(Protocol):
    def start(
        self, total: int, labels: Mapping[str, int] | Iterable[str] = (), batches: int | None = None, title: str = ""
    ) -> None: ...
    def batch_started(self, n: int, size: int) -> None: ...
    def item_done(self, name: str, tenant: str, state: str, detail: str = "") -> None: ...
    def stats(self, label: str, requests: int, throttled: int, retries: int) -> None: ...
    def message(self, text: str) -> None: ...
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
        self.started = time.monotonic()

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

    def _line(self, text: str, important: bool = False) -> None:
        if self.quiet and not important:
            return
        self.stream.write(f"[{self.now():%H:%M:%S}] {safe_text(text)}\n")
        self.stream.flush()

    def start(
        self, total: int, labels: Mapping[str, int] | Iterable[str] = (), batches: int | None = None, title: str = ""
    ) -> None:
        self.c = _Counts()
        self.c.total, self.c.batches = total, batches
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

    def stats(self, label: str, requests: int, throttled: int, retries: int) -> None:
        _, t0, x0 = self.c.keys.get(label, (0, 0, 0))
        self.c.keys[label] = (requests, throttled, retries)
        # A 429 or a retry is an event worth a line; plain request counts are not.
        if self.verbose or throttled > t0 or retries > x0:
            self._line(f"{label}: {requests} requests, {throttled} throttled (429), {retries} retries")

    def message(self, text: str) -> None:
        self._line(text, important=True)

    def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        elapsed = time.monotonic() - self.c.started
        self._line(f"done: {self.c.done}/{self.c.total} chatbots ({self.c.states_text() or 'none'}) in {elapsed:.1f}s")
        if self.c.keys:
            self._line(f"keys: {self.c.keys_text()}")


class RichReporter:
    """rich ``Progress``: a run row (batch, done/total, 429s, retries, ETA) and a row per tenant."""

    def __init__(self, console: Console, quiet: bool = False, verbose: bool = False) -> None:
        self.console, self.quiet, self.verbose = console, quiet, verbose
        self.c = _Counts()
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("429s {task.fields[throttled]}  retries {task.fields[retries]}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            refresh_per_second=4,
        )
        self.title = "run"
        self.run_task: TaskID | None = None
        self.rows: dict[str, TaskID] = {}
        self._started = self._finished = False

    def _row(self, label: str, total: int | None = None) -> TaskID:
        if label not in self.rows:
            self.rows[label] = self.progress.add_task(
                f"  {safe_text(label)}", total=total, throttled=0, retries=0
            )
        return self.rows[label]

    def _describe(self) -> str:
        tag = self.c.batch_tag()
        return f"{safe_text(self.title)} {tag}".rstrip()

    def start(
        self, total: int, labels: Mapping[str, int] | Iterable[str] = (), batches: int | None = None, title: str = ""
    ) -> None:
        self.c = _Counts()
        self.c.total, self.c.batches = total, batches
        self.title = title or "run"
        self.run_task = self.progress.add_task(self._describe(), total=total, throttled=0, retries=0)
        for label, n in sorted(_label_totals(labels).items()):
            self._row(label, n)
        if not self._started:
            self.progress.start()
            self._started = True

    def _print(self, text: str, style: str | None = None) -> None:
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

    def stats(self, label: str, requests: int, throttled: int, retries: int) -> None:
        self.c.keys[label] = (requests, throttled, retries)
        self.progress.update(self._row(label), throttled=throttled, retries=retries)
        if self.run_task is not None:
            t, x = self.c.totals()
            self.progress.update(self.run_task, throttled=t, retries=x)

    def message(self, text: str) -> None:
        self._print(text)

    def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
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
        # Cursor movement needs a terminal even when colours are off.
        live = Console(file=stream, force_terminal=True, color_system=None, highlight=False, emoji=False)
    return RichReporter(live, quiet=quiet, verbose=verbose)
