"""The applier: executes a Plan exactly as reviewed (journal first, state after every success).

    run.py     Applier: the checks, then each address's operations in order, addresses concurrently
    steps.py   how each kind of operation is carried out (dispatch on its type)
    commit.py  group commit of journal intents and state writes
"""

from reconciler.applier.run import Applier, Event, Result, request_digest

__all__ = ["Applier", "Event", "Result", "request_digest"]
