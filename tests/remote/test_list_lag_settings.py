"""The list-lag bounds of a target (reconciler.core.listlag): defaults, reconciler.toml, RECONCILER_*
variables (which win), bad values refused with the setting named, and the moment they give."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from reconciler.core.errors import ConfigError
from reconciler.core.listlag import ListLag, parse_utc, utc_stamp
from reconciler.remote import resolve_target

TOML = """
default_target = "prod"
[targets.prod]
gateway_url = "https://app.meet2know.com/apigw"
business_id = "biz0000000000001"
token_env = "PROD_TOKEN"
{extra}
"""
VARS = ("RECONCILER_LIST_LAG_SECONDS", "RECONCILER_CREATE_SEND_WINDOW_SECONDS", "RECONCILER_CLOCK_SKEW_SECONDS")


def _resolve(tmp_path: Path, extra: str = "", **env: str) -> ListLag:
    (tmp_path / "reconciler.toml").write_text(TOML.format(extra=extra), encoding="utf-8")
    return resolve_target(flags={}, env={"PROD_TOKEN": "t0k3n", **env}, cwd=tmp_path).list_lag


def test_the_defaults_follow_the_api_notes(tmp_path: Path) -> None:
    assert _resolve(tmp_path) == ListLag(lag=20, send_window=30, skew=5)  # "AT polls for up to 20 s"


def test_the_embedded_sandbox_gets_the_defaults_and_the_variables(tmp_path: Path) -> None:
    assert resolve_target(flags={}, env={}, cwd=tmp_path).list_lag == ListLag()
    t = resolve_target(flags={}, env={"RECONCILER_LIST_LAG_SECONDS": "3"}, cwd=tmp_path)
    assert t.embedded and t.list_lag == ListLag(lag=3)


def test_toml_settings_and_variables_that_win(tmp_path: Path) -> None:
    extra = "list_lag_seconds = 7\ncreate_send_window_seconds = 12.5\nclock_skew_seconds = 0"
    assert _resolve(tmp_path, extra) == ListLag(lag=7, send_window=12.5, skew=0)
    assert _resolve(tmp_path, extra, RECONCILER_LIST_LAG_SECONDS="2") == ListLag(lag=2, send_window=12.5, skew=0)
    assert _resolve(tmp_path, extra, RECONCILER_LIST_LAG_SECONDS="  ") == ListLag(lag=7, send_window=12.5, skew=0)


@pytest.mark.parametrize("extra, env, named", [
    ('list_lag_seconds = "soon"', {}, "[targets.prod] list_lag_seconds"),
    ("list_lag_seconds = -1", {}, "[targets.prod] list_lag_seconds"),
    ("clock_skew_seconds = 4000", {}, "[targets.prod] clock_skew_seconds"),
    ("list_lag_seconds = true", {}, "[targets.prod] list_lag_seconds"),
    ("", {"RECONCILER_CLOCK_SKEW_SECONDS": "nan"}, "$RECONCILER_CLOCK_SKEW_SECONDS"),
    ("", {"RECONCILER_LIST_LAG_SECONDS": "20s"}, "$RECONCILER_LIST_LAG_SECONDS"),
    ("create_send_window_seconds = 0", {}, "create_send_window_seconds must be more than 0"),
])
def test_bad_values_are_refused_naming_the_setting(tmp_path: Path, extra: str, env: dict[str, str],
                                                    named: str) -> None:
    with pytest.raises(ConfigError) as info:
        _resolve(tmp_path, extra, **env)
    assert named in info.value.message


def test_an_unknown_key_lists_the_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _resolve(tmp_path, "list_lag = 3")
    assert "list_lag_seconds" in (info.value.hint or "")


def test_settled_at_adds_the_second_of_precision_the_window_the_lag_and_the_skew() -> None:
    lag = ListLag(lag=20, send_window=30, skew=5)
    assert lag.settled_at("2026-11-20T10:00:00Z") == datetime(2026, 11, 20, 10, 0, 56, tzinfo=UTC)
    with pytest.raises(ValueError):
        lag.settled_at("yesterday")
    assert utc_stamp(parse_utc("2026-11-20T10:00:00.250Z")) == "2026-11-20T10:00:00.250Z"
