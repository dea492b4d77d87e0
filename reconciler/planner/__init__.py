"""The planner: pure ``(desired, state, actual, describe) -> Plan``; normalisation and diffing live here."""

from reconciler.planner.actual import (
           Actual,
           RemoteObject,
           from_catalog,
           from_client_package,
           from_state,
)
from reconciler.planner.core import Describe, PlanOptions, TrackedLike, plan

__all__ = ["Actual", "Describe", "PlanOptions", "RemoteObject", "TrackedLike", "from_catalog",
           "from_client_package", "from_state", "plan"]
