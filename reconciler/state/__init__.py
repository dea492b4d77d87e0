"""What reconciler remembers of a business, written so that nothing is lost.

``store`` (the state document and the StateStore: load, save, locate), ``encoder`` (the state
file's text, re-encoding only what changed), ``lock`` (one writer at a time), ``journal`` (the
write-ahead record of creates) and ``backends`` (where the state is kept: the local file or
PostgreSQL).
"""
