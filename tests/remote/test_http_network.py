"""TLS, certificate authorities and proxies, as the environment names them, over real sockets.

The servers are raw TLS servers on loopback whose certificates come from a throwaway authority
(trustme); the proxy is a minimal ``CONNECT`` proxy (``raw_server.tunnel_proxy``) that pipes every
tunnel to such a server, so a target named ``https://vcita.test`` (a name that resolves nowhere)
is reached only through it.
"""

from __future__ import annotations

import base64
import logging
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from raw_server import RawServer as Server
from raw_server import answer, replying, tunnel_proxy
from raw_server import raw_server as serving
from remote_support import SleepRecorder, fast_settings

from reconciler.core.errors import ConfigError, ProtocolError, UnavailableError
from reconciler.core.safetext import redact
from reconciler.remote import Secret, Target, VcitaClient
from reconciler.remote.client import network_transport
from reconciler.remote.http import HttpTransport
from reconciler.remote.netenv import ProxyTable, ssl_context
from reconciler.remote.retry import NOT_SENT, CertificateRefused, ProxyRefused

pytestmark = pytest.mark.anyio
_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
        "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture(autouse=True)
def clean_network_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def tls(tmp_path: Path) -> AsyncIterator[tuple[Server, ssl.SSLContext, Path]]:
    """A TLS server for 127.0.0.1 and vcita.test: the server, a context trusting its authority,
    and the authority as a PEM file."""
    import trustme

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "vcita.test").configure_cert(server_context)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    async with serving(replying(answer(b'{"tls":true}')), tls=server_context) as server:
        yield server, trusting, pem


def target(url: str) -> Target:
    return Target(name="t", gateway_url=url + "/apigw", fallback_url=None, business_id="b" * 16,
                  staff_token=Secret("tok-" + "x" * 20))


async def send(transport: HttpTransport, url: str, method: str = "POST") -> httpx.Response:
    request = httpx.Request(method, url, content=b"{}", extensions={"timeout": httpx.Timeout(5).as_dict()})
    response = await transport.handle_async_request(request)
    await response.aread()
    return response


async def test_https_speaks_tls_and_checks_the_certificate(tls: Any) -> None:
    server, trusting, _ = tls
    transport = HttpTransport(verify=trusting)
    for _ in range(2):
        assert (await send(transport, server.url + "/x", "PUT")).json() == {"tls": True}
    await transport.aclose()
    assert server.connections == 1 and server.requests[0].startswith(b"PUT /x HTTP/1.1\r\n")
    untrusting = HttpTransport(verify=ssl_context({}))  # certifi's authorities do not know this one
    with pytest.raises(CertificateRefused, match=r"TLS with 127\.0\.0\.1:\d+ failed \(its certificate was "
                                                 r"refused: ") as caught:
        await send(untrusting, server.url + "/x")
    assert isinstance(caught.value, NOT_SENT) and len(server.requests) == 2
    await untrusting.aclose()


