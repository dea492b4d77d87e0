"""Where requests go and with which credentials: the resolved :class:`Target`.

A target is resolved once per run, purely, from (highest first) command-line flags, environment
variables (``VCITA_GATEWAY_URL``, ``VCITA_FALLBACK_URL``, ``VCITA_BUSINESS_ID``,
``VCITA_STAFF_TOKEN``, ``VCITA_DIRECTORY_TOKEN``) and a named target of ``reconciler.toml``,
found in the working folder or the nearest of its parents (as git finds ``.git``)::

    default_target = "staging"          # optional; otherwise pick one with --target

    [targets.staging]
    gateway_url  = "https://app.meet2know.com/apigw"
    fallback_url = "https://app.meet2know.com/api2"      # optional: one door or two
    business_id  = "7lrwfvealkxwkkxz"
    token_env    = "STAGING_TOKEN"      # the *name* of the variable holding the staff token
    # directory_token_env = "..."; token_file = "path" (relative to the toml) are also accepted

    [targets.staging.routes]            # optional pins: a route to a door and/or a token
    list_catalog_packages = { door = "fallback", token = "directory" }

A token written into the toml is refused.  A target needs a staff token, a directory token, or
both (a directory-only target runs the routes a directory token may use).

**No silent sandbox.**  The embedded sandbox (in-process, database ``.reconciler/sandbox.db``
under the working directory) is the target only when no ``VCITA_*`` variable is present and no
``reconciler.toml`` is found, or when asked for by name (``--target embedded``).  A required
variable (gateway URL, business id, staff token) that is present but empty is an error naming it
(what CI gives for a missing secret); an empty optional one (fallback URL, directory token)
counts as unset.  A ``reconciler.toml`` that selects no target is an error, not the sandbox.

Plain ``http://`` is refused before any connection is made for anything but ``localhost``,
``127.0.0.0/8`` and ``::1``, literally (``evil.localhost`` is a name anyone can point anywhere).
Tokens are held in :class:`Secret`, whose ``repr``/``str`` never show the value.

Over 400 lines on purpose: one precedence (flags > environment > ``reconciler.toml`` > embedded
sandbox), with its refusals, is resolved in one place.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reconciler.core.errors import ConfigError
from reconciler.core.listlag import ListLag
from reconciler.core.safetext import register_secret
from reconciler.remote.project import (
    PROJECT_FILE,
    ROUTES_KEY,
    find_project_file,
    load_project_targets,
    parse_route_pins,
)
from reconciler.remote.routes import Door, RoutePin, TokenKind

__all__ = [
    "ENV_BUSINESS", "ENV_DIRECTORY_TOKEN", "ENV_FALLBACK", "ENV_GATEWAY", "ENV_STAFF_TOKEN", "PROJECT_FILE",
    "ROUTES_KEY", "Secret", "Target", "check_url", "find_project_file", "is_loopback_host",
    "load_project_targets", "parse_route_pins", "read_token_file", "resolve_target",
]

ENV_GATEWAY = "VCITA_GATEWAY_URL"
ENV_FALLBACK = "VCITA_FALLBACK_URL"
ENV_BUSINESS = "VCITA_BUSINESS_ID"
ENV_STAFF_TOKEN = "VCITA_STAFF_TOKEN"  # noqa: S105 - a variable's name, not a token
ENV_DIRECTORY_TOKEN = "VCITA_DIRECTORY_TOKEN"  # noqa: S105 - a variable's name, not a token
EMBEDDED_NAME = "embedded"
EMBEDDED_DB = Path(".reconciler") / "sandbox.db"
# In-process only: these URLs never reach a socket (the ASGI transport answers them).
EMBEDDED_GATEWAY = "http://embedded.sandbox/apigw"
EMBEDDED_FALLBACK = "http://embedded.sandbox/api2"
#: The embedded target is the sandbox's demo business (``reconciler/sandbox/demo_business.json``),
#: named here so that remote does not import the sandbox (a test holds the two equal).  Its
#: tokens open nothing but the local sandbox.
EMBEDDED_BUSINESS = "7lrwfvealkxwkkxz"
EMBEDDED_TOKENS = {"staff": "sbx_staff_harmony_demo_token_0001", "directory": "sbx_directory_harmony_demo_token_0001"}

#: present but empty, these are errors; the optional ones (fallback, directory token) count as unset
REQUIRED_VARS = (ENV_GATEWAY, ENV_BUSINESS, ENV_STAFF_TOKEN)
_FLAG_OF = {ENV_GATEWAY: "gateway_url", ENV_BUSINESS: "business_id", ENV_STAFF_TOKEN: "token_file"}


class Secret:
    """A credential that never shows itself in reprs, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)  # masked in anything the CLI prints or logs, even if a server echoes it

    def reveal(self) -> str:
        """The raw value, for the ``Authorization`` header and nothing else."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:  # never pickled into a plan file or a subprocess by accident
        raise TypeError("a Secret cannot be pickled")


def check_url(url: str, *, what: str) -> str:
    """Validate a door URL (https, or http on loopback only) and return it without a trailing /."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{what} {url!r} is not an http(s) URL",
            hint="Use a full URL such as https://app.meet2know.com/apigw.",
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"{what} {url!r} uses plain http:// to a non-loopback host; tokens would travel unencrypted",
            hint="Use https://, or http:// only for 127.0.0.1 / localhost (e.g. a served sandbox).",
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{what} {url!r} must not contain a query or fragment")
    return url.strip().rstrip("/")


