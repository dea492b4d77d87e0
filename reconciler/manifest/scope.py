"""``--only ADDRESS``: the part of the manifests a plan (or apply) covers, and what it leaves out.

A pattern is an address in which ``*`` matches any run of characters and ``?`` one character;
nothing else is special, so a set member's brackets and quotes are written as they are
(``client_package_set.spring-piano[*]``, ``client_package.alice-*``).  The selection adds what a
selected object depends on (the catalog package a client package names), then the plan runs as a
partial plan: a tracked object outside the selection is neither changed, archived nor taken over
(``PlanOptions.partial``), and the plan says how many objects it left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.core.errors import ConfigError
from reconciler.model import address as addr
from reconciler.model.manifest_set import ManifestSet


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """The regular expression of one ``--only`` pattern (``*`` and ``?`` are its only wildcards)."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + r"\Z",
                      re.DOTALL)


@dataclass(frozen=True)
class Selection:
    """The manifests a plan covers: the objects ``--only`` names and what they depend on."""

    desired: ManifestSet
    patterns: tuple[str, ...]
    #: manifest objects (addresses) the selection leaves out
    left_out: tuple[str, ...]
    #: addresses added because a selected object depends on them
    dependencies: tuple[str, ...]


def select(desired: ManifestSet, patterns: Sequence[str]) -> Selection:
    """The part of ``desired`` that ``patterns`` name, with its dependencies; ConfigError when a
    pattern names no object of the manifests (a typo must not plan nothing and look fine)."""
    regexes = [(p, pattern_regex(p)) for p in patterns]
    addresses = [d.address for d in desired.documents]
    chosen: set[str] = set()
    unmatched = []
    for pattern, rx in regexes:
        hits = {a for a in addresses if rx.match(a)}
        if not hits:
            unmatched.append(pattern)
        chosen |= hits
    if unmatched:
        raise ConfigError(f"--only {', '.join(map(repr, unmatched))} matches no object of the manifests",
                          hint="Write an address as 'reconciler plan' shows it (catalog_package.NAME, "
                               "client_package.NAME, client_package_set.NAME[\"CLIENT\"]); * and ? are wildcards; "
                               "quote it for the shell.")
    dependencies = []
    for cp in desired.client_packages.values():
        name = cp.spec.package.name
        if cp.address in chosen and name is not None:
            dep = addr.catalog(name)
            if dep not in chosen and name in desired.catalog_packages:
                chosen.add(dep)
                dependencies.append(dep)
    part = ManifestSet(
        catalog_packages={n: d for n, d in desired.catalog_packages.items() if d.address in chosen},
        client_packages={n: d for n, d in desired.client_packages.items() if d.address in chosen},
        client_package_sets=dict(desired.client_package_sets),
        sources=dict(desired.sources), files=list(desired.files),
    )
    return Selection(desired=part, patterns=tuple(patterns),
                     left_out=tuple(a for a in addresses if a not in chosen),
                     dependencies=tuple(sorted(set(dependencies))))
