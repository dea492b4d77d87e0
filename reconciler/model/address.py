"""Addresses: how plans, state, messages and ``--only`` name an object, spelled here once.

``catalog_package.NAME``, ``client_package.NAME`` and a set's member
``client_package_set.NAME["KEY"]`` (in a ``ManifestSet`` a member is keyed by its address's tail,
``NAME["KEY"]``).  A client package of a set is a client package everywhere after the loader, so
:func:`kind_of` and :func:`is_client` count set members as client packages.
"""

from __future__ import annotations

from typing import Literal

CATALOG = "catalog_package."
CLIENT = "client_package."
CLIENT_SET = "client_package_set."


def catalog(name: str) -> str:
    """The address of the catalog package whose ``metadata.name`` is ``name``."""
    return CATALOG + name


def client(name: str) -> str:
    """The address of the ``ClientPackage`` document named ``name``."""
    return CLIENT + name


def client_set(name: str) -> str:
    """The address of the ``ClientPackageSet`` document named ``name`` (its members add ``["KEY"]``)."""
    return CLIENT_SET + name


def is_catalog(address: str) -> bool:
    return address.startswith(CATALOG)


def is_client(address: str) -> bool:
    """A client package: a ``ClientPackage`` document or a member of a set."""
    return address.startswith((CLIENT, CLIENT_SET))


def kind_of(address: str) -> Literal["CatalogPackage", "ClientPackage"]:
    return "CatalogPackage" if is_catalog(address) else "ClientPackage"


def name_of(address: str) -> str:
    """What follows the kind (``NAME``, or ``NAME["KEY"]`` for a set's member)."""
    return address.split(".", 1)[1]
