"""Which state backend a run uses, and the DSN of a database one, never from a file.

Chosen, highest first, by the flags ``--state-backend local|postgres`` and ``--state-dsn-env
VAR``; a business folder's ``target.toml`` (``state = "postgres"``, ``state_dsn_env = "VAR"``);
the run's ``[targets.NAME]`` table in ``reconciler.toml``; the top level of ``reconciler.toml``
(found in the working folder or a parent); else ``local``, the state file of today.

The DSN itself (``host=... password=...`` or ``postgresql://user:password@host/db``) only ever
comes from the environment variable named by ``state_dsn_env`` (default
``RECONCILER_STATE_DSN``): a DSN written into a file, or passed where a variable name is
expected, is refused without being repeated.  It is held in a :class:`Secret` and no message
quotes it (see :func:`describe_dsn`, which shows host, port and database only).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.core.errors import ConfigError
from reconciler.remote.project import find_project_file
from reconciler.remote.target import Secret

BACKENDS = ("local", "postgres")
DEFAULT_DSN_ENV = "RECONCILER_STATE_DSN"
#: the keys a reconciler.toml (top level or a target's table) or a target.toml may set
STATE_KEYS = frozenset({"state", "state_dsn_env"})
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


@dataclass(frozen=True)
class StateConfig:
    """The backend of a run: ``local`` (the state file) or ``postgres`` (a database row)."""

    backend: str = "local"
    dsn_env: str = DEFAULT_DSN_ENV
    source: str = "default"  # where the choice was made, for messages

    @property
    def is_local(self) -> bool:
        return self.backend == "local"

    def dsn(self, env: Mapping[str, str]) -> Secret:
        """The DSN from the environment; ConfigError naming the variable (never its value)."""
        value = env.get(self.dsn_env)
        if value is None:
            raise ConfigError(f"the state backend is postgres ({self.source}) but the environment variable "
                              f"{self.dsn_env} is not set",
                              hint=f"export {self.dsn_env}='host=... dbname=... user=... password=...' from your "
                                   "secret store (a Kubernetes secret, a CI secret); never write it in a file.")
        if not value.strip():
            raise ConfigError(f"the environment variable {self.dsn_env} (the state database's DSN) is set but empty",
                              hint="An empty CI secret is the usual cause.")
        check_dsn(value, self.dsn_env)
        return Secret(value.strip())


def check_dsn(value: str, where: str) -> None:
    """ConfigError (which never quotes ``value``) unless it parses as a libpq connection string."""
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise ConfigError("the postgres state backend needs the psycopg driver, which is not installed",
                          hint="pip install 'reconciler[postgres]'") from None
    try:
        conninfo_to_dict(value)
    except Exception:  # noqa: BLE001 - its message quotes the DSN: never shown
        raise ConfigError(f"{where} is not a PostgreSQL connection string (key=value pairs, or a "
                          "postgresql://user@host:port/database URL); its value is not shown") from None


def describe_dsn(dsn: Secret) -> str:
    """``host H port P database D`` of a DSN, for messages: never the password or the whole string."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn.reveal())
    except Exception:  # noqa: BLE001 - checked before; a message must not fail
        return "the configured database"
    host = str(parts.get("host") or parts.get("hostaddr") or "localhost")
    out = f"host {host}"
    if parts.get("port"):
        out += f" port {parts['port']}"
    if parts.get("dbname"):
        out += f" database {parts['dbname']}"
    return _printable(out)


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def check_var_name(value: Any, where: str) -> str:
    """``value`` as the name of an environment variable; a DSN given instead is refused unquoted."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be the name of an environment variable, e.g. {DEFAULT_DSN_ENV}")
    if not _VAR_NAME.match(value.strip()):
        looks_like_dsn = any(c in value for c in "=@:/ ")
        raise ConfigError(
            f"{where} must be the name of the environment variable holding the DSN"
            + (", not a connection string (refused; it is not shown)" if looks_like_dsn else
               " (letters, digits and _ only)"),
            hint="Put the DSN in a variable (from your secret store) and name it: "
                 f"state_dsn_env = \"{DEFAULT_DSN_ENV}\".")
    return value.strip()


def _check_backend(value: Any, where: str) -> str:
    if value not in BACKENDS:
        raise ConfigError(f"{where} must be one of {', '.join(BACKENDS)}")
    return str(value)


def _keys_of(table: Mapping[str, Any], where: str) -> tuple[str | None, str | None]:
    for key in table:
        if key.startswith("state") and key not in STATE_KEYS and ("dsn" in key or "password" in key or "url" in key):
                raise ConfigError(f"{where}: {key} would hold the state database's DSN in a file, which is refused "
                                  "(its value is not shown)",
                                  hint=f"Name the variable holding it instead: state_dsn_env = \"{DEFAULT_DSN_ENV}\".")
    backend = table.get("state")
    dsn_env = table.get("state_dsn_env")
    return (_check_backend(backend, f"{where}: state") if backend is not None else None,
            check_var_name(dsn_env, f"{where}: state_dsn_env") if dsn_env is not None else None)


def _project_table(cwd: Path, target_name: str | None) -> list[tuple[dict[str, Any], str]]:
    """The state keys of reconciler.toml: the target's table first, then the top level."""
    path = find_project_file(cwd)
    if path is None:
        return []
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read as TOML: {e}") from None
    found = []
    targets = doc.get("targets")
    if target_name and isinstance(targets, dict) and isinstance(targets.get(target_name), dict):
        found.append((targets[target_name], f"{path} [targets.{target_name}]"))
    found.append((doc, str(path)))
    return found


def resolve_state_config(*, backend: str | None = None, dsn_env: str | None = None, cwd: Path,
                         target_name: str | None = None, folder: Path | None = None) -> StateConfig:
    """The run's :class:`StateConfig` (see the module docstring for the order).  ``folder`` is
    the business folder whose ``target.toml`` may choose; ``target_name`` the target's table."""
    layers: list[tuple[str | None, str | None, str]] = []
    if backend is not None or dsn_env is not None:
        layers.append((_check_backend(backend, "--state-backend") if backend is not None else None,
                       check_var_name(dsn_env, "--state-dsn-env") if dsn_env is not None else None,
                       "--state-backend"))
    if folder is not None and (folder / "target.toml").is_file():
        path = folder / "target.toml"
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot be read as TOML: {e}") from None
        layers.append((*_keys_of(table, str(path)), str(path)))
    for table, where in _project_table(cwd, target_name):
        layers.append((*_keys_of(table, where), where))
    chosen_backend = next(((b, src) for b, _, src in layers if b is not None), ("local", "default"))
    chosen_env = next((e for _, e, _ in layers if e is not None), DEFAULT_DSN_ENV)
    return StateConfig(backend=chosen_backend[0], dsn_env=chosen_env, source=chosen_backend[1])
