"""The network the environment describes: proxies and trusted certificate authorities.

Resolved once per client, before anything is sent, the way curl and most HTTP clients read it:

* ``https_proxy`` / ``HTTPS_PROXY`` for https URLs, ``http_proxy`` / ``HTTP_PROXY`` for http URLs,
  ``all_proxy`` / ``ALL_PROXY`` for either when those are unset (lower case wins when both are
  set); ``no_proxy`` / ``NO_PROXY`` lists hosts and domain suffixes reached directly (``*``: all).
  Loopback addresses are always reached directly (a proxy cannot reach this machine's loopback).
  A proxy URL without a scheme is ``http://``; ``user:password@`` in it is sent as the proxy's
  Basic credentials and the password is masked in every output.  SOCKS proxies are refused.
* ``SSL_CERT_FILE`` (a PEM bundle) and ``SSL_CERT_DIR`` (a hashed folder) replace the default
  authorities (certifi's bundle, as httpx uses); one that is missing, unreadable or holds no
  certificate is a :class:`ConfigError` raised before any connection is made.

Each choice says where it came from (:meth:`ProxyChoice.describe`), for the ``-v`` log.
"""

from __future__ import annotations

import base64
import os
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from reconciler.core.errors import ConfigError
from reconciler.core.safetext import printable, register_secret

_PROXY_VARS = {"https": ("https_proxy", "HTTPS_PROXY"), "http": ("http_proxy", "HTTP_PROXY")}
_ALL_VARS = ("all_proxy", "ALL_PROXY")
_NO_VARS = ("no_proxy", "NO_PROXY")


@dataclass(frozen=True)
class ProxyChoice:
    """A proxy for some URLs: its URL without credentials, the credentials, and its source."""

    url: str
    source: str  # the environment variable it came from
    login: str | None = None
    password: str | None = None

    @property
    def headers(self) -> dict[str, str] | None:
        """The ``Proxy-Authorization`` header (Basic) when the URL carried credentials."""
        if self.login is None:
            return None
        token = base64.b64encode(f"{self.login}:{self.password or ''}".encode()).decode("ascii")
        register_secret(token)
        return {"Proxy-Authorization": f"Basic {token}"}

    def describe(self) -> str:
        user = f" as {self.login}" if self.login else ""
        return f"proxy {self.url}{user} (from {self.source})"


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str] | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return name, value
    return None


def _parse_proxy(name: str, value: str) -> ProxyChoice:
    raw = value if "://" in value else "http://" + value
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise ConfigError(f"{name} is not a proxy URL ({printable(_hide_password(value), limit=200)})",
                          hint=f"Set {name} to a URL such as http://proxy.example.com:3128, or unset it.") from None
    if parts.scheme.lower().startswith("socks"):
        raise ConfigError(f"{name} names a SOCKS proxy, which reconciler does not support",
                          hint=f"Use an HTTP proxy (http://host:port) in {name}, or unset it.")
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} is not an http:// or https:// proxy URL "
                          f"({printable(_hide_password(value), limit=200)})",
                          hint=f"Set {name} to a URL such as http://proxy.example.com:3128, or unset it.")
    login = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password:
        register_secret(password)
        register_secret(parts.password or "")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    url = f"{parts.scheme.lower()}://{host}" + (f":{port}" if port else "")
    return ProxyChoice(url=url, source=name, login=login, password=password)


def _hide_password(value: str) -> str:
    head, at, tail = value.rpartition("@")
    if not at:
        return value
    scheme, sep, userinfo = head.rpartition("://")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{tail}" if ":" in userinfo else value


def _is_loopback(host: str) -> bool:
    from reconciler.remote.target import (
        is_loopback_host,  # the same test as plain http's
    )

    return is_loopback_host(host.strip("[]"))


class ProxyTable:
    """Which proxy (if any) each URL goes through, as the environment says."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self._proxies: dict[str, ProxyChoice | None] = {}
        for scheme, names in _PROXY_VARS.items():
            found = _first(env, names) or _first(env, _ALL_VARS)
            self._proxies[scheme] = _parse_proxy(*found) if found else None
        found = _first(env, _NO_VARS)
        self.no_proxy = found[1] if found else ""
        self._cache: dict[tuple[str, str, int | None], ProxyChoice | None] = {}

    def __call__(self, url: object) -> ProxyChoice | None:
        """The proxy for ``url`` (an ``httpx.URL`` or a string), or None to go direct."""
        parts = urlsplit(str(url))
        key = (parts.scheme, parts.hostname or "", parts.port)
        if key not in self._cache:
            self._cache[key] = self._choose(*key)
        return self._cache[key]

    def _choose(self, scheme: str, host: str, port: int | None) -> ProxyChoice | None:
        proxy = self._proxies.get(scheme)
        if proxy is None or _is_loopback(host):
            return None
        if self.no_proxy:
            where = f"{host}:{port}" if port else host
            # stdlib's matcher for no_proxy (names, suffixes, "*", ports); not in the type stubs
            if urllib.request.proxy_bypass_environment(where, {"no": self.no_proxy}):  # type: ignore[attr-defined]
                return None
        return proxy

    def describe(self, url: str) -> str:
        """One line for the ``-v`` log: how ``url`` is reached."""
        proxy = self(url)
        if proxy is not None:
            return f"{url} through {proxy.describe()}"
        parts = urlsplit(url)
        if self._proxies.get(parts.scheme) is None:
            return f"{url} directly (no proxy configured)"
        if _is_loopback(parts.hostname or ""):
            return f"{url} directly (loopback)"
        return f"{url} directly (NO_PROXY)"


def ssl_context(env: Mapping[str, str] | None = None) -> ssl.SSLContext:
    """A client TLS context trusting ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set, else certifi's
    bundle; ConfigError (nothing sent) when a named file or folder cannot be used."""
    env = os.environ if env is None else env
    cafile = env.get("SSL_CERT_FILE", "").strip() or None
    capath = env.get("SSL_CERT_DIR", "").strip() or None
    hint = ("Point it at a PEM bundle of the authorities to trust (behind a proxy that inspects TLS, "
            "one that includes its authority), or unset it. Nothing was sent.")
    if cafile is not None:
        _check_readable("SSL_CERT_FILE", cafile, folder=False, hint=hint)
    if capath is not None:
        _check_readable("SSL_CERT_DIR", capath, folder=True, hint=hint)
    if cafile is None and capath is None:
        import certifi

        cafile = certifi.where()
    try:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    except ssl.SSLError as exc:
        which = "SSL_CERT_FILE" if env.get("SSL_CERT_FILE") else "the certificate bundle"
        raise ConfigError(f"{which} {cafile} holds no certificate that can be read "
                          f"({printable(exc.reason or str(exc), limit=120)})", hint=hint) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the certificate authorities ({exc.strerror or exc})", hint=hint) from None


def _check_readable(name: str, path: str, *, folder: bool, hint: str) -> None:
    shown = printable(path, limit=300)
    if not os.path.exists(path):
        raise ConfigError(f"{name}={shown} does not exist", hint=hint)
    if (os.path.isdir(path) if folder else os.path.isfile(path)) is False:
        what = "a folder" if folder else "a file"
        raise ConfigError(f"{name}={shown} is not {what}", hint=hint)
    if not os.access(path, os.R_OK | (os.X_OK if folder else 0)):
        raise ConfigError(f"{name}={shown} cannot be read (permission denied)", hint=hint)
    if not folder:
        try:
            with open(path, "rb") as f:
                f.read(1)
        except OSError as exc:
            raise ConfigError(f"{name}={shown} cannot be read ({exc.strerror or exc})", hint=hint) from None
