"""The command line: click commands and the single error boundary.

This is the only place that prints, styles output or exits.  Every ReconcilerError becomes one
located, actionable message on stderr and a documented exit code; anything unexpected becomes a
one-line internal error (``--debug`` shows the traceback).

Exit codes are decided in ``exit_codes.py`` (the README's table lists them): 0 success; 1 error
(bad input, refused command, failed operation); 2 changes present (``plan --detailed-exitcode``)
or remote drift (``drift``); 3 pending changes only (``drift``); 130 interrupted (Ctrl-C); 143
terminated (SIGTERM during apply).
``--debug`` or ``RECONCILER_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from reconciler import __version__
from reconciler.cli import exit_codes
from reconciler.cli.output import Console, RedactingFilter, RedactingStream
from reconciler.errors import ManifestError, ReconcilerError

DEBUG_ENV = "RECONCILER_DEBUG"


class Context:
    """What every command gets: the console and the global flags."""

    def __init__(self, debug: bool, verbose: int, color: bool | None) -> None:
        self.debug = debug
        self.verbose = verbose
        self.console = Console(color=color)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="reconciler")
@click.option("--debug", is_flag=True, envvar=DEBUG_ENV, help="Show tracebacks for errors [RECONCILER_DEBUG=1].")
@click.option("-v", "--verbose", count=True, help="Log to stderr (-v info, -vv debug). Tokens are never logged.")
@click.option("--color/--no-color", default=None, help="Force or disable colour (default: when stdout is a terminal).")
@click.option("-C", "--chdir", "chdir", type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="Run as if started in DIR (manifests, state and reconciler.toml are found from there).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int, color: bool | None, chdir: str | None) -> None:
    """Manage a vcita business's payment packages as code.

    Declare catalog packages and client packages in YAML manifests, review an exact plan,
    apply it safely, and detect drift. The target is configured by VCITA_* variables or a
    reconciler.toml (in this folder or a parent); with neither, every command runs against the
    embedded sandbox (a local vcita API in .reconciler/sandbox.db). 'reconciler doctor' checks
    a target before the first apply.
    """
    if chdir is not None:
        os.chdir(chdir)
    ctx.obj = Context(debug=debug, verbose=verbose, color=color)
    _print_library_warnings(color)
    if verbose:
        logging.basicConfig(
            level=logging.DEBUG if verbose > 1 else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        for handler in logging.getLogger().handlers:  # what a server sent, or a secret, never raw
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())


class _WarningLines(logging.Handler):
    """Warnings the library logs about files (reconciler.permissions) as ``Warning: ...`` lines."""

    def __init__(self, color: bool | None) -> None:
        super().__init__(logging.WARNING)
        self.color = color

    def emit(self, record: logging.LogRecord) -> None:
        Console(color=self.color).warn(record.getMessage())


def _print_library_warnings(color: bool | None) -> None:
    logger = logging.getLogger("reconciler.permissions")
    for h in [h for h in logger.handlers if isinstance(h, _WarningLines)]:
        logger.removeHandler(h)  # one handler, with this run's colour choice
    logger.addHandler(_WarningLines(color))
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
    cli.add_command(apply_cmd.apply)
    cli.add_command(import_cmd.import_)
    cli.add_command(state_cmds.state)
    from reconciler.cli import doctor_cmd, drift_cmd, export_cmd

    cli.add_command(drift_cmd.drift)
    cli.add_command(export_cmd.export)
    cli.add_command(doctor_cmd.doctor)
    try:
        from reconciler.sandbox.cli import sandbox
    except ImportError:  # the sandbox is optional while it is being built
        return
    cli.add_command(sandbox)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``reconciler`` console script: run, then exit with the right code."""
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (the error boundary).

    While it runs, stdout and stderr mask every registered secret (``reconciler.safetext``).
    """
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(sys.stdout), RedactingStream(sys.stderr)  # type: ignore[assignment]
    try:
        return _run(argv)
    finally:
        sys.stdout, sys.stderr = streams


def _run(argv: list[str] | None) -> int:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or _debug_from_env()
    for stream in (sys.stdout, sys.stderr):
        # A value quoted from a manifest may not be encodable (a lone surrogate): escape, never crash.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    console = Console(color=None)
    try:
        rv = cli.main(args=argv, prog_name="reconciler", standalone_mode=False)
        return rv if isinstance(rv, int) else exit_codes.OK
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort as e:
        # click turns Ctrl-C (KeyboardInterrupt) into Abort; a "no" at a confirmation is an Abort too.
        if isinstance(e.__cause__, KeyboardInterrupt):
            if debug:
                console.traceback()
            console.error("interrupted")
            return exit_codes.INTERRUPTED
        console.error("aborted")
        return exit_codes.ERROR
    except click.ClickException as e:
        console.error(e.format_message(), hint=_usage_hint(e))
        return exit_codes.ERROR
    except KeyboardInterrupt:
        console.error("interrupted")
        return exit_codes.INTERRUPTED
    except ManifestError as e:
        if debug:
            console.traceback()
        for d in e.diagnostics:
            console.diagnostic(d.render())
        nfiles = len({d.file for d in e.diagnostics})
        console.error(f"{e.message} ({nfiles} file{'s' if nfiles != 1 else ''})")
        return exit_codes.ERROR
    except ReconcilerError as e:
        if debug:
            console.traceback()
        console.error(e.message, hint=e.hint)
        return exit_codes.ERROR
    except OSError as e:
        # A file the user named cannot be read or written (--out in a missing folder, a full disk).
        if debug:
            console.traceback()
        where = f" {e.filename}" if e.filename else ""
        what = f"{e.filename} is a file, not a folder" if isinstance(e, (FileExistsError, NotADirectoryError)) \
            and e.filename else f"cannot access{where}: {e.strerror or e}"
        console.error(what,
                      hint="Check the path and its permissions; nothing else was changed.")
        return exit_codes.ERROR
    except Exception as e:  # noqa: BLE001 - the boundary: nothing unexpected escapes as a traceback
        if debug:
            console.traceback()
        console.error(
            f"internal error: {type(e).__name__}: {e}",
            hint="This is a bug in reconciler. Run again with --debug for a traceback and report it.",
        )
        return exit_codes.ERROR


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