def is_loopback_host(host: str) -> bool:
    """``localhost``, an address of ``127.0.0.0/8`` or ``::1``, literally; nothing else.

    Not ``*.localhost`` (a name a resolver may send anywhere), not ``::ffff:127.0.0.1`` and not
    the shorthand ``127.1``: plain http is allowed only where the name itself proves loopback.
    """
    host = host.lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if address.version == 4:
        return address in ipaddress.ip_network("127.0.0.0/8")
    return address == ipaddress.IPv6Address("::1")


_is_loopback = is_loopback_host


@dataclass(frozen=True)
class Target:
    """One vcita business reached through a gateway door and, optionally, a fallback door.

    It holds a staff token, a directory token (sent with ``X-On-Behalf-Of: <business_id>``), or
    both; ``route_pins`` fix some routes to a door and/or a token (``[targets.X.routes]``).
    """

    name: str
    gateway_url: str
    fallback_url: str | None
    business_id: str
    staff_token: Secret | None
    directory_token: Secret | None = None
    embedded: bool = False
    #: the embedded sandbox's database (only when ``embedded``)
    db_path: Path | None = field(default=None, compare=False)
    #: (route name, pin) pairs, sorted by name
    route_pins: tuple[tuple[str, RoutePin], ...] = ()
    #: how long the package list may hide a new catalog package (``reconciler.core.listlag``)
    list_lag: ListLag = field(default_factory=ListLag, compare=False)

    def __post_init__(self) -> None:
        if self.staff_token is None and self.directory_token is None:
            raise ConfigError(f"target {self.name} has no token: it needs a staff token, a directory token or both")
        if self.embedded:
            return
        object.__setattr__(self, "gateway_url", check_url(self.gateway_url, what="gateway URL"))
        if self.fallback_url is not None:
            object.__setattr__(self, "fallback_url", check_url(self.fallback_url, what="fallback URL"))
        object.__setattr__(self, "route_pins", tuple(sorted(self.route_pins, key=lambda kv: kv[0])))
        for name, pin in self.route_pins:
            if pin.door is Door.FALLBACK and self.fallback_url is None:
                raise ConfigError(f"target {self.name}: route {name} is pinned to the fallback door, "
                                  "but the target has no fallback URL",
                                  hint="Add fallback_url to the target, or pin the route to the gateway.")
            if pin.token is not None and self.token(pin.token) is None:
                raise ConfigError(f"target {self.name}: route {name} is pinned to the {pin.token} token, "
                                  f"but the target has no {pin.token} token",
                                  hint=f"Add {'token_env' if pin.token is TokenKind.STAFF else 'directory_token_env'} "
                                       "to the target, or remove the pin's token.")

    def token(self, kind: TokenKind) -> Secret | None:
        """The target's token of ``kind``, or None."""
        return self.staff_token if kind is TokenKind.STAFF else self.directory_token

    @property
    def pins(self) -> dict[str, RoutePin]:
        return dict(self.route_pins)

    @property
    def local(self) -> bool:
        """The embedded sandbox or a server on loopback (a served sandbox), not a SaaS API."""
        host = urlsplit(self.gateway_url).hostname or ""
        return self.embedded or _is_loopback(host)

    @property
    def identity(self) -> str:
        """A stable string naming the remote state this target addresses (for plan binding)."""
        where = "embedded" if self.embedded else self.gateway_url
        return f"{where}#{self.business_id}"

    def describe(self) -> str:
        """One line for headers of plans and logs: name, where and which business."""
        if self.embedded:
            return f"{self.name} (embedded sandbox {self.db_path}, business {self.business_id})"
        doors = self.gateway_url + (f" + fallback {self.fallback_url}" if self.fallback_url else ", no fallback")
        only = ", directory token only" if self.staff_token is None else ""
        return f"{self.name} ({doors}, business {self.business_id}{only})"


