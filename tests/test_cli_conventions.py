"""CLI conventions people expect from other tools: global options anywhere, colour switches and
NO_COLOR/FORCE_COLOR, -q, RECONCILER_* variables, an example in every --help, shell completion,
a start-up that imports no heavy library, and a base install without the server extra."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from reconciler.cli import cli
from reconciler.cli.help import EXAMPLES

REPO = Path(__file__).resolve().parents[1]
ANSI = "\x1b["
BAD = "apiVersion: reconciler/v1\nkind: CatalogPackage\nmetadata: {name: x}\nspec:\n  price: '1'\n"


def _env(**extra: str) -> dict[str, str]:
    drop = ("VCITA_", "RECONCILER_", "NO_COLOR", "FORCE_COLOR")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


def cmd(*args: str, cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a fresh process, stdout and stderr piped (not terminals)."""
    return subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=cwd, env=_env(**env),
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    return f


# --- global options after the subcommand, and their variables ---------------------------------


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_works_before_and_after_the_command(bad: Path, where: str) -> None:
    args = ["--debug", "validate", str(bad)] if where == "before" else ["validate", str(bad), "--debug"]
    p = cmd(*args)
    assert p.returncode == 1
    assert "Traceback" in p.stderr and "spec.price: must be a number" in p.stderr


def test_without_debug_no_traceback_and_reconciler_debug_turns_it_on(bad: Path) -> None:
    assert "Traceback" not in cmd("validate", str(bad)).stderr
    assert "Traceback" in cmd("validate", str(bad), RECONCILER_DEBUG="1").stderr


def test_every_global_option_is_accepted_after_every_command() -> None:
    def walk(command: click.Command, path: list[str]) -> list[list[str]]:
        subs = getattr(command, "commands", {})
        return [path] + [p for name, sub in subs.items() for p in walk(sub, [*path, name])]

    paths = walk(cli, [])[1:]
    assert len(paths) >= 18
    for path in paths:
        command: click.Command = cli
        for name in path:
            command = command.commands[name]  # type: ignore[attr-defined]
        opts = {o for p in command.params for o in [*p.opts, *p.secondary_opts]}
        assert {"--debug", "-v", "-q", "--color", "--no-color"} <= opts, path
        if not isinstance(command, click.Group):  # and they parse there
            command.make_context(path[-1], ["--debug", "-vv", "-q", "--no-color", "--help"], resilient_parsing=True)


def test_a_variable_does_not_undo_a_flag_given_before_the_command(bad: Path) -> None:
    # RECONCILER_COLOR=0 (no colour) loses to --color; --no-color after the command wins over both.
    assert ANSI in cmd("--color", "validate", str(bad), RECONCILER_COLOR="0").stderr
    assert ANSI not in cmd("--color", "validate", str(bad), "--no-color").stderr


def test_chdir_and_its_variable(tmp_path: Path) -> None:
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    assert "3 catalog packages" in cmd("-C", str(tmp_path), "validate", cwd=Path("/")).stdout
    assert "3 catalog packages" in cmd("validate", cwd=Path("/"), RECONCILER_CHDIR=str(tmp_path)).stdout


def test_verbose_after_the_command_logs(tmp_path: Path) -> None:
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    quiet = cmd("plan", cwd=tmp_path)
    loud = cmd("plan", "-vv", cwd=tmp_path)  # the embedded sandbox: the client logs each request
    assert quiet.returncode == loud.returncode == 0, loud.stderr
    assert " DEBUG " not in quiet.stderr and " DEBUG reconciler.remote: GET " in loud.stderr
    assert " DEBUG reconciler.remote: GET " in cmd("plan", cwd=tmp_path, RECONCILER_VERBOSE="2").stderr


# --- colour ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "env", "coloured"), [
    ((), {}, False),                                      # piped: plain
    (("--color",), {}, True),                             # --color forces it on a pipe
    ((), {"FORCE_COLOR": "1"}, True),
    ((), {"FORCE_COLOR": "0"}, False),
    ((), {"NO_COLOR": "1"}, False),
    ((), {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),   # NO_COLOR wins over FORCE_COLOR
    (("--color",), {"NO_COLOR": "1"}, True),              # a flag wins over both
    (("--no-color",), {"FORCE_COLOR": "1"}, False),
    ((), {"RECONCILER_COLOR": "1"}, True),
])
def test_colour_switches(bad: Path, args: tuple[str, ...], env: dict[str, str], coloured: bool) -> None:
    p = cmd(*args, "validate", str(bad), **env)
    assert p.returncode == 1
    assert (ANSI in p.stderr) is coloured, p.stderr
    assert "spec.price: must be a number" in p.stderr


