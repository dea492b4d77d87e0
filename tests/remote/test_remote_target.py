"""Target resolution: precedence, reconciler.toml, token files, URL safety, the embedded default."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from reconciler.errors import ConfigError
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


def test_toml_targets_are_not_used_unless_selected(tmp_path: Path) -> None:
    write_toml(tmp_path, STAGING)
    assert resolve_target(flags={}, env={}, cwd=tmp_path).embedded


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
    with pytest.raises(ConfigError, match="no target named 'prod'.*staging"):
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
    ("https://api.vcita.biz", True),
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
