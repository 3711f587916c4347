"""The embedded default database: a PostgreSQL server FlowSync runs itself when
`FLOWSYNC_DATABASE_URL` is unset. POSIX only; it listens on a unix socket, on no TCP port.

Layout of the data folder given to `start_embedded`:

    pgdata/                  the cluster (PGDATA); its socket lives here too
    embedded.lock            flock()ed while a process starts or stops the server
    embedded-handles.json    the live handles, as [pid, handle id] pairs

Sharing: every `start_embedded` on a folder registers a handle and joins the server already
running there, if any. `stop()` drops its handle and shuts the server down (fast mode) only
when no handle of a live process remains, so an API process and a worker process may start
and stop in any order. Handles of processes that died without `stop()` (SIGKILL, SIGTERM
without a handler) are pruned at the next start or stop; the server they leave behind keeps
running and is joined by the next `start_embedded`.

Recovery: a server whose postmaster died (killed, out of memory) is started again by
`revive()`, which `flowsync dev` calls every second (see `flowsync.server`); the URL stays
valid, and PostgreSQL's crash recovery replays its WAL, so nothing committed is lost.
"""

from __future__ import annotations

import atexit
import fcntl
import importlib.metadata
import json
import logging
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from flowsync.errors import ConfigurationError

log = logging.getLogger("flowsync.db")

Backend = Literal["pgserver", "system"]
SERVICE_USER = "flowsync"  # runs the system binaries when FlowSync runs as root
SYSTEM_BIN_GLOB = "/usr/lib/postgresql/*/bin"  # Debian/Ubuntu: one folder per version
EXAMPLE_URL = "postgresql://flowsync:secret@localhost:5432/flowsync"
_HINT = (
    "Install pgserver (pip install pgserver; CPython 3.9 to 3.12) or the PostgreSQL server "
    "binaries (initdb, pg_ctl, postgres), or use a server of your own by setting "
    f"FLOWSYNC_DATABASE_URL, for example FLOWSYNC_DATABASE_URL={EXAMPLE_URL}"
)
_PORT = 5432  # only names the socket file (.s.PGSQL.5432); no TCP port is opened
_OWN_HANDLES: set[str] = set()  # ids of this process's handles not yet stopped


class _Unavailable(Exception):
    """This way of running PostgreSQL is not possible here; the next one may be."""


@dataclass(frozen=True)
class _Runner:
    name: Backend
    describe: str
    pg_ctl: Callable[..., object]  # pg_ctl -D <pgdata> <args…>, as the server's user


