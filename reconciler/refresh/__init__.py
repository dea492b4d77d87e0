"""Reading what vcita holds into the planner's view (``Actual``), once per run.

``full`` (every tracked object, the catalog, services and clients), ``changed``
(``--refresh=changed``: only what a plan of the changed objects needs) and ``second_memory``
(the clients' payment requests, read when the plan would create client packages or holds
creates of unknown outcome).
"""
