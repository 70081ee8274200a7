"""No function of the two packages is more tangled than radon rank C (cyclomatic complexity <= 20).

Issue 13 asks for it: a function past rank C mixes too many decisions to read or test one at a
time. Checked with radon's own API over every module of ``wizsync`` and ``wizchat_management``
(the generated ``models.py`` included: it is flat), so a new offender fails here, named with its
rank, in the pull request that adds it. Ranks: https://radon.readthedocs.io/en/latest/api.html
"""

from __future__ import annotations

from pathlib import Path

from radon.complexity import add_inner_blocks, cc_rank, cc_visit
from radon.visitors import Function

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("wizsync", "wizchat_management")
WORST_RANK = "C"


def offenders() -> list[str]:
    """``path:line name - RANK (complexity)`` for every function or method ranked past ``WORST_RANK``."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            blocks = add_inner_blocks(cc_visit(path.read_text(encoding="utf-8")))
            for block in blocks:
                if isinstance(block, Function) and cc_rank(block.complexity) > WORST_RANK:
                    where = path.relative_to(ROOT).as_posix()
                    found.append(f"{where}:{block.lineno} {block.fullname} - {cc_rank(block.complexity)} ({block.complexity})")
    return sorted(found)


def test_the_checker_sees_every_module_and_flags_a_tangled_function() -> None:
    # The check itself can fail: a function of 21 branches is past rank C, one of 20 is not.
    tangled = "def f(x):\n" + "".join(f"    if x == {i}:\n        return {i}\n" for i in range(20)) + "    return -1\n"
    (block,) = cc_visit(tangled)
    assert (block.complexity, cc_rank(block.complexity)) == (21, "D")
    assert cc_rank(20) == WORST_RANK
    assert sum(1 for p in PACKAGES for _ in (ROOT / p).rglob("*.py")) > 50


def test_no_function_is_ranked_above_c() -> None:
    found = offenders()
    assert not found, "ranked above C; split each into named, smaller pieces:\n" + "\n".join(found)