class EmbeddedPostgres:
    """A handle on the embedded server; get one from `start_embedded`.

    Callers may rely on: `url` is a libpq URL (`postgresql://postgres:@/postgres?host=<dir>`,
    superuser `postgres`, trust auth, socket only) valid until the last handle on the folder
    stops; `stop()` is idempotent and thread-safe, and logs rather than raises; it also runs
    at a normal interpreter exit if the caller did not call it."""

    def __init__(self, url: str, data_dir: Path, runner: _Runner, handle_id: str) -> None:
        self.url = url
        self.data_dir = data_dir
        self.backend: Backend = runner.name
        self._runner, self._id, self._pid = runner, handle_id, os.getpid()
        self._mutex = threading.RLock()  # re-entered by a signal handler: a no-op, no deadlock
        self._stopped = False
        atexit.register(self.stop)

    def running(self) -> bool:
        """Whether the server answers on its socket (a cheap check: a file read and a
        unix-socket connect)."""
        return _postmaster(self.data_dir / "pgdata") is not None

    def revive(self) -> bool:
        """Start the server again if it is not running (its postmaster died); True when it
        was started. Blocks (seconds: crash recovery runs first): call it in a thread.
        Raises ConfigurationError when it cannot start it (the caller may retry: a dead
        postmaster's children may hold its shared memory for a moment), or when it came
        back on another socket than `url` names."""
        pgdata = self.data_dir / "pgdata"
        with self._mutex:
            if self._stopped or self.running():
                return False
            with _locked(self.data_dir):
                if self.running():  # another process sharing the folder was quicker
                    return False
                try:
                    if self.backend == "pgserver":
                        self._runner = _pgserver(pgdata)
                    else:
                        self._runner = _system(self.data_dir, pgdata)
                except (_Unavailable, subprocess.SubprocessError, OSError) as exc:
                    detail = getattr(exc, "stderr", None) or exc
                    raise ConfigurationError(
                        f"The embedded PostgreSQL in {pgdata} could not be started again: "
                        f"{detail}. Its log is in {pgdata}."
                    ) from exc
                info = _postmaster(pgdata)
            if info is None or quote(str(info[1]), safe="/") not in self.url:
                raise ConfigurationError(
                    f"The embedded PostgreSQL in {pgdata} came back on another socket "
                    f"({info}) than {self.url} names: restart FlowSync."
                )
            return True

    def stop(self) -> None:
        """Drop this handle; shut the server down (fast mode) if it was the last live one."""
        with self._mutex:
            if self._stopped or os.getpid() != self._pid:  # a forked child owns no handle
                return
            self._stopped = True
            atexit.unregister(self.stop)
            _OWN_HANDLES.discard(self._id)
            try:
                self._release()
            except (subprocess.SubprocessError, OSError) as exc:  # e.g. the folder is gone
                log.error("could not stop the embedded PostgreSQL in %s: %s", self.data_dir, exc)

    def _release(self) -> None:
        pgdata = self.data_dir / "pgdata"
        with _locked(self.data_dir):
            if others := _update_handles(self.data_dir, drop=self._id):
                log.info("embedded PostgreSQL left running for %d other handle(s)", others)
            elif _postmaster(pgdata) is None:
                log.warning("embedded PostgreSQL in %s was not running", pgdata)
            else:
                self._runner.pg_ctl("-m", "fast", "-w", "-t", "60", "stop")
                log.info("embedded PostgreSQL in %s stopped", pgdata)


class _NotRunning(Exception):
    """`join_embedded` found no server running on the folder."""


def join_embedded(data_dir: Path, *, backend: Backend | None = None) -> EmbeddedPostgres | None:
    """Join the PostgreSQL server running on `data_dir` (a handle, as `start_embedded`
    gives); None when none runs there. Never creates a cluster or starts a server, so a
    command that only uses the database cannot make a second one by mistake."""
    data_dir = data_dir.expanduser().resolve()
    if not (data_dir / "pgdata" / "PG_VERSION").exists():
        return None
    try:
        return start_embedded(data_dir, backend=backend, join_only=True)
    except _NotRunning:
        return None


def start_embedded(
    data_dir: Path, *, backend: Backend | None = None, join_only: bool = False
) -> EmbeddedPostgres:
    """Start or join the PostgreSQL server of `data_dir`, creating the cluster on first use.

    Blocks (under a second when warm, about a minute at worst): call it before the event
    loop starts or in a thread. `backend=None` tries pgserver, then the machine's PostgreSQL
    binaries; naming one uses only that one. Raises `ConfigurationError` when it cannot
    start a server; the message says how to set `FLOWSYNC_DATABASE_URL` instead.
    `join_only` (see `join_embedded`): raise `_NotRunning` rather than start one."""
    data_dir = data_dir.expanduser().resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "embedded.lock").touch()
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot use {data_dir} as the data folder ({exc}): set FLOWSYNC_DATA_DIR to a "
            f"writable folder. {_HINT}"
        ) from exc
    pgdata = data_dir / "pgdata"
    reasons: list[str] = []
    with _locked(data_dir):
        was_running = _postmaster(pgdata) is not None
        if join_only and not was_running:
            raise _NotRunning
        for name in [backend] if backend else ["pgserver", "system"]:
            try:
                runner = _pgserver(pgdata) if name == "pgserver" else _system(data_dir, pgdata)
                break
            except _Unavailable as exc:
                reasons.append(f"{name}: {exc}")
            except (subprocess.SubprocessError, OSError) as exc:
                detail = getattr(exc, "stderr", None) or exc
                raise ConfigurationError(
                    f"The embedded PostgreSQL ({name}) in {pgdata} failed to start: {detail}. "
                    f"Its log is in {pgdata}. {_HINT}"
                ) from exc
        else:
            raise ConfigurationError(f"No embedded PostgreSQL: {'; '.join(reasons)}. {_HINT}")
        if (info := _postmaster(pgdata)) is None:
            raise ConfigurationError(
                f"The embedded PostgreSQL in {pgdata} does not answer on its socket; if no "
                f"server runs there, remove {pgdata / 'postmaster.pid'}. {_HINT}"
            )
        handle_id = uuid.uuid4().hex
        others = _update_handles(data_dir, add=handle_id)
        _OWN_HANDLES.add(handle_id)
    _, socket_dir, port = info
    url = f"postgresql://postgres:@/postgres?host={quote(str(socket_dir), safe='/')}"
    url += f"&port={port}" if port != _PORT else ""  # pgserver passes no -p: PGPORT may pick it
    how = "joined the running server" if was_running else "started the server"
    log.info("embedded PostgreSQL: %s in %s using %s (%d other handle(s))",
             how, pgdata, runner.describe, others)  # fmt: skip
    return EmbeddedPostgres(url, data_dir, runner, handle_id)


