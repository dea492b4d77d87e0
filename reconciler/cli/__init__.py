"""The command line: click commands and the single error boundary.

This is the only place that prints, styles output or exits.  Every ReconcilerError becomes one
located, actionable message on stderr and a documented exit code; anything unexpected becomes a
one-line internal error (``--debug`` shows the traceback).

Exit codes are decided in ``exit_codes.py`` (the README's table lists them): 0 success; 1 error
(bad input, refused command, failed operation); 2 changes present (``plan --detailed-exitcode``)
or remote drift (``drift``); 3 pending changes only (``drift``); 130 interrupted (Ctrl-C); 143
terminated (SIGTERM).
``--debug`` or ``RECONCILER_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from reconciler import __version__
from reconciler.cli import exit_codes
from reconciler.cli.output import Console, RedactingFilter, RedactingStream
from reconciler.core.errors import ManifestError, ReconcilerError
from reconciler.core.interrupts import Terminated, handling_signals

DEBUG_ENV = "RECONCILER_DEBUG"


class Context:
    """What every command gets: the console and the global flags (set wherever they were given:
    the option callbacks update this one object, and so the console the error boundary uses)."""

    def __init__(self) -> None:
        self.debug = False
        self.verbose = 0
        self.console = Console()

    @property
    def color(self) -> bool | None:
        return self.console.color

    @color.setter
    def color(self, value: bool | None) -> None:
        self.console.color = value

    @property
    def quiet(self) -> bool:
        return self.console.quiet

    @quiet.setter
    def quiet(self, value: bool) -> None:
        self.console.quiet = value


def _configure_logging(verbose: int) -> None:
    if verbose:
        import logging

        level = logging.DEBUG if verbose > 1 else logging.INFO
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
        logging.getLogger().setLevel(level)
        for handler in logging.getLogger().handlers:  # what a server sent, or a secret, never raw
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())


def _global_setter(attr: str, *, on_group: bool) -> Callable[[click.Context, click.Parameter, Any], None]:
    """An option callback writing a global flag into the run's Context.  Before the command it
    takes flags, RECONCILER_* variables and defaults; after it, only what the command line says
    (so an unset variable there cannot undo a flag given before the command)."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        from click.core import ParameterSource

        if not on_group and ctx.get_parameter_source(param.name or "") is not ParameterSource.COMMANDLINE:
            return
        settings = ctx.ensure_object(Context)
        if attr == "verbose":
            value = max(settings.verbose, value or 0)
            _configure_logging(value)
        if value is not None:
            setattr(settings, attr, value)

    return callback


def _global_options(*, on_group: bool) -> list[click.Option]:
    """--debug, -v, -q, --color/--no-color: accepted before the command (with their RECONCILER_*
    variables) and, hidden from each command's help, after it too."""
    def env(name: str) -> str | None:
        return name if on_group else None

    return [
        click.Option(["--debug"], is_flag=True, default=None, envvar=env(DEBUG_ENV), expose_value=False,
                     callback=_global_setter("debug", on_group=on_group), hidden=not on_group,
                     help="Show tracebacks for errors [RECONCILER_DEBUG=1]."),
        click.Option(["-v", "--verbose"], count=True, envvar=env("RECONCILER_VERBOSE"), expose_value=False,
                     callback=_global_setter("verbose", on_group=on_group), hidden=not on_group,
                     help="Log to stderr (-v info, -vv debug). Tokens are never logged."),
        click.Option(["-q", "--quiet"], is_flag=True, default=None, envvar=env("RECONCILER_QUIET"), expose_value=False,
                     callback=_global_setter("quiet", on_group=on_group), hidden=not on_group,
                     help="Print results, warnings and errors only (no informational lines, no progress)."),
        click.Option(["--color/--no-color"], default=None, envvar=env("RECONCILER_COLOR"), expose_value=False,
                     callback=_global_setter("color", on_group=on_group), hidden=not on_group,
                     help="Force or disable colour (default: on a terminal; NO_COLOR and FORCE_COLOR are honoured)."),
    ]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             params=_global_options(on_group=True))
@click.version_option(__version__, "--version", prog_name="reconciler")
@click.option("-C", "--chdir", "chdir", type=click.Path(exists=True, file_okay=False), metavar="DIR",
              envvar="RECONCILER_CHDIR",
              help="Run as if started in DIR (manifests, state and reconciler.toml are found from there).")
