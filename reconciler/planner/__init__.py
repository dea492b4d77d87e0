"""The planner: pure ``(desired, state, actual) -> Plan``; normalisation and diffing live here."""

from reconciler.planner.actual import Actual, RemoteObject, from_catalog, from_client_package, from_state
from reconciler.planner.core import PlanOptions, TrackedLike, plan

__all__ = ["Actual", "PlanOptions", "RemoteObject", "TrackedLike", "from_catalog", "from_client_package", "from_state", "plan"]
