"""The pull-request rendering of a plan (and its step-summary twin): summary and money first, a
table, then a collapsed diff per object; or, when that is shorter, a heading per client and per
catalog package that several changes share (``render/groups.py``), each with its table and diffs.

GitHub refuses comments over 65,536 characters: the rendering stays under ``limit`` by the
policy of ``fold.py``: trivial changes (plain creates, imports without changes, moves) are folded
first into one collapsed list of names, then the details of the others (their table row stays),
then names are only counted; updates, replaces and anything blocked keep their row longest.
Nothing is cut inside a row or a code block, and a note at the top says what was folded.

In the diff blocks, lines start with their sign so that GitHub colours them: ``+`` green, ``-``
red, and updates as ``!`` (orange, as Atlantis rewrites Terraform's ``~``); imports and moves
(``<=``, ``->``) get a leading space, so they are not coloured as deletions.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

from reconciler.plan.document import Plan
from reconciler.plan.operations import Operation
from reconciler.render import fold
from reconciler.render.blocks import Block, block, label, named
from reconciler.render.common import legend, money_lines, scope_line, summary_line, target_line, unread_line
from reconciler.render.groups import Group, group_name, group_operations
from reconciler.render.text import op_lines

LIMIT = 65_000           # GitHub's comment limit is 65,536 characters
SUMMARY_LIMIT = 1_000_000  # a job's step summary may hold 1 MiB (counted in UTF-8 bytes there)
MARKER = "<!-- reconciler-plan -->"
RESERVE = 2_500          # the wrappers and notes added around the fitted pieces
MONEY_OPEN = 10          # more payment requests than this are listed in a collapsed block

# The forms of one operation's piece, fullest first (fold.fit's form indices).
DETAILS, ROW, NAME, COUNTED = 0, 1, 2, 3
SHOWN, LEFT_OUT = 0, 1  # the forms of a list line


@dataclass
class _Pieces:
    """The atomic pieces of a rendering, by where they go."""

    costs: list[tuple[int, ...]]
    texts: list[tuple[str, ...]]

    def add(self, *forms: str) -> int:
        self.texts.append(forms)
        self.costs.append(tuple(fold.cost(t) for t in forms))
        return len(self.texts) - 1


def render_markdown(plan: Plan, limit: int = LIMIT, *, marker: bool = True, in_bytes: bool = False) -> str:
    """The Markdown of ``plan``, at most ``limit`` characters (``in_bytes``: UTF-8 bytes, as a
    step summary is measured; ``marker``: the hidden line the plan workflow finds its comment by).

    Laid out flat (one table of every change), or grouped under a heading per client and per
    catalog package (``render/groups.py``) when that is shorter: both layouts are fitted to the
    limit, and the grouped one is used when it keeps at least as much in full view and its
    document is shorter (no group at all: flat)."""
    flat, grouped = layouts(plan, limit, marker=marker, in_bytes=in_bytes)
    better = grouped is not None and grouped.folded <= flat.folded and grouped.size < flat.size
    return grouped.doc if grouped is not None and better else flat.doc


@dataclass(frozen=True)
class Layout:
    """One layout of a plan fitted to a limit."""

    doc: str
    size: int  # in characters, or UTF-8 bytes for a step summary
    folded: tuple[int, ...]  # (changes counted, listed by name, reduced to their row): fewer is better


def layouts(plan: Plan, limit: int = LIMIT, *, marker: bool = True,
            in_bytes: bool = False) -> tuple[Layout, Layout | None]:
    """The flat layout of ``plan`` and the grouped one (None: no change shares a client or a
    catalog package with another), each fitted to ``limit``."""
    blocks = [named(block(op), plan.names) for op in plan.operations]
    details = [_details(op, b) for op, b in zip(plan.operations, blocks, strict=True)]
    flat = _render(plan, limit, marker, in_bytes, None, blocks, details)
    found, ungrouped = group_operations(plan)
    if not found:
        return flat, None
    return flat, _render(plan, limit, marker, in_bytes, (found, ungrouped), blocks, details)


def _render(plan: Plan, limit: int, marker: bool, in_bytes: bool, grouping: tuple[list[Group], list[int]] | None,
            blocks: list[Block], details: list[str]) -> Layout:
    """One layout of ``plan`` fitted to ``limit``: flat (``grouping`` None) or grouped, from the
    operations' ``blocks`` and their ``details`` sections (both layouts share them)."""
    errors_at = {p.address for p in plan.errors}
    pieces = _Pieces([], [])
    money = money_lines(plan, markdown=True)
    money_items = [pieces.add(line, "") for line in money[1:]]
    replaces = [pieces.add(f"> - `{op.address}`: {_escape(op.reason or '')}", "")
                for op in plan.operations if op.action == "replace"]
    errors = [pieces.add(f"> - `{p.address}`: {_escape(p.message)}", "") for p in plan.errors]
    warnings = [pieces.add(f"- :warning: `{p.address}`: {_escape(p.message)}", "")
                for p in plan.problems if p.severity == "warning"]
    # The operations in display order (group by group in a grouped layout): the fold policy
    # folds the last first, so what stays is a prefix of what is shown.
    if grouping is None:
        order = list(range(len(plan.operations)))
        sections: list[tuple[Group | None, list[int]]] = [(None, order)]
    else:
        sections = [(g, list(g.members)) for g in grouping[0]] + [(None, grouping[1])]
        order = [i for _, idx in sections for i in idx]
    in_group = {i: g for g, idx in sections for i in idx}
    piece_of: dict[int, int] = {}
    for i in order:
        op, b = plan.operations[i], blocks[i]
        shown_b = _without_subject(op, b, in_group[i])
        row = _row(b)
        section = details[i] if shown_b is b else _details(op, shown_b)
        piece_of[i] = pieces.add(section + "\n" + row, row, _name(b), "")
    ops = [piece_of[i] for i in order]
    levels = [_level(plan.operations[i], blocks[i], errors_at) for i in order]
    unmanaged = [pieces.add(f"- {_escape(u.name)} (`{u.id}`){'' if u.active else ' (inactive)'}", "")
                 for u in plan.unmanaged]

    groups = [*fold.by_level(ops, levels, NAME, [fold.TRIVIAL], whole=True),
              *fold.by_level(ops, levels, ROW, [fold.NOTABLE], whole=True),
              *fold.by_level(ops, levels, ROW, [fold.IMPORTANT], whole=True),
              *fold.each(reversed(unmanaged), LEFT_OUT),
              *fold.by_level(ops, levels, COUNTED, [fold.TRIVIAL]),
              *fold.each(reversed(money_items), LEFT_OUT),
              *fold.by_level(ops, levels, NAME, [fold.NOTABLE, fold.IMPORTANT]),
              *fold.by_level(ops, levels, COUNTED, [fold.NOTABLE, fold.IMPORTANT]),
              *fold.each(reversed(warnings + replaces + errors), LEFT_OUT)]

    def layout(budget: int) -> tuple[str, fold.Fitted]:
        chosen = fold.fit(pieces.costs, groups, budget)
        text = pieces.texts

        def shown(idx: list[int], form: int = SHOWN) -> list[str]:
            return [text[i][form] for i in idx if chosen.forms[i] == form]

        def more(idx: list[int], prefix: str = "- ") -> list[str]:
            n = chosen.count(LEFT_OUT, idx)
            return [f"{prefix}... and {n} more: the saved plan (JSON) has them all."] if n else []

        head = [MARKER] if marker else []
        head += ["## reconciler plan", "", f"**{summary_line(plan)}**", "", f"**{_escape(money[0])}**"]
        if len(money_items) > MONEY_OPEN:
            head += ["", f"<details><summary>The {len(money_items)} payment requests, one per client package "
                         "created</summary>", "", *shown(money_items), *more(money_items), "", "</details>"]
        else:
            head += [*shown(money_items), *more(money_items)]
        head.append("")
        note = _fold_note(chosen, ops, limit)
        if note:
            head += [note, ""]
        for extra in (scope_line(plan), unread_line(plan)):
            if extra:
                head += [_escape(extra), ""]
        head.append(target_line(plan) + ".")
        if not plan.refreshed:
            head += ["", "> [!NOTE]\n> Planned from state alone (`--no-refresh`): "
                         "changes made in vcita are not visible."
                         + (" Nothing was looked up in vcita, so apply refuses this plan: it creates objects that a "
                            "lost or older state could create twice. Plan without `--no-refresh` to apply."
                            if plan.unchecked_creates else "")]
        if replaces:
            head += ["", "> [!WARNING]",
                     f"> {len(replaces)} client package(s) must be **replaced**: a new client package opens a new "
                     "payment request for the client, and the old one stays in vcita.",
                     *shown(replaces), *more(replaces, "> - ")]
        if errors:
            head += ["", "> [!CAUTION]", f"> {len(errors)} error(s) must be fixed before this plan can be applied:",
                     *shown(errors), *more(errors, "> - ")]
        for line in [*shown(warnings), *more(warnings)]:
            head += ["", line]
        body: list[str] = []
        symbols = "Symbols: " + " · ".join(f"`{sym}` {_escape(meaning)}" for sym, meaning in legend(plan)) + "."
        tabled = [(g, len(members), [piece_of[i] for i in members if chosen.forms[piece_of[i]] in (DETAILS, ROW)])
                  for g, members in sections]
        tabled = [(g, n, idx) for g, n, idx in tabled if idx]
        if tabled and grouping is not None:
            body += ["", symbols]
        for g, n, idx in tabled:
            if grouping is not None:
                body += ["", _heading(plan, g, len(tabled) > 1, n)]
            body += ["", "| | address | action | remote id | fields |", "|---|---|---|---|---|",
                     *(text[i][ROW] for i in idx)]
            if grouping is None:
                body += ["", symbols]
            diffs = [text[i][DETAILS].rsplit("\n", 1)[0] for i in idx if chosen.forms[i] == DETAILS]
            if diffs:
                body += ["", *diffs]
        names = shown(ops, NAME)
        unnamed = _tally(plan.operations[i].action for i in order if chosen.forms[piece_of[i]] == COUNTED)
        if names:
            also = [f"- ... and {unnamed}: the saved plan (JSON) has them all."] if unnamed else []
            body += ["", f"<details><summary>{len(names)} more change(s), by name (their details are in the saved "
                         "plan)</summary>", "", *names, *also, "", "</details>"]
        elif unnamed:
            body += ["", f"Not listed here: {unnamed}; the saved plan (JSON) has them all."]
        if unmanaged:
            body += ["", f"<details><summary>{len(unmanaged)} unmanaged remote catalog package(s), never touched"
                         "</summary>", "", *shown(unmanaged), *more(unmanaged), "", "</details>"]
        return "\n".join(head + body).rstrip() + "\n", chosen

    def size(text: str) -> int:
        return len(text.encode()) if in_bytes else len(text)

    budget = limit - RESERVE
    doc, chosen = layout(budget)
    while size(doc) > limit and budget > 0:  # wrappers (or wide characters) took more: fold further
        budget -= max(size(doc) - limit, RESERVE)
        doc, chosen = layout(budget)
    if size(doc) > limit:
        doc = _bare(plan, limit, marker)
        return Layout(doc, size(doc), (len(ops), 0, 0))
    return Layout(doc, size(doc), tuple(chosen.count(f, ops) for f in (COUNTED, NAME, ROW)))


