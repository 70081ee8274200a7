"""How wizsync shows plans and results to people and machines.

Pure formatting: nothing here touches the network or the journal; callers read and pass the data.

- :mod:`.model`    — :class:`ChatbotReport`, the one input record every renderer takes.
- :mod:`.values`   — value display: elision, control-character escaping, secret masking.
- :mod:`.terminal` — colour decision (``--no-color``, ``NO_COLOR``, TTY) and consoles.
- :mod:`.diff`     — per-chatbot ``+ ~ -`` diffs.
- :mod:`.summary`  — totals, deletes, per-key request counts, the apply-time estimate.
- :mod:`.jsonout`  — the stable ``--json`` document (schema in its docstring).
- :mod:`.progress` — live progress (rich on a TTY, one line per event otherwise).
- :mod:`.fleetview` — the runs of several journals (shards) as one fleet, for ``runs``/``show``.

The last room before the commands: it may import every library package but
``run`` and ``commands``; nothing upstream imports it at run time.
"""

from .model import ChatbotReport

__all__ = ["ChatbotReport"]
