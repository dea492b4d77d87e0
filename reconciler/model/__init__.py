"""Pydantic models: the manifest documents users write and the remote objects the API returns.

One shared frozen base (``extra="forbid"``); the manifest models are also the source of the JSON
Schema that ``reconciler schema`` prints.  Remote models hold values already normalised by the
remote layer (numbers as numbers, enums upper-case), so the planner compares like with like.

Also here, because every layer from the planner up reads them: ``manifest_set`` (the desired
state, ``ManifestSet``, as the manifest reader builds it), ``views`` (the normalised, comparable
views of desired, remote and applied objects) and ``address`` (how objects are named).
"""

from reconciler.model.base import Frozen
from reconciler.model.manifest import (
    API_VERSION,
    CatalogPackage,
    CatalogPackageSpec,
    ClientPackage,
    ClientPackageSpec,
    ClientRef,
    CreditOverride,
    Document,
    Item,
    Metadata,
    PackageRef,
    Product,
)
from reconciler.model.remote import (
    BookingCredit,
    RemoteCatalogItem,
    RemoteCatalogPackage,
    RemoteClient,
    RemoteClientPackage,
    RemoteProduct,
    RemoteService,
)

__all__ = [
    "API_VERSION",
    "BookingCredit",
    "CatalogPackage",
    "CatalogPackageSpec",
    "ClientPackage",
    "ClientPackageSpec",
    "ClientRef",
    "CreditOverride",
    "Document",
    "Frozen",
    "Item",
    "Metadata",
    "PackageRef",
    "Product",
    "RemoteCatalogItem",
    "RemoteCatalogPackage",
    "RemoteClient",
    "RemoteClientPackage",
    "RemoteProduct",
    "RemoteService",
]
