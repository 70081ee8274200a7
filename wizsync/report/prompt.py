"""What the confirmation prompt shows before it asks: the changes per section and every delete.

A protected environment asks "Apply N changed chatbot(s)...?"; counts alone
are not a review. The per-section summary says what kind of change it is,
and each delete is named, because a delete is the change that cannot be
taken back from the server's side (rollback restores from snapshots).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from wizchat_management.models import Operation
from wizchat_management.vocabulary import wire_value

__all__ = ["confirmation_preview"]

_OPS = ("create", "update", "delete")


def confirmation_preview(ops_by_chatbot: Mapping[str, Sequence[Operation]], deletes: Sequence[str]) -> str:
    """``Changes by section:`` lines (chatbots and create/update/delete counts) then ``Deletes (n):`` one per line."""
    sections: dict[str, dict[str, int]] = {}
    chatbots: dict[str, set[str]] = {}
    for name, ops in ops_by_chatbot.items():
        for op in ops:
            kind, section = wire_value(op.op), wire_value(op.section)
            if kind not in _OPS:
                continue
            counts = sections.setdefault(section, dict.fromkeys(_OPS, 0))
            counts[kind] += 1
            chatbots.setdefault(section, set()).add(name)
    if not sections:
        return "Nothing to change."
    width = max(len(s) for s in sections)
    lines = ["Changes by section:"]
    for section in sorted(sections):
        c = sections[section]
        lines.append(f"  {section:<{width}}  {len(chatbots[section])} chatbot(s): "
                     + ", ".join(f"{c[k]} {k}" for k in _OPS if c[k]))
    if deletes:
        lines.append(f"Deletes ({len(deletes)}):")
        lines += [f"  - {d}" for d in deletes]
    return "\n".join(lines)