def _pgserver(pgdata: Path) -> _Runner:
    try:
        with warnings.catch_warnings():
            # pgserver resolves its runtime folder at import and warns if XDG_RUNTIME_DIR is unset.
            warnings.filterwarnings("ignore", "XDG_RUNTIME_DIR", UserWarning)
            pgserver: Any = importlib.import_module("pgserver")  # Any: its commands are dynamic
    except ImportError as exc:
        raise _Unavailable(f"not installed ({exc})") from exc
    bundled = _major(pgserver.postgres(["--version"]))
    if (cluster := _cluster_version(pgdata)) not in (None, bundled):
        raise _Unavailable(f"bundles PostgreSQL {bundled}, {pgdata} holds {cluster}")
    if cluster and os.geteuid() == 0 and not _owned_by(pgdata, "pgserver"):
        raise _Unavailable(f"{pgdata} belongs to another user than pgserver's")
    pgdata.mkdir(exist_ok=True)
    # Not get_server(): it caches one object per folder per process and would hand back a
    # stale one after our stop(). cleanup_mode=None because we stop the server ourselves.
    server = pgserver.PostgresServer(pgdata, cleanup_mode=None)

    def pg_ctl(*args: str) -> object:
        return pgserver.pg_ctl(list(args), pgdata=pgdata, user=server.system_user, timeout=90)

    version = importlib.metadata.version("pgserver")
    return _Runner("pgserver", f"pgserver {version} (PostgreSQL {bundled})", pg_ctl)


def _system(data_dir: Path, pgdata: Path) -> _Runner:
    bin_dir = _system_bin_dir(_cluster_version(pgdata))
    if len(os.fsencode(pgdata / f".s.PGSQL.{_PORT}")) > 103:  # sun_path: 104 bytes on macOS
        raise _Unavailable(f"{pgdata} is too long a path for a unix socket")
    user = _service_user(pgdata)
    as_user: dict[str, Any] = {}
    if user is not None:  # postgres refuses to run as root; drop root's groups as well
        as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def run(tool: str, *args: str) -> object:
        return subprocess.run(  # noqa: S603  # fixed argv, no shell
            [str(bin_dir / tool), "-D", str(pgdata), *args],
            check=True, capture_output=True, text=True, timeout=90, cwd="/", **as_user,
        )  # fmt: skip

    if not (pgdata / "PG_VERSION").exists():
        pgdata.mkdir(mode=0o700, exist_ok=True)
        if user is not None:
            os.chown(pgdata, user.pw_uid, user.pw_gid)
            data_dir.chmod(data_dir.stat().st_mode | 0o011)  # let it traverse, not list
        run("initdb", "--username=postgres", "--auth=trust", "--encoding=UTF8", "--no-locale")
    if _postmaster(pgdata) is None:
        opts = f"-h '' -p {_PORT} -k {shlex.quote(str(pgdata))}"  # pg_ctl runs it via sh
        run("pg_ctl", "-w", "-t", "60", "-l", str(pgdata / "server.log"), "-o", opts, "start")
    return _Runner("system", f"system binaries in {bin_dir}", lambda *a: run("pg_ctl", *a))


