"""The embedded sandbox wired in: the in-process vcita API an embedded target talks to.

``remote/`` never imports the sandbox (nor, through it, Starlette): the CLI gives every client it
opens this transport factory (``VcitaClient(..., embedded=embedded_transport)``), and the fleet
runner passes it on (``WorkOptions.embedded``).  The embedded target's identity (the sandbox's demo
business) is named in ``reconciler.remote.target``.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from reconciler.core.errors import ConfigError


def embedded_transport(db_path: Path) -> httpx.ASGITransport:
    """The in-process sandbox (seeded with the demo business on first use) as an httpx transport.

    Its app's lifespan (which closes the database) is run by :class:`VcitaClient`.
    """
    import sqlite3

    from reconciler.sandbox import create_app

    db_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        app = create_app(db_path)
    except sqlite3.DatabaseError as e:
        raise ConfigError(
            f"the embedded sandbox database {db_path} cannot be used: {e}",
            hint="It only holds the local sandbox: run 'reconciler sandbox reset' (or delete the file) "
                 "to start it afresh; state files that tracked its objects then need 'reconciler state rm'.",
        ) from None
    return httpx.ASGITransport(app=app)