def read_token_file(path: str | Path, *, cwd: Path, what: str = "token file") -> Secret:
    """Read a token from a file: surrounding whitespace stripped; missing/empty/unreadable refused,
    and so is a file others may write (one others may read is warned about, as ssh does)."""
    from reconciler.core.permissions import check_token_file

    p = Path(path).expanduser()
    if not p.is_absolute():
        p = cwd / p
    try:
        check_token_file(p, p.stat(), what)
    except OSError:
        pass  # missing or unreadable: the read below says which
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {p} does not exist", hint="Check the path given to --token-file.") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {p} is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(f"cannot read {what} {p}: permission denied", hint=f"chmod u+r {p}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {p} is not UTF-8 text; it should contain only the token") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {p}: {exc.strerror or type(exc).__name__}") from None
    token = text.strip()
    if not token:
        raise ConfigError(f"{what} {p} is empty", hint="Write the staff token into it (one line).")
    if any(ch.isspace() for ch in token):
        raise ConfigError(f"{what} {p} contains more than one word; it should contain only the token")
    return _checked_token(token, f"{what} {p}")


def _checked_token(token: str, source: str) -> Secret:
    """A token goes into an HTTP header as it is: one word of printable ASCII (never shown)."""
    if not token.isascii() or not token.isprintable() or any(ch.isspace() for ch in token):
        raise ConfigError(f"the token from {source} contains spaces, line breaks or characters a token "
                          "cannot have", hint="Set it to the token alone, on one line.")
    return Secret(token)


def _empty_required(env: Mapping[str, str], flags: Mapping[str, Any]) -> None:
    """A required VCITA_* variable that is present but empty (and not overridden by a flag)."""
    empty = [k for k in REQUIRED_VARS if k in env and not env[k].strip() and not flags.get(_FLAG_OF[k])]
    if not empty:
        return
    names = empty[0] if len(empty) == 1 else ", ".join(empty[:-1]) + " and " + empty[-1]
    raise ConfigError(
        f"{names} {'is' if len(empty) == 1 else 'are'} set but empty",
        hint="Give each a value, or unset it (an empty CI secret is the usual cause); reconciler never "
             "falls back to its embedded sandbox when a target variable is present.",
    )


def resolve_target(
    *,
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    cwd: Path,
    target_name: str | None = None,
    unselected: Callable[[], Target | None] | None = None,
) -> Target:
    """Resolve the run's target: flags > environment > ``reconciler.toml`` > embedded sandbox.

    ``flags`` may hold ``gateway_url``, ``fallback_url``, ``business_id``, ``token_file`` and
    ``directory_token_file`` (``None`` values are ignored).  ``unselected`` is asked for a target
    when neither flags, environment nor ``reconciler.toml`` select one (e.g. a manifests folder's
    ``target.toml``); the embedded sandbox comes after it, and only when nothing at all is
    configured.  Raises :class:`ConfigError` with an actionable message when the combination is
    incomplete, empty or unsafe.  The list-lag settings (``reconciler.core.listlag``) come from the
    target's table and ``RECONCILER_*`` variables, for every kind of target.
    """
    found: dict[str, Any] = {}
    target = _resolve(flags=flags, env=env, cwd=cwd, target_name=target_name, unselected=unselected, found=found)
    lag = ListLag.from_settings(found.get("table", {}), env, where=f"[targets.{target.name}]")
    return target if lag == target.list_lag else replace(target, list_lag=lag)


