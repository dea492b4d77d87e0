"""Target resolution: precedence, reconciler.toml, token files, URL safety, the embedded default."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import pytest

from reconciler.core.errors import ConfigError
from reconciler.remote import (
    ClientSettings,
    Secret,
    Target,
    read_token_file,
    resolve_target,
)

GW = "https://app.meet2know.com/apigw"
FB = "https://app.meet2know.com/api2"


def write_toml(tmp_path: Path, text: str) -> None:
    (tmp_path / "reconciler.toml").write_text(text, encoding="utf-8")


STAGING = """
[targets.staging]
gateway_url = "https://staging.example.com/apigw"
fallback_url = "https://staging.example.com/api2"
business_id = "bizstaging000001"
token_env = "STAGING_TOKEN"
"""


def test_no_url_anywhere_gives_the_embedded_sandbox(tmp_path: Path) -> None:
    t = resolve_target(flags={}, env={}, cwd=tmp_path)
    assert t.embedded and t.name == "embedded"
    assert t.db_path == tmp_path / ".reconciler" / "sandbox.db"
    from reconciler.sandbox import DEMO

    assert t.business_id == DEMO["business"]["id"]
    assert t.staff_token.reveal() == DEMO["tokens"]["staff"]


def test_env_target(tmp_path: Path) -> None:
    env = {"VCITA_GATEWAY_URL": GW + "/", "VCITA_FALLBACK_URL": FB, "VCITA_BUSINESS_ID": "b1",
           "VCITA_STAFF_TOKEN": " tok \n", "VCITA_DIRECTORY_TOKEN": "dir"}
    t = resolve_target(flags={}, env=env, cwd=tmp_path)
    assert (t.gateway_url, t.fallback_url, t.business_id) == (GW, FB, "b1")
    assert t.staff_token.reveal() == "tok" and t.directory_token == Secret("dir")
    assert not t.embedded and not t.local and t.identity == f"{GW}#b1"


@pytest.mark.parametrize("token", ["s3cr3t\nX-Injected: 1", "s3cr3t words", "s3cr3t\x00", "s3cr3t\u00f6"])
def test_a_token_that_cannot_be_a_header_is_refused_without_showing_it(tmp_path: Path, token: str) -> None:
    env = {"VCITA_GATEWAY_URL": GW, "VCITA_BUSINESS_ID": "b1", "VCITA_STAFF_TOKEN": token}
    with pytest.raises(ConfigError, match=r"the token from \$VCITA_STAFF_TOKEN contains") as caught:
        resolve_target(flags={}, env=env, cwd=tmp_path)
    assert "s3cr3t" not in str(caught.value) + (caught.value.hint or "")
    write_toml(tmp_path, STAGING)
    with pytest.raises(ConfigError, match=r"\$STAGING_TOKEN contains"):
        resolve_target(flags={}, env={"STAGING_TOKEN": token}, cwd=tmp_path, target_name="staging")


def test_flags_override_env_which_overrides_toml(tmp_path: Path) -> None:
    write_toml(tmp_path, STAGING)
    env = {"STAGING_TOKEN": "from-toml-env", "VCITA_BUSINESS_ID": "from-env"}
    t = resolve_target(flags={"gateway_url": "https://flag.example.com/apigw"}, env=env, cwd=tmp_path,
                       target_name="staging")
    assert t.gateway_url == "https://flag.example.com/apigw"  # flag
    assert t.business_id == "from-env"  # env beats toml
    assert t.fallback_url == "https://staging.example.com/api2"  # toml
    assert t.staff_token.reveal() == "from-toml-env" and t.name == "staging"


def test_default_target_from_toml(tmp_path: Path) -> None:
    write_toml(tmp_path, 'default_target = "staging"\n' + STAGING)
    t = resolve_target(flags={}, env={"STAGING_TOKEN": "x"}, cwd=tmp_path)
    assert t.name == "staging" and t.business_id == "bizstaging000001"


def test_a_toml_that_selects_no_target_is_an_error_not_the_sandbox(tmp_path: Path) -> None:
    write_toml(tmp_path, STAGING)
    with pytest.raises(ConfigError, match="selects no target") as err:
        resolve_target(flags={}, env={}, cwd=tmp_path)
    assert "default_target" in (err.value.hint or "") and "--target embedded" in (err.value.hint or "")
    assert not (tmp_path / ".reconciler").exists()
    write_toml(tmp_path, "# no targets yet\n")
    with pytest.raises(ConfigError, match="selects no target"):
        resolve_target(flags={}, env={}, cwd=tmp_path)


def test_a_selected_toml_target_without_a_gateway_is_an_error(tmp_path: Path) -> None:
    write_toml(tmp_path, 'default_target = "half"\n[targets.half]\nbusiness_id = "b"\ntoken_env = "T"\n')
    with pytest.raises(ConfigError, match=r"target half .* has no gateway_url"):
        resolve_target(flags={}, env={"T": "x"}, cwd=tmp_path)


def test_reconciler_toml_is_found_in_a_parent_folder(tmp_path: Path) -> None:
    write_toml(tmp_path, 'default_target = "staging"\n' + STAGING + 'token_file = "tok"\n'.replace(
        "token_file", "directory_token_file"))
    (tmp_path / "tok").write_text("dir-token\n", encoding="utf-8")
    deep = tmp_path / "manifests" / "acme" / "sub"
    deep.mkdir(parents=True)
    t = resolve_target(flags={}, env={"STAGING_TOKEN": "x"}, cwd=deep)
    assert t.name == "staging" and t.business_id == "bizstaging000001"
    assert t.directory_token == Secret("dir-token")  # relative to the toml's folder, not the cwd
    write_toml(tmp_path, STAGING)  # found, but selects nothing: never the sandbox from a subfolder
    with pytest.raises(ConfigError, match=str(tmp_path / "reconciler.toml")):
        resolve_target(flags={}, env={}, cwd=deep)
    assert not (deep / ".reconciler").exists()


@pytest.mark.parametrize("empty", [
    ["VCITA_GATEWAY_URL"], ["VCITA_BUSINESS_ID"], ["VCITA_STAFF_TOKEN"],
    ["VCITA_GATEWAY_URL", "VCITA_BUSINESS_ID", "VCITA_STAFF_TOKEN"],
])
def test_a_required_variable_present_but_empty_is_an_error_naming_it(tmp_path: Path, empty: list[str]) -> None:
    full = {"VCITA_GATEWAY_URL": GW, "VCITA_BUSINESS_ID": "b1", "VCITA_STAFF_TOKEN": "tok"}
    for blank in ("", "  \n"):
        env = {**full, **dict.fromkeys(empty, blank), "VCITA_FALLBACK_URL": "", "VCITA_DIRECTORY_TOKEN": ""}
        with pytest.raises(ConfigError) as err:
            resolve_target(flags={}, env=env, cwd=tmp_path)
        assert "set but empty" in err.value.message
        for k in empty:
            assert k in err.value.message
        for k in set(full) - set(empty):
            assert k not in err.value.message
    assert not (tmp_path / ".reconciler").exists()


def test_every_variable_empty_is_an_error_even_with_a_toml_default(tmp_path: Path) -> None:
    env = dict.fromkeys(("VCITA_GATEWAY_URL", "VCITA_FALLBACK_URL", "VCITA_BUSINESS_ID", "VCITA_STAFF_TOKEN", "VCITA_DIRECTORY_TOKEN"), "")
    with pytest.raises(ConfigError, match="VCITA_GATEWAY_URL, VCITA_BUSINESS_ID and VCITA_STAFF_TOKEN are set but empty"):
        resolve_target(flags={}, env=env, cwd=tmp_path)
    write_toml(tmp_path, 'default_target = "staging"\n' + STAGING)
    with pytest.raises(ConfigError, match="set but empty"):
        resolve_target(flags={}, env={**env, "STAGING_TOKEN": "x"}, cwd=tmp_path)
    # asking for the sandbox by name is not a silent fallback: the variables are irrelevant then
    assert resolve_target(flags={}, env=env, cwd=tmp_path, target_name="embedded").embedded


def test_empty_optional_variables_count_as_unset(tmp_path: Path) -> None:
    env = {"VCITA_FALLBACK_URL": "", "VCITA_DIRECTORY_TOKEN": " "}
    assert resolve_target(flags={}, env=env, cwd=tmp_path).embedded
    full = {"VCITA_GATEWAY_URL": GW, "VCITA_BUSINESS_ID": "b1", "VCITA_STAFF_TOKEN": "tok", **env}
    t = resolve_target(flags={}, env=full, cwd=tmp_path)
    assert t.fallback_url is None and t.directory_token is None


def test_a_flag_supplies_what_an_empty_variable_would_not(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("from-file\n", encoding="utf-8")
    env = {"VCITA_GATEWAY_URL": GW, "VCITA_BUSINESS_ID": "b1", "VCITA_STAFF_TOKEN": ""}
    t = resolve_target(flags={"token_file": "tok"}, env=env, cwd=tmp_path)
    assert t.staff_token == Secret("from-file")


def test_a_token_env_set_but_empty_says_so(tmp_path: Path) -> None:
    write_toml(tmp_path, STAGING)
    with pytest.raises(ConfigError, match=r"STAGING_TOKEN .* is set but empty"):
        resolve_target(flags={}, env={"STAGING_TOKEN": ""}, cwd=tmp_path, target_name="staging")


def test_ci_does_not_matter(tmp_path: Path) -> None:
    assert resolve_target(flags={}, env={"CI": "true"}, cwd=tmp_path).embedded
    assert resolve_target(flags={}, env={"CI": ""}, cwd=tmp_path).embedded


def test_a_directory_only_target(tmp_path: Path) -> None:
    env = {"VCITA_GATEWAY_URL": GW, "VCITA_BUSINESS_ID": "b1", "VCITA_DIRECTORY_TOKEN": "dir"}
    t = resolve_target(flags={}, env=env, cwd=tmp_path)
    assert t.staff_token is None and t.directory_token == Secret("dir")
    assert "directory token only" in t.describe() and "no fallback" in t.describe()


ROUTED = STAGING + """
[targets.staging.routes]
list_catalog_packages = { door = "gateway", token = "directory" }
get_client_package = { door = "fallback" }
"""


def test_route_pins_from_the_toml(tmp_path: Path) -> None:
    from reconciler.remote import RoutePin, TokenKind
    from reconciler.remote.routes import Door

    write_toml(tmp_path, ROUTED)
    t = resolve_target(flags={}, env={"STAGING_TOKEN": "s", "VCITA_DIRECTORY_TOKEN": "d"}, cwd=tmp_path,
                       target_name="staging")
    assert t.pins == {"list_catalog_packages": RoutePin(Door.GATEWAY, TokenKind.DIRECTORY),
                      "get_client_package": RoutePin(Door.FALLBACK, None)}
    assert t.pins["list_catalog_packages"].toml() == '{ door = "gateway", token = "directory" }'
    with pytest.raises(ConfigError, match="pinned to the directory token, but the target has no directory token"):
        resolve_target(flags={}, env={"STAGING_TOKEN": "s"}, cwd=tmp_path, target_name="staging")
    no_fallback = ROUTED.replace('fallback_url = "https://staging.example.com/api2"\n', "")
    write_toml(tmp_path, no_fallback)
    with pytest.raises(ConfigError, match="pinned to the fallback door, but the target has no fallback URL"):
        resolve_target(flags={}, env={"STAGING_TOKEN": "s", "VCITA_DIRECTORY_TOKEN": "d"}, cwd=tmp_path,
                       target_name="staging")


@pytest.mark.parametrize("bad,message", [
    ('list_packages = { door = "gateway" }', "routes.list_packages names no route"),
    ('list_clients = { door = "side" }', "door must be one of gateway, fallback"),
    ('list_clients = { token = "app" }', "token must be one of staff, directory"),
    ('list_clients = "gateway"', "must be { door"),
    ('list_clients = { door = "gateway", why = "x" }', "must be { door"),
])
def test_bad_route_pins_are_located(tmp_path: Path, bad: str, message: str) -> None:
    write_toml(tmp_path, STAGING + "[targets.staging.routes]\n" + bad + "\n")
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        resolve_target(flags={}, env={"STAGING_TOKEN": "s"}, cwd=tmp_path, target_name="staging")
    assert "[targets.staging]" in err.value.message


def test_embedded_can_be_forced_by_name(tmp_path: Path) -> None:
    write_toml(tmp_path, 'default_target = "staging"\n' + STAGING)
    assert resolve_target(flags={}, env={}, cwd=tmp_path, target_name="embedded").embedded


def test_token_env_named_but_unset_says_which_variable(tmp_path: Path) -> None:
    write_toml(tmp_path, STAGING)
    with pytest.raises(ConfigError) as err:
        resolve_target(flags={}, env={}, cwd=tmp_path, target_name="staging")
    assert "STAGING_TOKEN" in str(err.value) and "STAGING_TOKEN" in (err.value.hint or "")


def test_literal_token_in_toml_is_refused(tmp_path: Path) -> None:
    write_toml(tmp_path, STAGING + 'token = "abc"\n')
    with pytest.raises(ConfigError, match="literal credential") as err:
        resolve_target(flags={}, env={}, cwd=tmp_path, target_name="staging")
    assert "abc" not in str(err.value) and "token_env" in (err.value.hint or "")


def test_unknown_toml_key_and_unknown_target(tmp_path: Path) -> None:
    write_toml(tmp_path, STAGING + 'gatway_url = "x"\n')
    with pytest.raises(ConfigError, match="unknown key 'gatway_url'"):
        resolve_target(flags={}, env={}, cwd=tmp_path, target_name="staging")
    write_toml(tmp_path, STAGING)
    with pytest.raises(ConfigError, match=r"no target named 'prod'.*staging"):
        resolve_target(flags={}, env={}, cwd=tmp_path, target_name="prod")
    write_toml(tmp_path, "targets = [")
    with pytest.raises(ConfigError, match="invalid TOML"):
        resolve_target(flags={}, env={}, cwd=tmp_path)


def test_gateway_without_business_id_or_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no business id") as err:
        resolve_target(flags={}, env={"VCITA_GATEWAY_URL": GW, "VCITA_STAFF_TOKEN": "t"}, cwd=tmp_path)
    assert "VCITA_BUSINESS_ID" in (err.value.hint or "")
    with pytest.raises(ConfigError, match="no staff token") as err:
        resolve_target(flags={}, env={"VCITA_GATEWAY_URL": GW, "VCITA_BUSINESS_ID": "b"}, cwd=tmp_path)
    assert "VCITA_STAFF_TOKEN" in (err.value.hint or "") and "--token-file" in (err.value.hint or "")


def test_fallback_without_gateway(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no gateway URL"):
        resolve_target(flags={}, env={"VCITA_FALLBACK_URL": FB}, cwd=tmp_path)


def test_credentials_without_url_are_not_silently_ignored(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VCITA_STAFF_TOKEN set but no gateway URL"):
        resolve_target(flags={}, env={"VCITA_STAFF_TOKEN": "real"}, cwd=tmp_path)


@pytest.mark.parametrize("url,ok", [
    ("http://127.0.0.1:8080/apigw", True),
    ("http://localhost:9/apigw", True),
    ("http://[::1]:9/api2", True),
    ("http://127.8.9.10:9/api2", True),
    ("http://LOCALHOST:9/apigw", True),
    ("https://api.vcita.biz", True),
    ("http://evil.localhost/apigw", False),
    ("http://localhost.evil.com/apigw", False),
    ("http://127.1/apigw", False),
    ("http://[::ffff:127.0.0.1]/apigw", False),
    ("http://[::2]/apigw", False),
    ("http://128.0.0.1/apigw", False),
    ("http://0.0.0.0/apigw", False),
    ("http://api.vcita.biz/apigw", False),
    ("http://10.0.0.5/apigw", False),
    ("ftp://127.0.0.1/x", False),
    ("api.vcita.biz", False),
])
def test_plain_http_only_on_loopback(tmp_path: Path, url: str, ok: bool) -> None:
    env = {"VCITA_GATEWAY_URL": url, "VCITA_BUSINESS_ID": "b", "VCITA_STAFF_TOKEN": "t"}
    if ok:
        t = resolve_target(flags={}, env=env, cwd=tmp_path)
        assert t.gateway_url == url.rstrip("/") and t.local == url.startswith("http:")
    elif url.startswith("http://"):
        with pytest.raises(ConfigError, match="plain http:// to a non-loopback host"):
            resolve_target(flags={}, env=env, cwd=tmp_path)
    else:
        with pytest.raises(ConfigError):
            resolve_target(flags={}, env=env, cwd=tmp_path)


def test_target_itself_refuses_insecure_urls() -> None:
    with pytest.raises(ConfigError, match="plain http"):
        Target(name="x", gateway_url="http://example.com/apigw", fallback_url=None, business_id="b",
               staff_token=Secret("t"))


def test_token_file(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("  sekrit-token\n\n", encoding="utf-8")
    env = {"VCITA_GATEWAY_URL": GW, "VCITA_BUSINESS_ID": "b", "VCITA_STAFF_TOKEN": "env-token"}
    t = resolve_target(flags={"token_file": "tok"}, env=env, cwd=tmp_path)
    assert t.staff_token.reveal() == "sekrit-token"  # the flag beats the environment


def test_token_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_token_file("missing", cwd=tmp_path)
    (tmp_path / "empty").write_text(" \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is empty"):
        read_token_file("empty", cwd=tmp_path)
    (tmp_path / "two").write_text("a b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="only the token"):
        read_token_file("two", cwd=tmp_path)
    with pytest.raises(ConfigError, match="is a directory"):
        read_token_file(tmp_path, cwd=tmp_path)
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_token_file("bin", cwd=tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_token_file(tmp_path: Path) -> None:
    p = tmp_path / "locked"
    p.write_text("t", encoding="utf-8")
    p.chmod(0)
    with pytest.raises(ConfigError, match="permission denied"):
        read_token_file(p, cwd=tmp_path)


def test_secret_never_shows_itself() -> None:
    s = Secret("canary-value")
    t = Target(name="x", gateway_url=GW, fallback_url=FB, business_id="b", staff_token=s,
               directory_token=Secret("canary-dir"))
    for text in (repr(s), str(s), f"{s}", repr(t), str(t), t.describe(), t.identity):
        assert "canary" not in text
    with pytest.raises(TypeError):
        pickle.dumps(s)


def test_client_defaults_follow_the_target(tmp_path: Path) -> None:
    remote = Target(name="x", gateway_url=GW, fallback_url=FB, business_id="b", staff_token=Secret("t"))
    assert (ClientSettings.for_target(remote).concurrency, ClientSettings.for_target(remote).rate) == (8, 20.0)
    tuned = ClientSettings.for_target(remote, concurrency=4, rate=None)  # None: not given
    assert (tuned.concurrency, tuned.rate) == (4, 20.0)
    local = resolve_target(flags={}, env={}, cwd=tmp_path)
    assert (ClientSettings.for_target(local).concurrency, ClientSettings.for_target(local).rate) == (32, None)
