"""The shared leaves every layer may use; they import nothing else of reconciler.

``errors`` (the exception tree), ``safetext`` (escaping and secret masking of text that reaches a
terminal), ``fsutil`` (atomic writes, opening without following links), ``permissions`` (who else
may read the files reconciler trusts), ``progress`` (progress events for a caller to show),
``listlag`` (how long vcita's package list may hide a new package) and ``aio`` (concurrent work that
never outlives the caller who waits for it).
"""
