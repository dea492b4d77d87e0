"""The applier: executes a Plan exactly as reviewed (journal first, state after every success)."""

from reconciler.applier.run import Applier, Event, Result, request_digest

__all__ = ["Applier", "Event", "Result", "request_digest"]
