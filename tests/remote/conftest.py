"""Fixtures of the remote client's tests: the sandbox in-process and served on loopback.

``sbx`` is parametrised over both ways of reaching the sandbox: ``asgi`` (a fresh app per test,
through ``httpx.ASGITransport``, the embedded target) and ``served`` (the session's uvicorn
server on 127.0.0.1, ``sandbox_server`` of tests/conftest.py, reset before each test).  Either
way the test drives the sandbox's operator API over HTTP (faults, gateway table, stats, bulk
data) through ``remote_support.Operator``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from remote_support import BUSINESS, Operator, Sbx

from reconciler.remote import Secret, Target, resolve_target
from reconciler.sandbox import DEMO, create_app


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["asgi", "served"])
async def sbx(request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str) -> AsyncIterator[Sbx]:
    if request.param == "asgi":
        target = resolve_target(flags={}, env={}, cwd=tmp_path)  # the embedded target
        assert target.embedded and target.db_path is not None
        target.db_path.parent.mkdir(parents=True)
        app = create_app(target.db_path, operator=True)
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), \
                httpx.AsyncClient(transport=transport, base_url="http://embedded.sandbox") as http:
            yield Sbx("asgi", target, Operator(http), transport)
        return
    s = request.getfixturevalue("sandbox_server")  # tests/conftest.py: one per session
    target = Target(name="served", gateway_url=s.gateway_url, fallback_url=s.fallback_url,
                    business_id=BUSINESS, staff_token=Secret(DEMO["tokens"]["staff"]),
                    directory_token=Secret(DEMO["tokens"]["directory"]))
    async with httpx.AsyncClient(base_url=s.base_url) as http:
        operator = Operator(http)
        await operator.call("POST", "/_sandbox/reset")
        yield Sbx("served", target, operator)