def _system_bin_dir(cluster: str | None) -> Path:
    """The folder holding initdb, pg_ctl and postgres: PATH first, then the highest version
    under SYSTEM_BIN_GLOB; one matching the cluster's major version if the cluster exists."""
    found = [Path(p).parent for p in [shutil.which("pg_ctl")] if p]
    numbered = Path("/").glob(SYSTEM_BIN_GLOB.lstrip("/"))
    found += sorted(numbered, key=lambda d: int(re.sub(r"\D", "", d.parent.name) or 0))[::-1]
    tools = ("initdb", "pg_ctl", "postgres")
    found = [d for d in found if all(os.access(d / t, os.X_OK) for t in tools)]
    if not found:
        raise _Unavailable(f"no initdb, pg_ctl and postgres on PATH or in {SYSTEM_BIN_GLOB}")
    for bin_dir in found:
        out = subprocess.run([bin_dir / "postgres", "--version"], capture_output=True)  # noqa: S603
        if cluster in (None, _major(out.stdout.decode())):
            return bin_dir
    raise _Unavailable(f"no PostgreSQL {cluster} binaries for the cluster in the data folder")


def _service_user(pgdata: Path) -> pwd.struct_passwd | None:
    """None unless we are root; then the cluster's owner, or SERVICE_USER (created once)."""
    if os.geteuid() != 0:
        return None
    if pgdata.exists() and pgdata.stat().st_uid != 0:
        return pwd.getpwuid(pgdata.stat().st_uid)
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass  # first run as root on this machine: create the user, as pgserver does
    if (useradd := shutil.which("useradd")) is None:
        raise _Unavailable(f"running as root, no user {SERVICE_USER!r} and no useradd")
    args = ["--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    subprocess.run([useradd, *args, SERVICE_USER], check=True, capture_output=True)  # noqa: S603
    return pwd.getpwnam(SERVICE_USER)


def _postmaster(pgdata: Path) -> tuple[int, Path, int] | None:
    """(pid, socket folder, port) of the server running on pgdata, from its postmaster.pid.
    Its pid alone can mislead (a stale file whose pid was reused), so the socket must answer."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, port, socket_dir = int(lines[0]), int(lines[3]), Path(lines[4].strip())
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(str(socket_dir / f".s.PGSQL.{port}"))
    except (OSError, ValueError, IndexError):
        return None
    return (pid, socket_dir, port)


def _update_handles(data_dir: Path, *, add: str = "", drop: str = "") -> int:
    """Add or drop a handle, prune those of dead processes; how many others remain.
    Call with the folder's lock held."""
    path = data_dir / "embedded-handles.json"
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):  # missing, or torn by a crash mid-write
        entries = []
    # A handle with our pid that we did not make is from an earlier process with that pid,
    # as when a container restarts and FlowSync is pid 1 again.
    mine = os.getpid()
    live = [
        [pid, hid]
        for pid, hid in entries
        if hid != drop and (hid in _OWN_HANDLES if pid == mine else _alive(pid))
    ]
    path.write_text(json.dumps([*live, [mine, add]] if add else live))
    return len(live)


@contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    with open(data_dir / "embedded.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        yield


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        pass
    return True


def _owned_by(path: Path, user: str) -> bool:
    try:
        return path.stat().st_uid == pwd.getpwnam(user).pw_uid
    except KeyError:
        return False


def _cluster_version(pgdata: Path) -> str | None:
    version_file = pgdata / "PG_VERSION"
    return version_file.read_text().strip() if version_file.exists() else None


def _major(version_output: str) -> str:
    """'postgres (PostgreSQL) 15.2 (Debian 15.2-1)' → '15'."""
    found = re.search(r"\(PostgreSQL\) (\d+)", version_output)
    return found.group(1) if found else version_output