def _heading(plan: Plan, g: Group | None, others: bool, count: int) -> str:
    """The heading of one group of ``count`` changes (``g`` None: the changes in no group,
    ``others``: listed after groups)."""
    if g is None:
        return f"#### {'Other changes' if others else 'Changes'} ({count})"
    what = "Client" if g.kind == "client" else "Catalog package"
    name = group_name(plan, g)
    shown = f"{_heading_text(name)} " if name else ""
    key = f"`{g.key}`" if _PLAIN_ID.fullmatch(g.key) else _heading_text(g.key)  # an id from vcita, too
    return f"#### {what} {shown}({key}): {count} change(s)"


_PLAIN_ID = re.compile(r"[A-Za-z0-9_.@+-]{1,80}")


def _heading_text(name: str) -> str:
    # A name from vcita (or a manifest) as the text of a heading: one line (label), none of
    # Markdown's punctuation interpreted (a link, emphasis, a code span, a table), no HTML.
    escaped = re.sub(r"([\\`*_\[\]()#!~|])", r"\\\1", " ".join(label(name).split()))
    return escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _without_subject(op: Operation, b: Block, g: Group | None) -> Block:
    """A create's block without the row its group's heading already says (the client, or the
    catalog package): what a grouped layout saves."""
    if g is None or op.action != "create" or op.kind != "ClientPackage":
        return b
    key = "client_id" if g.kind == "client" else "package_id"
    return replace(b, rows=tuple(r for r in b.rows if r[1] != key))