@click.pass_context
def cli(ctx: click.Context, chdir: str | None) -> None:
    """Manage a vcita business's payment packages as code.

    Declare catalog packages and client packages in YAML manifests, review an exact plan,
    apply it safely, and detect drift. The target is configured by VCITA_* variables or a
    reconciler.toml (in this folder or a parent); with neither, every command runs against the
    embedded sandbox (a local vcita API in .reconciler/sandbox.db). 'reconciler doctor' checks
    a target before the first apply.

    Every global option may also follow the command (reconciler plan --debug), and each has a
    variable: RECONCILER_DEBUG, RECONCILER_VERBOSE, RECONCILER_QUIET, RECONCILER_COLOR,
    RECONCILER_CHDIR; RECONCILER_TARGET names the target of reconciler.toml (as --target does).

    \b
    Examples:
      reconciler validate                    check manifests/ offline
      reconciler plan --out plan.json        review the changes, save them
      reconciler apply plan.json             apply exactly that plan
      reconciler --target staging drift      what changed in vcita since the last apply
      reconciler completion bash > ~/.local/share/bash-completion/completions/reconciler
    """
    if chdir is not None:
        os.chdir(chdir)
    settings = ctx.ensure_object(Context)
    _print_library_warnings(settings.console)


def _print_library_warnings(console: Console) -> None:
    """Warnings the library logs (``reconciler.core.permissions``, ``reconciler.warnings``) as ``Warning: ...`` lines
    of this run's console (so --no-color or -q given after the command apply to them too)."""
    import logging  # here: --help and completion do not need it

    class WarningLines(logging.Handler):
        reconciler_warning_lines = True

        def emit(self, record: logging.LogRecord) -> None:
            console.warn(record.getMessage())

    class NoticeLines(logging.Handler):
        reconciler_warning_lines = True

        def emit(self, record: logging.LogRecord) -> None:
            console.info(record.getMessage())

    for name, handler in (("reconciler.core.permissions", WarningLines(logging.WARNING)),
                          ("reconciler.warnings", WarningLines(logging.WARNING)),  # e.g. a state lost beside its backup
                          ("reconciler.notice", NoticeLines(logging.INFO))):  # e.g. a wait for the list
        logger = logging.getLogger(name)
        for h in [h for h in logger.handlers if getattr(h, "reconciler_warning_lines", False)]:
            logger.removeHandler(h)  # one handler, this run's
        logger.addHandler(handler)
        logger.setLevel(handler.level)
        logger.propagate = False  # printed once, even with -v


def _register() -> None:
    from reconciler.cli import (
        apply_cmd,
        import_cmd,
        manifest_cmds,
        plan_cmd,
        state_cmds,
    )

    cli.add_command(manifest_cmds.validate)
    cli.add_command(manifest_cmds.schema)
    cli.add_command(plan_cmd.plan)
    cli.add_command(plan_cmd.show)
    cli.add_command(apply_cmd.apply)
    cli.add_command(import_cmd.import_)
    cli.add_command(state_cmds.state)
    from reconciler.cli import doctor_cmd, drift_cmd, export_cmd

    cli.add_command(drift_cmd.drift)
    cli.add_command(export_cmd.export)
    cli.add_command(doctor_cmd.doctor)
    from reconciler.cli.help import completion
    from reconciler.cli.sandbox_cmds import sandbox

    cli.add_command(sandbox)
    cli.add_command(completion)
    for name, command in cli.commands.items():
        _accept_global_options(command, name)


_GLOBAL_EPILOG = "Global options (--debug, -v, -q, --color/--no-color) may also follow the command."