async def test_a_refused_certificate_is_not_retried_and_ssl_cert_file_fixes_it(
        tls: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server, _, pem = tls
    sleep = SleepRecorder()
    async with VcitaClient(target(server.url), sleep=sleep) as api:
        with pytest.raises(UnavailableError, match="certificate was refused") as caught:
            await api.create_client_package({"client_id": "c", "package_id": "p"})
    assert sleep.waits == [] and "SSL_CERT_FILE" in (caught.value.hint or "") and server.requests == []
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    async with VcitaClient(target(server.url), sleep=sleep) as api:
        with pytest.raises(ProtocolError):  # our scripted server is not vcita: but it was reached
            await api.list_services()
    assert len(server.requests) == 1 and server.requests[0].startswith(b"GET /apigw/")


@pytest.mark.parametrize("case", ["missing", "garbage", "folder", "empty", "dir-missing"])
async def test_an_unusable_certificate_setting_is_one_clear_error_before_anything_is_sent(
        tls: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    server, _, _ = tls
    bad = tmp_path / "bundle.pem"
    if case == "garbage":
        bad.write_bytes(b"\x1b[2Jnot a certificate\n" * 10)
    elif case == "folder":
        bad.mkdir()
    elif case == "empty":
        bad.write_bytes(b"")
    name = "SSL_CERT_DIR" if case == "dir-missing" else "SSL_CERT_FILE"
    monkeypatch.setenv(name, str(bad))
    with pytest.raises(ConfigError, match=name) as caught:
        async with VcitaClient(target(server.url)) as api:
            await api.list_services()
    assert "Nothing was sent" in (caught.value.hint or "") and "\x1b" not in str(caught.value)
    assert server.requests == []
    # a target on loopback over plain http needs no TLS: the setting does not stand in its way
    listing = answer(b'{"status":"OK","data":{"services":[]}}')
    async with serving(replying(listing)) as plain, VcitaClient(target(plain.url), settings=fast_settings()) as api:
        assert await api.list_services() == []


async def test_https_goes_through_the_proxy_the_environment_names(tls: Any, monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    server, _, pem = tls
    password = "pa:ss@word-1"
    auth = "Basic " + base64.b64encode(f"me:{password}".encode()).decode()
    async with tunnel_proxy(server.port, require_auth=auth) as proxy:
        host_port = proxy.url.removeprefix("http://")
        monkeypatch.setenv("HTTPS_PROXY", f"http://me:pa%3Ass%40word-1@{host_port}")
        monkeypatch.setenv("SSL_CERT_FILE", str(pem))
        caplog.set_level(logging.INFO, logger="reconciler.remote")
        async with VcitaClient(target("https://vcita.test"), settings=fast_settings()) as api:
            with pytest.raises(ProtocolError):  # reached (through the tunnel), though not vcita
                await api.list_services()
    assert proxy.tunnels == [("CONNECT vcita.test:443", auth)]
    assert server.requests and server.requests[0].startswith(b"GET /apigw/")
    shown = "\n".join(r.getMessage() for r in caplog.records)
    assert f"https://vcita.test/apigw through proxy {proxy.url} as me (from HTTPS_PROXY)" in shown
    assert password not in shown and redact(f"x {password} y") == "x *** y"


async def test_a_proxy_that_refuses_the_tunnel_means_not_sent(tls: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server, _, pem = tls
    async with tunnel_proxy(server.port, require_auth="Basic nobody-has-this") as proxy:
        monkeypatch.setenv("https_proxy", proxy.url)
        monkeypatch.setenv("SSL_CERT_FILE", str(pem))
        transport = network_transport(target("https://vcita.test"), 4)
        with pytest.raises(ProxyRefused, match="answered 407") as caught:
            await send(transport, "https://vcita.test/apigw/x")
        assert isinstance(caught.value, NOT_SENT)
        await transport.aclose()
        sleep = SleepRecorder()
        async with VcitaClient(target("https://vcita.test"), settings=fast_settings(), sleep=sleep) as api:
            with pytest.raises(UnavailableError, match="no answer after 3 attempts") as unavailable:
                await api.create_client_package({"client_id": "c", "package_id": "p"})  # a POST: retried
    assert "HTTPS_PROXY" in (unavailable.value.hint or "") and len(sleep.waits) == 2
    assert server.requests == []


# -- which proxy, from which variable ------------------------------------------------------------

def test_proxy_variables_are_read_the_way_users_expect() -> None:
    both = ProxyTable({"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2", "HTTP_PROXY": "plain:3"})
    assert both("https://app.meet2know.com/x").url == "http://lower:2"  # lower case wins
    assert both("https://app.meet2know.com/x").source == "https_proxy"
    assert both("http://example.com/").url == "http://plain:3"  # no scheme: http://
    assert both("https://127.0.0.1:8000/") is None
    assert both("http://localhost:8000/") is None and both("https://[::1]/") is None  # loopback: direct
    fallback = ProxyTable({"ALL_PROXY": "http://all:8080"})
    assert fallback("https://a.example/").source == "ALL_PROXY"
    bypass = ProxyTable({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "internal.example, .corp,10.1.2.3"})
    assert bypass("https://api.internal.example/") is None and bypass("https://x.corp/") is None
    assert bypass("https://10.1.2.3/") is None and bypass("https://app.meet2know.com/") is not None
    assert "directly (NO_PROXY)" in bypass.describe("https://x.corp/api")
    assert ProxyTable({"HTTPS_PROXY": "http://p:1", "no_proxy": "*"})("https://a.example/") is None
    assert "no proxy configured" in ProxyTable({}).describe("https://a.example/")


@pytest.mark.parametrize("value, message", [
    ("socks5://p:1080", "SOCKS proxy"),
    ("ftp://p:21", "not an http:// or https:// proxy URL"),
    ("http://user:s3cret-pw@p:port", "not a proxy URL"),
])
def test_a_proxy_setting_that_cannot_be_used_is_refused_without_showing_its_password(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        ProxyTable({"HTTPS_PROXY": value})
    assert "s3cret-pw" not in str(caught.value)


def test_ssl_context_uses_the_authorities_named(tmp_path: Path) -> None:
    import trustme

    pem = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(pem))
    assert ssl_context({"SSL_CERT_FILE": str(pem)}).cert_store_stats()["x509_ca"] == 1
    assert ssl_context({}).cert_store_stats()["x509_ca"] > 50  # certifi's bundle
    fifo = tmp_path / "fifo.pem"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="is not a file"):  # never opened: it would block
        ssl_context({"SSL_CERT_FILE": str(fifo)})