def _level(op: Operation, b: Block, errors_at: set[str]) -> int:
    """How much a reviewer needs to see this operation (fold.TRIVIAL is folded first)."""
    if b.blocked or op.address in errors_at or op.action in ("update", "replace"):
        return fold.IMPORTANT
    if op.action == "import" and b.fields:
        return fold.IMPORTANT  # an adoption that also changes a field
    if op.action in ("create", "import", "move", "readopt", "set_credits"):
        return fold.TRIVIAL
    return fold.NOTABLE  # archive, resolve


def _row(b: Block) -> str:
    fields = ", ".join(f"`{_code(path)}`" for path in b.fields[:6])
    if len(b.fields) > 6:
        fields += f" (+{len(b.fields) - 6})"
    action = b.action.replace('_', ' ')
    return f"| `{b.symbol}` | `{_code(b.address)}` | {action} | {_escape(b.remote_id or '')} | {fields} |"


def _name(b: Block) -> str:
    return f"- `{b.symbol} {_code(b.address)}` {b.action.replace('_', ' ')}"


def _details(op: Operation, b: Block) -> str:
    body = "\n".join(diff_line(line) for line in op_lines(op, b))
    summary = _escape(f"{b.symbol} {b.title}")
    return (f"<details><summary><code>{summary}</code> {b.says}</summary>\n\n"
            f"```diff\n{body.replace('```', '` ` `')}\n```\n\n</details>")