def _accept_global_options(command: click.Command, path: str) -> None:
    """Let ``command`` (and its subcommands) take the global options after its name too, and end
    its help with its examples."""
    from reconciler.cli.help import epilog

    names = {o for p in command.params for o in p.opts}
    if "--debug" not in names:
        command.params.extend(_global_options(on_group=False))
        command.epilog = "\n\n".join(filter(None, [command.epilog, epilog(path), _GLOBAL_EPILOG]))
    for name, sub in getattr(command, "commands", {}).items():
        _accept_global_options(sub, f"{path} {name}")


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``reconciler`` console script: run, then exit with the right code (a
    SIGINT/SIGTERM once the run is over is ignored: the process is only exiting, with its code)."""
    sys.exit(run(argv, exiting=True))


def run(argv: list[str] | None = None, *, exiting: bool = False) -> int:
    """Run the CLI and return its exit code (the error boundary).

    While it runs, stdout and stderr mask every registered secret (``reconciler.core.safetext``).
    ``exiting``: the process ends after it (the console script), so SIGINT/SIGTERM stay ignored
    after the run instead of getting their previous handlers back.
    """
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(sys.stdout), RedactingStream(sys.stderr)
    try:
        return _run(argv, exiting)
    finally:
        sys.stdout, sys.stderr = streams


def _run(argv: list[str] | None, exiting: bool = False) -> int:
    args = list(argv if argv is not None else sys.argv[1:])
    settings = Context()  # filled in by the global options, wherever they were given

    def debugging() -> bool:
        # The flag may come after the command, or parsing may stop (a usage error) before it.
        return settings.debug or "--debug" in args or _debug_from_env()

    for stream in (sys.stdout, sys.stderr):
        # A value quoted from a manifest may not be encodable (a lone surrogate): escape, never crash.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    console = settings.console
    try:
        with handling_signals(then_ignore=exiting):  # SIGTERM, like Ctrl-C, unwinds and is reported
            rv = cli.main(args=args, prog_name="reconciler", standalone_mode=False, obj=settings)
        return rv if isinstance(rv, int) else exit_codes.OK
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort as e:
        # click turns Ctrl-C (KeyboardInterrupt) into Abort (click.confirm "from None": then it is
        # the context, not the cause); a "no" at a confirmation is an Abort too.
        signalled = next((x for x in (e.__cause__, e.__context__) if isinstance(x, KeyboardInterrupt)), None)
        if signalled is not None:
            if debugging():
                console.traceback()
            return _stopped(console, signalled)
        console.error("aborted")
        return exit_codes.ERROR
    except click.ClickException as e:
        console.error(e.format_message(), hint=_usage_hint(e))
        return exit_codes.ERROR
    except KeyboardInterrupt as e:
        return _stopped(console, e)
    except ManifestError as e:
        if debugging():
            console.traceback()
        for d in e.diagnostics:
            console.diagnostic(d.render())
        nfiles = len({d.file for d in e.diagnostics})
        console.error(f"{e.message} ({nfiles} file{'s' if nfiles != 1 else ''})")
        return exit_codes.ERROR
    except ReconcilerError as e:
        if debugging():
            console.traceback()
        console.error(e.message, hint=e.hint)
        return exit_codes.ERROR
    except OSError as e:
        # A file the user named cannot be read or written (--out in a missing folder, a full disk).
        if debugging():
            console.traceback()
        where = f" {e.filename}" if e.filename else ""
        what = f"{e.filename} is a file, not a folder" if isinstance(e, (FileExistsError, NotADirectoryError)) \
            and e.filename else f"cannot access{where}: {e.strerror or e}"
        console.error(what,
                      hint="Check the path and its permissions; nothing else was changed.")
        return exit_codes.ERROR
    except Exception as e:  # noqa: BLE001 - the boundary: nothing unexpected escapes as a traceback
        if debugging():
            console.traceback()
        console.error(
            f"internal error: {type(e).__name__}: {e}",
            hint="This is a bug in reconciler. Run again with --debug for a traceback and report it.",
        )
        return exit_codes.ERROR


def _stopped(console: Console, e: KeyboardInterrupt) -> int:
    """A run stopped by SIGINT (Ctrl-C) or SIGTERM: one line, 130 or 143.  What it wrote before is
    whole (every write is atomic; an export's files and state are written together or not at all)."""
    if isinstance(e, Terminated):
        console.error("terminated (SIGTERM)")
        return exit_codes.TERMINATED
    console.error("interrupted")
    return exit_codes.INTERRUPTED


def _debug_from_env() -> bool:
    """``RECONCILER_DEBUG`` read as click reads the flag's variable (1/true/yes/on...); a value click
    refuses is reported by click itself, as a usage error."""
    value = os.environ.get(DEBUG_ENV, "")
    try:
        return bool(click.BOOL.convert(value, None, None)) if value.strip() else False
    except click.BadParameter:
        return False


def _usage_hint(e: click.ClickException) -> str | None:
    ctx: Any = getattr(e, "ctx", None)
    if ctx is not None:
        return f"Run '{ctx.command_path} --help' for usage."
    return None
