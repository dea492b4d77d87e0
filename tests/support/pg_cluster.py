"""A throwaway PostgreSQL server for the tests and benchmarks of the postgres state backend.

:class:`PgCluster` ``initdb``s a cluster in a temporary folder, starts ``postgres`` on a free
loopback port (TCP only, no Unix socket outside that folder) with password authentication, and
stops it and removes the folder at the end.  ``initdb`` and ``postgres`` refuse to run as root,
and CI runs as root: then both run as an unprivileged user (the machine's ``postgres`` user, or
``reconciler-pg``, created for it), in a folder under /tmp that user owns.

The server binaries are found in ``$RECONCILER_PG_BIN``, ``pg_config --bindir``, the newest
``/usr/lib/postgresql/*/bin`` (Debian's packages) or ``PATH``; :func:`find_bindir` returns None
when there are none (``.ci/run`` installs them).  Nothing here is a mock: it is the real server.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ADMIN = "pgadmin"
#: the watchdog of PgCluster._watch: argv = parent pid, pg_ctl, data folder, root folder, uid, gid
_WATCHDOG = r"""
import os, shutil, subprocess, sys, time
parent, pg_ctl, data, root, uid, gid = sys.argv[1:]
while os.path.exists(os.path.join(data, "postmaster.pid")):
    try:
        os.kill(int(parent), 0)
    except ProcessLookupError:
        as_user = {} if uid == "-1" else {"user": int(uid), "group": int(gid), "extra_groups": []}
        subprocess.run([pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True, timeout=60,
                       cwd="/", **as_user)
        shutil.rmtree(root, ignore_errors=True)
        break
    except PermissionError:
        pass
    time.sleep(1)
"""
FALLBACK_USER = "reconciler-pg"


def find_bindir() -> Path | None:
    """The folder of ``initdb``, ``pg_ctl`` and ``postgres``, or None when the server is not installed."""
    candidates: list[Path] = []
    if os.environ.get("RECONCILER_PG_BIN"):
        candidates.append(Path(os.environ["RECONCILER_PG_BIN"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10).stdout.strip()
            if out:
                candidates.append(Path(out))
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version(p.parent.name), reverse=True)
    candidates.extend(debian)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _version(name: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in name.split("."))
    except ValueError:
        return (0,)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run the server as when we are root (created when missing)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", FALLBACK_USER):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", FALLBACK_USER],
                   check=True, capture_output=True, timeout=60)
    return pwd.getpwnam(FALLBACK_USER)


class PgCluster:
    """One PostgreSQL server on 127.0.0.1:``port`` whose superuser ``pgadmin`` has ``password``.

    ``fsync=False`` makes it faster for tests (a crash of the machine is not what they test);
    benchmarks keep the server's durable defaults."""

    def __init__(self, *, fsync: bool = True, max_connections: int = 100, settings: dict[str, str] | None = None) -> None:
        bindir = find_bindir()
        if bindir is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl, postgres) on this machine")
        self.bindir = bindir
        self.fsync = fsync
        self.max_connections = max_connections
        self.settings = settings or {}
        self.password = "pw-" + os.urandom(12).hex()
        self.port = 0
        self.root: Path | None = None
        self._user = _server_user()
        self._watchdog: subprocess.Popen[bytes] | None = None

    # --- life -------------------------------------------------------------------------------

    def start(self) -> PgCluster:
        self.root = Path(tempfile.mkdtemp(prefix="reconciler-pg-", dir="/tmp"))
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self._user is not None:
            os.chown(pwfile, self._user.pw_uid, self._user.pw_gid)
        os.chmod(pwfile, 0o600)
        self._run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", ADMIN, "--pwfile", str(pwfile),
                   "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"], timeout=180)
        pwfile.unlink()
        for attempt in range(5):
            self.port = _free_port()
            opts = {"port": str(self.port), "listen_addresses": "127.0.0.1", "unix_socket_directories": str(self.root),
                    "max_connections": str(self.max_connections), "fsync": "on" if self.fsync else "off",
                    "synchronous_commit": "on" if self.fsync else "off", "full_page_writes": "on" if self.fsync else "off",
                    "shared_buffers": "64MB", **self.settings}
            conf = "".join(f"{k} = '{v}'\n" for k, v in opts.items())
            (self.data / "postgresql.auto.conf").write_text(conf)
            done = self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                              "-w", "-t", "60", "start"], timeout=90, check=False)
            if done.returncode == 0:
                self._watch()
                return self
            if attempt == 4:
                raise RuntimeError(f"postgres did not start: {done.stdout}{done.stderr}\n{self.log()[-2000:]}")
        return self

    def _watch(self) -> None:
        """Stop the server (and remove its folder) should this process die without stopping it
        (a test run killed by a timeout or SIGKILL): ``pg_ctl`` daemonizes the server, which would
        otherwise run on.  A watchdog in a session of its own polls this process every second, and
        exits by itself once the server is stopped."""
        ids = [str(self._user.pw_uid), str(self._user.pw_gid)] if self._user is not None else ["-1", "-1"]
        self._watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(self.bindir / "pg_ctl"),
                                           str(self.data), str(self.root), *ids], start_new_session=True,
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.root is None:
            return
        if (self.data / "postmaster.pid").exists():
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                      timeout=60, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None
        if self._watchdog is not None:  # it sees the server gone within its second, and ends
            try:
                self._watchdog.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
                self._watchdog.wait()
            self._watchdog = None

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- use --------------------------------------------------------------------------------

    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def log(self) -> str:
        assert self.root is not None
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def dsn(self, dbname: str = "postgres", *, user: str = ADMIN, password: str | None = None, **extra: Any) -> str:
        """A key=value connection string (the form a secret usually holds)."""
        parts = {"host": "127.0.0.1", "port": self.port, "dbname": dbname, "user": user,
                 "password": self.password if password is None else password, "connect_timeout": 10, **extra}
        return " ".join(f"{k}={v}" for k, v in parts.items())

    def url(self, dbname: str = "postgres", *, user: str = ADMIN, password: str | None = None) -> str:
        """The same as a ``postgresql://`` URL."""
        return f"postgresql://{user}:{self.password if password is None else password}@127.0.0.1:{self.port}/{dbname}"

    def admin(self, statement: Any, params: Any = None, *, dbname: str = "postgres") -> list[Any]:
        """Run one statement as the superuser (autocommit) and return its rows (if any)."""
        import psycopg

        with psycopg.connect(self.dsn(dbname), autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def new_database(self, name: str, *, owner_password: str | None = None) -> str:
        """A fresh database owned by a new login role of the same name; its DSN."""
        from psycopg import sql

        pw = owner_password or "pw-" + os.urandom(8).hex()
        role = sql.Identifier(name)
        self.admin(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(pw)))
        self.admin(sql.SQL("CREATE DATABASE {} OWNER {}").format(role, role))
        self.admin(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(role), dbname=name)
        return self.dsn(name, user=name, password=pw)

    def _run(self, argv: list[str], *, timeout: float, check: bool = True) -> subprocess.CompletedProcess[str]:
        kw: dict[str, Any] = {}
        if self._user is not None:
            kw = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
        started = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=self.root, **kw)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed ({proc.returncode}, {time.monotonic() - started:.1f} s): "
                               f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        return proc