def test_forced_colour_reaches_the_plan_on_stdout(tmp_path: Path) -> None:
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    plain = cmd("plan", "--no-refresh", cwd=tmp_path)
    forced = cmd("plan", "--no-refresh", "--color", cwd=tmp_path)
    assert ANSI not in plain.stdout and ANSI in forced.stdout
    assert "Plan: 11 to create" in plain.stdout


# --- -q --------------------------------------------------------------------------------------


def test_quiet_hides_information_not_results_or_errors(tmp_path: Path, bad: Path) -> None:
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    loud = cmd("plan", "--no-refresh", "--out", "plan.json", cwd=tmp_path)
    assert "Saved the plan to plan.json" in loud.stderr
    for quiet in (cmd("plan", "--no-refresh", "--out", "plan.json", "-q", cwd=tmp_path),
                  cmd("-q", "plan", "--no-refresh", "--out", "plan.json", cwd=tmp_path),
                  cmd("plan", "--no-refresh", "--out", "plan.json", cwd=tmp_path, RECONCILER_QUIET="1")):
        assert quiet.returncode == 0
        assert quiet.stderr == "" and "Plan: 11 to create" in quiet.stdout
    p = cmd("state", "list", "-q", cwd=tmp_path)
    assert p.returncode == 0 and p.stderr == ""  # "No state at ...: nothing is tracked yet." is information
    p = cmd("validate", str(bad), "-q")
    assert p.returncode == 1 and "spec.price: must be a number" in p.stderr  # errors are never hidden


# --- RECONCILER_TARGET --------------------------------------------------------------------------


def test_reconciler_target_names_a_target_and_the_flag_wins(tmp_path: Path) -> None:
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    (tmp_path / "reconciler.toml").write_text(
        '[targets.staging]\ngateway_url = "https://example.invalid/apigw"\nbusiness_id = "b1"\n'
        'token_env = "STAGING_TOKEN"\n')
    p = cmd("plan", "--no-refresh", cwd=tmp_path)
    assert p.returncode == 1 and "no target" in p.stderr.lower()  # a reconciler.toml that selects nothing
    p = cmd("plan", "--no-refresh", cwd=tmp_path, RECONCILER_TARGET="nope")
    assert p.returncode == 1 and "no target named 'nope'" in p.stderr and "staging" in p.stderr
    p = cmd("plan", "--no-refresh", cwd=tmp_path, RECONCILER_TARGET="embedded")
    assert p.returncode == 0 and "Plan: 11 to create" in p.stdout, p.stderr
    p = cmd("plan", "--no-refresh", "--target", "embedded", cwd=tmp_path, RECONCILER_TARGET="nope")
    assert p.returncode == 0, p.stderr