def diff_line(line: str) -> str:
    """One line of the text rendering as a line of a ```diff block, coloured by its meaning."""
    s = line.strip()
    if s.startswith("! "):
        return "# warning: " + s[2:]  # not '!': that colour means an update here
    if s.startswith("~"):
        return "!" + s[1:]
    if s.startswith(("<=", "->")):
        return " " + s
    return s


def _tally(actions: Iterable[str]) -> str:
    """``2620 create, 10 import`` (largest first), or an empty string."""
    counts = Counter(a.replace("_", " ") for a in actions)
    return ", ".join(f"{n} {a}" for a, n in counts.most_common())


def _fold_note(chosen: fold.Fitted, ops: list[int], limit: int) -> str | None:
    folded, named, counted = (chosen.count(f, ops) for f in (ROW, NAME, COUNTED))
    if not (folded or named or counted or not chosen.fits):
        return None
    parts = []
    if named:
        parts.append(f"{named} change(s) are listed by name only, at the end")
    if folded:
        parts.append(f"the details of {folded} change(s) are folded (the table keeps their row)")
    if counted:
        parts.append(f"{counted} change(s) are not shown at all")
    what = "; ".join(parts) or "some lists are shortened"
    return (f"> [!NOTE]\n> To keep this comment under {limit:,} characters, {what}. The summary above counts "
            "every change; the saved plan (JSON) has them all.")


def _bare(plan: Plan, limit: int, marker: bool) -> str:
    # Only when even the summary with every list emptied does not fit (a limit of a few hundred).
    lines = ([MARKER] if marker else []) + ["## reconciler plan", "", f"**{summary_line(plan)}**", "",
                                            "The saved plan (JSON) has every change."]
    return "\n".join(lines)[:limit].rsplit("\n", 1)[0] + "\n"


def _code(s: str) -> str:
    # Inside a code span entities are shown as typed: only a table's pipe and the span's own
    # backtick need care.
    return s.replace("|", "\\|").replace("`", "'")


def _escape(s: str) -> str:
    # Text that may come from the server, outside code: no HTML, no column break, one line.
    return " ".join(s.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").split())
