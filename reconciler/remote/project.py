"""``reconciler.toml``: finding it (the working folder or the nearest parent that has one, as git
finds ``.git``) and reading its named targets and their route pins.

    default_target = "staging"
    [targets.staging]
    gateway_url = "..."; fallback_url = "..."; business_id = "..."; token_env = "STAGING_TOKEN"
    [targets.staging.routes]
    list_catalog_packages = { door = "fallback", token = "directory" }

Resolving a target from it (with flags and the environment) is ``target.resolve_target``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from reconciler.core.errors import ConfigError
from reconciler.remote.routes import DEFAULT_ROUTES, Door, RoutePin, TokenKind

PROJECT_FILE = "reconciler.toml"
#: the key of a target's table of route pins (a table, not a string)
ROUTES_KEY = "routes"
_TOML_KEYS = {
    "gateway_url", "fallback_url", "business_id", "token_env", "directory_token_env", "token_file",
    "directory_token_file",
    "state", "state_dsn_env",  # the state backend of this target (reconciler.state.backends.config)
}
#: numbers of seconds (checked by reconciler.core.listlag.ListLag.from_settings)
_NUMBER_KEYS = {"list_lag_seconds", "create_send_window_seconds", "clock_skew_seconds"}


def find_project_file(cwd: Path) -> Path | None:
    """``reconciler.toml`` in ``cwd`` or the nearest of its parents (as git finds ``.git``)."""
    folder = cwd.absolute()
    for candidate in (folder, *folder.parents):
        path = candidate / PROJECT_FILE
        if path.is_file():
            return path
    return None


def load_project_targets(cwd: Path) -> tuple[dict[str, dict[str, Any]], str | None, Path]:
    """Parse the project's ``reconciler.toml`` (see :func:`find_project_file`): (targets by name,
    default target name, file path).  Without one: ``({}, None, cwd / "reconciler.toml")``."""
    path = find_project_file(cwd)
    if path is None:
        return {}, None, cwd / PROJECT_FILE
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    targets = doc.get("targets", {})
    if not isinstance(targets, dict):
        raise ConfigError(f"{path}: [targets] must be a table of named targets")
    for name, table in targets.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: targets.{name} must be a table")
        for key, value in table.items():
            if key == ROUTES_KEY:
                table[key] = parse_route_pins(value, where=f"{path}: [targets.{name}]")
                continue
            if key in _NUMBER_KEYS:
                continue
            if key not in _TOML_KEYS:
                if "token" in key.lower() or "secret" in key.lower() or "password" in key.lower():
                    raise ConfigError(
                        f"{path}: [targets.{name}] contains a literal credential ({key}); "
                        "reconciler.toml is meant to be committed and must never hold a token",
                        hint=f'Put the token in an environment variable and write token_env = "{name.upper()}_TOKEN".',
                    )
                raise ConfigError(
                    f"{path}: [targets.{name}] has an unknown key {key!r}",
                    hint="Known keys: " + ", ".join(sorted(_TOML_KEYS | _NUMBER_KEYS | {ROUTES_KEY})),
                )
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{path}: [targets.{name}] {key} must be a non-empty string")
    default = doc.get("default_target")
    if default is not None and default not in targets:
        raise ConfigError(f"{path}: default_target = {default!r} names no [targets.{default}] table")
    return targets, default, path


def parse_route_pins(value: Any, *, where: str) -> tuple[tuple[str, RoutePin], ...]:
    """The ``routes`` table of a target: ``{route = {door = "...", token = "..."}}``, checked."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: routes must be a table of route = {{ door = \"...\", token = \"...\" }}")
    known = sorted(r.name for r in DEFAULT_ROUTES)
    doors = [d.value for d in Door]
    tokens = [t.value for t in TokenKind]
    pins = []
    for name, spec in value.items():
        if name not in known:
            raise ConfigError(f"{where}: routes.{name} names no route", hint="Routes: " + ", ".join(known))
        if not isinstance(spec, dict) or not spec or set(spec) - {"door", "token"}:
            raise ConfigError(f"{where}: routes.{name} must be {{ door = \"gateway|fallback\", "
                              "token = \"staff|directory\" } (either or both)")
        door, token = spec.get("door"), spec.get("token")
        if door is not None and door not in doors:
            raise ConfigError(f"{where}: routes.{name}.door must be one of {', '.join(doors)} (got {door!r})")
        if token is not None and token not in tokens:
            raise ConfigError(f"{where}: routes.{name}.token must be one of {', '.join(tokens)} (got {token!r})")
        pins.append((name, RoutePin(door=Door(door) if door else None, token=TokenKind(token) if token else None)))
    return tuple(sorted(pins, key=lambda kv: kv[0]))
