"""Reading a saved plan file (``plan --out``) for ``apply PLAN`` and ``show PLAN``: the plan
exactly as it was reviewed, or one PlanFileError saying why it cannot be used."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from reconciler.core.errors import PlanFileError
from reconciler.core.fsutil import read_regular

if TYPE_CHECKING:
    from reconciler.plan.document import Plan


def read_plan(path: str) -> Plan:
    """A saved plan, or PlanFileError saying exactly why it cannot be used."""
    from pydantic import ValidationError

    from reconciler.plan.document import Plan, check_format_version, unseal

    try:
        text = read_regular(path).decode("utf-8")
    except FileNotFoundError:
        raise PlanFileError(f"no plan file at {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PlanFileError(f"cannot read the plan file {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise PlanFileError(f"{path}:{e.lineno}:{e.colno}: not a complete JSON plan ({e.msg}); was it truncated?",
                            hint="Make the plan again with 'reconciler plan --out FILE'.") from None
    from reconciler.fleet.apply import is_fleet_plan

    if is_fleet_plan(raw):
        raise PlanFileError(f"{path} is a fleet plan (made by 'plan --all'): "
                            f"apply it with 'reconciler apply --all {path}'")
    why = check_format_version(raw)
    if why is not None:
        raise PlanFileError(f"{path}: {why}", hint="Make the plan again with 'reconciler plan --out FILE'.")
    try:
        raw = unseal(raw)
    except ValueError as e:
        raise PlanFileError(f"{path}: {e}", hint="Make the plan again with 'reconciler plan --out FILE' and review "
                                                 "it; a reviewed plan is applied exactly as it was saved.") from None
    try:
        return Plan.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise PlanFileError(f"{path}: the plan is damaged at {loc}: {err['msg']}",
                            hint="Make the plan again with 'reconciler plan --out FILE'.") from None