def _resolve(
    *,
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    cwd: Path,
    target_name: str | None,
    unselected: Callable[[], Target | None] | None,
    found: dict[str, Any],
) -> Target:
    flags = {k: v for k, v in flags.items() if v not in (None, "")}
    if target_name == EMBEDDED_NAME:
        return _embedded_target(flags, {}, cwd, forced=True)
    _empty_required(env, flags)
    raw_env = env
    env = {k: v for k, v in env.items() if v.strip()}
    targets, default, toml_path = load_project_targets(cwd)
    name = target_name or default
    table: dict[str, Any] = {}
    if name is not None:
        if name not in targets:
            known = ", ".join(sorted(targets)) or "none"
            raise ConfigError(
                f"no target named {name!r} in {toml_path} (known targets: {known})",
                hint=f"Add a [targets.{name}] table to {PROJECT_FILE}, or use --target {EMBEDDED_NAME}.",
            )
        table = targets[name]
    found["table"] = table  # its list-lag settings, read by resolve_target
    toml_dir = toml_path.parent

    def pick(flag: str, env_key: str, toml_key: str) -> str | None:
        return flags.get(flag) or env.get(env_key) or table.get(toml_key)

    gateway = pick("gateway_url", ENV_GATEWAY, "gateway_url")
    fallback = pick("fallback_url", ENV_FALLBACK, "fallback_url")
    if gateway is None and fallback is None:
        if name is not None:
            raise ConfigError(f"target {name} in {toml_path} has no gateway_url",
                              hint=f"Add gateway_url to [targets.{name}] (or set {ENV_GATEWAY}).")
        chosen = unselected() if unselected is not None else None
        if chosen is not None:
            return chosen
        if toml_path.is_file():
            known = ", ".join(sorted(targets)) or "none"
            raise ConfigError(
                f"{toml_path} selects no target (targets: {known}) and no {ENV_GATEWAY} is set",
                hint=f'Add default_target = "NAME" to it, pass --target NAME, or --target {EMBEDDED_NAME} '
                     "for the local sandbox.",
            )
        return _embedded_target(flags, env, cwd, forced=False)
    if gateway is None:
        raise ConfigError(
            "a fallback URL is configured but no gateway URL",
            hint=f"Set {ENV_GATEWAY} (or --gateway-url, or gateway_url in the target's table).",
        )
    gateway = check_url(gateway, what="gateway URL")
    fallback = check_url(fallback, what="fallback URL") if fallback else None
    business_id = pick("business_id", ENV_BUSINESS, "business_id")
    if not business_id:
        raise ConfigError(
            f"the gateway URL {gateway} is set but no business id",
            hint=f"Set {ENV_BUSINESS}, pass --business-id, or add business_id to [targets.{name or '<name>'}].",
        )
    staff = _resolve_token(
        flags.get("token_file"), ENV_STAFF_TOKEN, table.get("token_env"), table.get("token_file"),
        env=raw_env, cwd=cwd, toml_dir=toml_dir, target=name, kind="staff",
    )
    directory = _resolve_token(
        flags.get("directory_token_file"), ENV_DIRECTORY_TOKEN, table.get("directory_token_env"),
        table.get("directory_token_file"), env=raw_env, cwd=cwd, toml_dir=toml_dir, target=name,
        kind="directory",
    )
    if staff is None and directory is None:
        if table.get("token_env"):
            msg_hint = f"Set the environment variable {table['token_env']} (named by token_env in [targets.{name}])."
        else:
            msg_hint = f"Set {ENV_STAFF_TOKEN}, or pass --token-file FILE."
        raise ConfigError(f"no staff token for target {name or 'from the environment'}", hint=msg_hint)
    return Target(
        name=name or "env", gateway_url=gateway, fallback_url=fallback, business_id=business_id.strip(),
        staff_token=staff, directory_token=directory, route_pins=table.get(ROUTES_KEY, ()),
    )


def _resolve_token(
    flag_file: str | None, env_key: str, toml_env: str | None, toml_file: str | None, *,
    env: Mapping[str, str], cwd: Path, toml_dir: Path, target: str | None, kind: str,
) -> Secret | None:
    if flag_file:
        return read_token_file(flag_file, cwd=cwd, what=f"{kind} token file")
    if env.get(env_key, "").strip():
        return _checked_token(env[env_key].strip(), f"${env_key}")
    if toml_env:
        value = env.get(toml_env)
        if value is None:
            raise ConfigError(
                f"target {target}: the environment variable {toml_env} (its {kind} token_env) is not set",
                hint=f"export {toml_env}=<the {kind} token of this business>",
            )
        if not value.strip():
            raise ConfigError(
                f"target {target}: the environment variable {toml_env} (its {kind} token_env) is set but empty",
                hint=f"Give {toml_env} the {kind} token of this business (an empty CI secret is the usual cause).",
            )
        return _checked_token(value.strip(), f"${toml_env}")
    if toml_file:
        return read_token_file(toml_file, cwd=toml_dir, what=f"{kind} token file")
    return None


def _embedded_target(flags: Mapping[str, Any], env: Mapping[str, str], cwd: Path, *, forced: bool) -> Target:
    stray = [k for k in ("business_id", "token_file", "directory_token_file") if flags.get(k)]
    stray += [k for k in (ENV_BUSINESS, ENV_STAFF_TOKEN, ENV_DIRECTORY_TOKEN) if env.get(k)]
    if stray and not forced:
        raise ConfigError(
            f"{', '.join(stray)} set but no gateway URL is configured, so reconciler would use the "
            "embedded sandbox and ignore it",
            hint=f"Set {ENV_GATEWAY} (or choose a target with --target), or unset {stray[0]} to use "
            "the embedded sandbox.",
        )
    return Target(
        name=EMBEDDED_NAME,
        gateway_url=EMBEDDED_GATEWAY,
        fallback_url=EMBEDDED_FALLBACK,
        business_id=EMBEDDED_BUSINESS,
        staff_token=Secret(EMBEDDED_TOKENS["staff"]),
        directory_token=Secret(EMBEDDED_TOKENS["directory"]),
        embedded=True,
        db_path=cwd / EMBEDDED_DB,
    )
