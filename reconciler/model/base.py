"""The shared frozen pydantic base of every model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """Immutable, strict about unknown fields, hashable where its fields are.

    A value derived from the fields may be a ``functools.cached_property`` (a document's
    ``address``: read several times per object by the planner, 100,000 objects planned 0.4 s
    faster): pydantic keeps it out of dumps and equality, and :meth:`model_copy` drops it, since a
    copy with other fields must not answer with the original's value."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copy = super().model_copy(update=update, deep=deep)
        fields = type(self).model_fields
        for name in [k for k in copy.__dict__ if k not in fields]:
            del copy.__dict__[name]
        return copy
