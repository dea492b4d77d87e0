"""A document's address is computed once (a cached property) and never outlives its fields."""

from __future__ import annotations

import pickle

from reconciler.model.manifest import DOCUMENT_ADAPTER


def _client(name: str):
    return DOCUMENT_ADAPTER.validate_python({"apiVersion": "reconciler/v1", "kind": "ClientPackage",
                                             "metadata": {"name": name}, "spec": {"client": "c1", "package": "p"}})


def test_a_copy_with_another_name_has_its_own_address() -> None:
    doc = _client("alice-piano")
    assert doc.address == "client_package.alice-piano"  # cached on the original now
    renamed = doc.model_copy(update={"metadata": doc.metadata.model_copy(update={"name": "bob-piano"})})
    assert renamed.address == "client_package.bob-piano"
    assert doc.address == "client_package.alice-piano"


def test_the_cached_address_stays_out_of_dumps_equality_and_pickles() -> None:
    a, b = _client("x"), _client("x")
    assert a.address == b.address
    assert "address" not in a.model_dump()
    assert b'"address"' not in a.__pydantic_serializer__.to_json(a)
    fresh = _client("x")
    assert a == fresh and hash(a) == hash(fresh)
    assert pickle.loads(pickle.dumps(a)) == fresh  # noqa: S301 (our own bytes, made one line above)
    assert pickle.loads(pickle.dumps(a)).address == "client_package.x"  # noqa: S301 (our own bytes)