def test_reconciler_target_does_not_count_as_a_target_flag_for_all(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    p = cmd("plan", "--all", "--target", "x", cwd=tmp_path)
    assert p.returncode == 1 and "--target cannot be used with --all" in p.stderr
    p = cmd("plan", "--all", cwd=tmp_path, RECONCILER_TARGET="x")
    assert "cannot be used with --all" not in p.stderr


# --- help, examples, completion ------------------------------------------------------------------


def _commands() -> dict[str, click.Command]:
    out: dict[str, click.Command] = {}

    def walk(command: click.Command, path: str) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            out[f"{path} {name}".strip()] = sub
            walk(sub, f"{path} {name}")

    walk(cli, "")
    return out


def test_every_command_has_an_example_that_parses() -> None:
    commands = _commands()
    assert set(commands) == set(EXAMPLES), "add an example to reconciler/cli/help.py"
    for path, rows in EXAMPLES.items():
        text = cmd(*path.split(), "--help").stdout if path in ("plan", "state rm") else None
        if text is not None:
            assert "Examples:" in text and rows[0][0] in text
        for line, what in rows:
            assert what
            words = line.replace('eval "$(', "").replace(')"', "").split()
            assert words[0] == "reconciler"
            args = [w for w in words[1:] if w not in ("--target", "staging")]
            # The example's words parse: the command path resolves and its options exist.
            command: click.Command = cli
            names: list[str] = []
            rest = list(args)
            while isinstance(command, click.Group) and rest and rest[0] in command.commands:
                names.append(rest[0])
                command = command.commands[rest.pop(0)]
            assert names[:len(path.split())] == path.split(), (path, line)
            assert command is commands[" ".join(names)]
            command.make_context(names[-1], rest)  # raises on an unknown option or a bad value


def test_root_help_lists_examples_and_variables() -> None:
    out = cmd("--help").stdout
    for word in ("Examples:", "reconciler completion bash", "RECONCILER_DEBUG", "RECONCILER_TARGET",
                 "-q, --quiet", "--color / --no-color"):
        assert word in out, word
    assert "\n  Declare catalog packages" in out  # the prose is re-flowed, not left indented


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    p = cmd("completion", shell)
    assert p.returncode == 0 and "_RECONCILER_COMPLETE" in p.stdout and f"{shell}_complete" in p.stdout
    assert cmd("completion", "tcsh").returncode == 1


def test_completion_answers_commands_and_options() -> None:
    def complete(words: str, cword: int) -> list[str]:
        p = subprocess.run([sys.executable, "-m", "reconciler"], capture_output=True, text=True, timeout=60, check=True,
                           env=_env(_RECONCILER_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=str(cword)))
        return [line.split(",", 1)[1] for line in p.stdout.splitlines()]

    assert complete("reconciler pl", 1) == ["plan"]
    assert "--detailed-exitcode" in complete("reconciler plan --det", 2)
    assert set(complete("reconciler state ", 2)) >= {"list", "show", "rm", "mv", "unlock", "forget-intent"}


# --- start-up: nothing heavy is imported to show help or complete -----------------------------


def test_the_cli_module_imports_no_heavy_library() -> None:
    heavy = ["pydantic", "starlette", "uvicorn", "uvloop", "httpx", "rich", "ruamel", "yaml", "deepdiff",
             "asyncio", "reconciler.state.store", "reconciler.sandbox.app"]
    code = ("import json, sys; import reconciler.cli; "
            f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/",
                       env=_env())
    assert json.loads(p.stdout) == []


_BLOCK_SERVE = (
    "import sys\n"
    "for name in ('uvicorn', 'uvloop'):\n"
    "    sys.modules[name] = None  # as on a base install: importing them raises ModuleNotFoundError\n"
    "from reconciler.cli import main\n"
    "main()\n"
)


def test_base_install_without_the_serve_extra(tmp_path: Path) -> None:
    """Without uvicorn/uvloop: the embedded sandbox still plans and applies; serving says which
    extra to install, and changes nothing."""
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")

    def base(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", _BLOCK_SERVE, *args], cwd=tmp_path, env=_env(),
                              capture_output=True, text=True, timeout=120, check=False)

    p = base("apply", "--auto-approve")
    assert p.returncode == 0 and "Apply complete: 11 done" in p.stdout, p.stdout + p.stderr
    before = sorted(str(f.relative_to(tmp_path)) for f in tmp_path.rglob("*"))
    p = base("sandbox", "serve", "--port", "0", "--db", "other.db")
    assert p.returncode == 1
    assert "pip install 'reconciler[serve]'" in p.stderr and "Traceback" not in p.stderr
    assert sorted(str(f.relative_to(tmp_path)) for f in tmp_path.rglob("*")) == before


# --- Ctrl-C at the confirmation prompt ------------------------------------------------------------


@pytest.mark.parametrize("sig, code, said", [(signal.SIGINT, 130, b"Error: interrupted"),
                                             (signal.SIGTERM, 143, b"Error: terminated (SIGTERM)")],
                         ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_at_the_prompt_exits_130_and_applies_nothing(tmp_path: Path, sig: signal.Signals, code: int,
                                                           said: bytes) -> None:
    # (SIGTERM too: the event loop's handler would have waited for an answer to the prompt)
    shutil.copytree(REPO / "manifests", tmp_path / "manifests")
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "apply", "--no-color"], cwd=tmp_path, env=_env(),
                            stdin=follower, stdout=follower, stderr=follower, start_new_session=True)
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 180  # the plan before the prompt: generous, the machine may be loaded
    sent = False
    try:
        while proc.poll() is None:  # keep reading: a full terminal buffer would block the child
            phase = "after Ctrl-C" if sent else "waiting for the prompt"
            assert time.monotonic() < deadline, f"timed out {phase}: " + seen.decode(errors="replace")[-400:]
            if select.select([leader], [], [], 0.2)[0]:
                try:
                    seen += os.read(leader, 65536)
                except OSError:
                    break
            if not sent and b"Apply these changes" in seen:
                time.sleep(0.5)  # let it reach input(): the prompt text is written just before
                os.killpg(proc.pid, sig)  # what the terminal sends for Ctrl-C, once
                sent = True
                deadline = time.monotonic() + 30
        assert sent and proc.wait(timeout=30) == code, seen.decode(errors="replace")
        while select.select([leader], [], [], 0.2)[0]:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)  # reaped, so no "still running" warning when a failure leaves it alive
        os.close(leader)
    assert said in seen and b"Traceback" not in seen
    state = tmp_path / "manifests" / ".reconciler" / "state.json"
    assert not state.exists() or not json.loads(state.read_text()).get("resources")


def test_state_commands_default_folder_is_the_states() -> None:
    from reconciler.cli import state_cmds, state_transfer_cmd
    from reconciler.state.store import DEFAULT_MANIFESTS

    assert state_cmds.DEFAULT_MANIFESTS == DEFAULT_MANIFESTS  # a copy, to keep pydantic out of --help
    assert state_transfer_cmd.DEFAULT_MANIFESTS == DEFAULT_MANIFESTS
