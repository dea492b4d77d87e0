"""How a Markdown rendering stays under a size limit (GitHub refuses a comment over 65,536
characters): which pieces keep their fullest form, which are shortened, which are only counted.

A rendering is made of atomic pieces (a per-object details section with its code block, a table
row, a name in the folded list, a line of a list), each with its *forms* from fullest to absent,
and their costs in characters.  :func:`fit` walks an ordered list of *steps* (piece ``i`` goes
down to form ``f``) until the total fits the budget.  Nothing is ever cut inside a piece, so no
table row and no code block is broken; what is left out is counted, and the renderer says so.

The order of the steps is the policy (:func:`by_level`): pieces carry a level of importance (0:
trivial, such as a plain create, folded first; 2: what a reviewer must see, such as an update, a
replace or anything blocked, folded last), and within a level the last pieces go first, so what
stays is a prefix of the plan in its own order.  The arithmetic is linear in the number of
pieces: 3,000 changes are fitted without rendering 3,000 candidate documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

TRIVIAL, NOTABLE, IMPORTANT = 0, 1, 2
LEVELS = (TRIVIAL, NOTABLE, IMPORTANT)

Step = tuple[int, int]  # (piece index, form index)
Group = Sequence[Step]  # steps taken together, before the total is checked again


@dataclass(frozen=True)
class Fitted:
    """The form chosen for each piece, and whether the total fits the budget."""

    forms: tuple[int, ...]
    total: int
    fits: bool

    def count(self, form: int, among: Iterable[int] | None = None) -> int:
        """How many pieces (of ``among``, default all) ended at ``form``."""
        idx = range(len(self.forms)) if among is None else among
        return sum(1 for i in idx if self.forms[i] == form)


def cost(text: str) -> int:
    """The characters one piece adds to a document whose pieces are joined by newlines."""
    return len(text) + 1 if text else 0


def fit(costs: Sequence[Sequence[int]], groups: Iterable[Group], budget: int) -> Fitted:
    """Apply the groups of steps in order until the sum of the chosen forms' costs is within
    ``budget``.

    ``costs[i][f]`` is the cost of piece ``i`` in form ``f`` (form 0 the fullest).  A step to a
    form no smaller than the piece's current one is skipped (a piece never grows back).
    """
    forms = [0] * len(costs)
    total = sum(c[0] for c in costs)
    for group in groups:
        if total <= budget:
            break
        for i, f in group:
            if f > forms[i]:
                total += costs[i][f] - costs[i][forms[i]]
                forms[i] = f
    return Fitted(forms=tuple(forms), total=total, fits=total <= budget)


def each(indices: Iterable[int], form: int) -> list[Group]:
    """One group per piece, in the order given."""
    return [[(i, form)] for i in indices]


def by_level(indices: Sequence[int], levels: Sequence[int], form: int, order: Sequence[int] = LEVELS, *,
             whole: bool = False) -> list[Group]:
    """Groups taking the pieces ``indices`` (with their ``levels``) to ``form``: the levels in
    ``order``, within a level from the last piece to the first; ``whole``: a level at once (so
    that a kind of change is shown one way, not half folded)."""
    groups: list[Group] = []
    for level in order:
        steps = [(i, form) for i, lv in reversed(list(zip(indices, levels, strict=True))) if lv == level]
        if whole:
            groups.append(steps)
        else:
            groups.extend([s] for s in steps)
    return groups
