"""The remote layer: the only code of reconciler that speaks HTTP (and imports httpx).

It hides vcita's two doors (gateway and fallback) and their routing failures, both envelope
families, string-typed numbers, rate limits and transient failures behind :class:`VcitaClient`,
which returns the normalised models of ``reconciler.model.remote`` and raises only the errors of
``reconciler.core.errors``.  A write whose outcome cannot be known raises ``OutcomeUnknownError``
instead of being repeated.

    target.py     Target, Secret, resolve_target(): flags > env > reconciler.toml > embedded
    routes.py     the route table (door, token, envelope, idempotency), legacy rewrite, refusals
    envelope.py   unwrapping both envelopes; error answers -> the error hierarchy
    normalize.py  raw objects -> typed models
    retry.py      which failures may be repeated, backoff, Retry-After
    throttle.py   token-bucket rate limit and AIMD concurrency limit
    dispatch.py   Dispatcher: one request with fallback, retries, limits and logging; Served
    netenv.py     proxies and certificate authorities from the environment
    http.py       HttpTransport: aiohttp's keep-alive connections, bounded and kept in step
    calls.py      the wire format of every write: a planned operation as its API call, and the
                  description of that call a plan shows (the same code builds both)
    client.py     VcitaClient: the typed API; describe(op) and execute(op) for planned operations
    discovery.py  the second memory: client packages found through the payment requests, each
                  confirmed by its link back (API-NOTES §11)
"""

from reconciler.remote.client import EmbeddedTransport, VcitaClient
from reconciler.remote.dispatch import ClientSettings, Served, encode_body, last_served
from reconciler.remote.retry import RetryPolicy, parse_retry_after
from reconciler.remote.routes import (
    DEFAULT_ROUTES,
    Door,
    Route,
    RoutePin,
    RouteTable,
    TokenKind,
    rewrite_legacy,
)
from reconciler.remote.target import Secret, Target, read_token_file, resolve_target

__all__ = [
    "DEFAULT_ROUTES",
    "ClientSettings",
    "Door",
    "EmbeddedTransport",
    "RetryPolicy",
    "Route",
    "RoutePin",
    "RouteTable",
    "Secret",
    "Served",
    "Target",
    "TokenKind",
    "VcitaClient",
    "encode_body",
    "last_served",
    "parse_retry_after",
    "read_token_file",
    "resolve_target",
    "rewrite_legacy",
]
