"""The planner: pure ``(desired, state, actual) -> Plan``; normalisation and diffing live here."""

from reconciler.planner.core import Actual, PlanOptions, RemoteObject, TrackedLike, plan

__all__ = ["Actual", "PlanOptions", "RemoteObject", "TrackedLike", "plan"]
