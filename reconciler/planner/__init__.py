"""The planner: pure ``(desired, state, actual, remote) -> Plan``; diffing lives here (the views it
compares are ``reconciler.model.views``, shared with drift, import, export and the renderers)."""

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
