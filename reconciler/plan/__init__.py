"""Plan data only: ``operations`` (one small frozen class per kind of change, and the requests
each sends) and ``document`` (the Plan: operations, what they were computed against, its JSON
form).  Built by the planner, rendered by ``render``, executed by the applier as it is."""
