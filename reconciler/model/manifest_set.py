"""The desired state: every document of a manifest tree, valid and cross-checked (``ManifestSet``),
and where each came from (``SourceRef``).

Built by :mod:`reconciler.manifest.load`; read by the planner, drift, import and export, which
never need the YAML reader to do so.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from reconciler.model.manifest import CatalogOrder, CatalogPackage, ClientPackage, ClientPackageSet

#: Spec fields added after manifests were first digested, left out while unset (ManifestSet.digest).
_CLIENT_UNSET: Any = {"spec": {"valid_for"}}
_CATALOG_UNSET: Any = {(True, True): {"spec": {"active", "order"}}, (True, False): {"spec": {"active"}},
                       (False, True): {"spec": {"order"}}, (False, False): None}


@dataclass(frozen=True)
class SourceRef:
    """Where a document came from: its file and the line of its first key (``span``: where its
    text starts and ends in the file, and the column it starts at, to read it again alone)."""

    file: str
    line: int
    span: tuple[int, int, int] | None = field(default=None, compare=False, repr=False)


@dataclass
class ManifestSet:
    """Every document of a manifest tree, valid and cross-checked."""

    catalog_packages: dict[str, CatalogPackage] = field(default_factory=dict)
    #: every client package the manifests declare: ClientPackage documents by metadata.name, and
    #: each member of a ClientPackageSet (a SetMember) by ``set["key"]`` (its address's tail)
    client_packages: dict[str, ClientPackage] = field(default_factory=dict)
    client_package_sets: dict[str, ClientPackageSet] = field(default_factory=dict)
    #: the CatalogOrder document (at most one): already applied as each package's spec.order
    catalog_orders: dict[str, CatalogOrder] = field(default_factory=dict)
    sources: dict[str, SourceRef] = field(default_factory=dict)  # document address -> where
    files: list[str] = field(default_factory=list)

    @property
    def documents(self) -> list[CatalogPackage | ClientPackage]:
        """Every object the manifests declare (a set's members, not the set itself)."""
        return [*self.catalog_packages.values(), *self.client_packages.values()]

    def digest(self) -> str:
        """A digest of what the manifests mean (not how they are formatted or commented)."""
        h = hashlib.sha256()
        for d in sorted(self.documents, key=lambda d: d.address):
            # Fields added later are left out of the dump while unset, so that the digests of
            # manifests that do not use them stay what they were (saved plans still apply).
            if isinstance(d, CatalogPackage):
                unset = _CATALOG_UNSET[(d.spec.active is None, d.spec.order is None)]
            else:
                unset = _CLIENT_UNSET if d.spec.valid_for is None else None
            # the serializer itself: model_dump_json's bytes, without its wrapper and a decode
            h.update(d.__pydantic_serializer__.to_json(d, exclude=unset))
            h.update(b"\n")
        return "sha256:" + h.hexdigest()
