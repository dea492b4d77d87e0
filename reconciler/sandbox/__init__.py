"""The sandbox: a local, faithful vcita API (catalog packages, client packages, clients, services).

It imports nothing from the rest of `reconciler` (nor click: its commands are
`reconciler.cli.sandbox_cmds`), so that a client bug cannot hide behind shared
code. Public surface:

- `create_app(db_path, *, operator=False, gateway_failures=None, seed_demo=True)`: the Starlette
  app (gateway door `/apigw`, fallback door `/api2`, operator API `/_sandbox` when enabled).
- `serve_in_thread(db_path, *, host="127.0.0.1", port=0, operator=True)`: uvicorn in a thread;
  yields an object with `base_url`, `gateway_url`, `fallback_url`, `operator_url`.
- `DEMO`: the parsed demo business fixture (`demo_business.json`).
- `ResponseDropped`: raised in-process when a `drop_after_commit` fault drops an answer.
- `DEFAULT_GATEWAY_ROUTES`: the documented staging gateway failures.

Module map: `app` (doors, request pipeline), `instance` (one sandbox: store, clock, tables;
executing one request), `routes` (route table), `auth` (tokens, context,
feature gate), `catalog` / `client_packages` / `clients` / `payment_requests` (handlers), `render` (API shapes),
`envelopes` (bodies, `ApiError`), `jsontext` (JSON text: orjson, the standard library's bytes),
`store` (SQLite), `seed` (demo and operator businesses),
`faults` (faults, gateway table, stats), `behaviour` (list lag, a list refusing staff tokens,
payment request lag, price-0 packages opening no payment request),
`operator_api` (`/_sandbox`), `server` (uvicorn, imported only to serve),
`values` (UIDs, money, dates, clock).
"""

from __future__ import annotations

from typing import Any

# Imported on first use (PEP 562), so that `reconciler --help` and completion do not load
# Starlette, and serving (uvicorn: the [serve] extra) is needed only by those who serve.
_LAZY = {
    "ResponseDropped": "app", "create_app": "app", "DEFAULT_GATEWAY_ROUTES": "faults", "DEMO": "seed",
    "ServedSandbox": "server", "serve_in_thread": "server",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)


__all__ = ["DEFAULT_GATEWAY_ROUTES", "DEMO", "ResponseDropped", "ServedSandbox", "create_app",
           "serve_in_thread"]
