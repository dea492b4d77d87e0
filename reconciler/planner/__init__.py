"""The planner: pure ``(desired, state, actual, remote) -> Plan``; normalisation and diffing live here."""

from reconciler.planner.actual import (
           Actual,
           RemoteObject,
           from_catalog,
           from_client_package,
           from_state,
)
from reconciler.planner.core import PlanOptions, Remote, TrackedLike, plan

__all__ = ["Actual", "PlanOptions", "Remote", "RemoteObject", "TrackedLike", "from_catalog",
           "from_client_package", "from_state", "plan"]
