"""A PostgreSQL primary and a synchronous streaming standby, made from the machine's server
binaries (found as the embedded fallback finds them) in a temp folder, on free ports of
127.0.0.1. The failover test kills the primary (SIGKILL of every process of the
server, as a lost host) and promotes the standby."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from flowsync.db import embedded

STANDBY_NAME = "flowsync_standby"


class Unavailable(Exception):
    """The machine has no PostgreSQL server binaries to make the two servers with."""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _server_user() -> pwd.struct_passwd | None:
    """None unless we are root (postgres refuses to run as root): then the `postgres`
    user of the distribution's package, else the embedded fallback's service user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return embedded._service_user(Path("/nonexistent"))


def _is_postgres(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except OSError:
        return False


class ReplicatedPostgres:
    """`start()` makes both servers and waits until the standby is synchronous;
    `close()` stops whatever runs and removes the folder, whatever happened before."""

    def __init__(self) -> None:
        # PATH may hold symlinks to the three tools the fallback needs; their folder has
        # pg_basebackup and psql too.
        try:
            found = embedded._system_bin_dir(None)
        except embedded._Unavailable as exc:
            raise Unavailable(str(exc)) from exc
        self.bin_dir = (found / "pg_ctl").resolve().parent
        missing = [t for t in ("pg_basebackup", "psql") if not (self.bin_dir / t).exists()]
        if missing:
            raise Unavailable(f"no {' or '.join(missing)} in {self.bin_dir}")
        self.root = Path(tempfile.mkdtemp(prefix="flowsync-failover-"))
        self.primary_dir = self.root / "primary"
        self.standby_dir = self.root / "standby"
        self.primary_port = _free_port()
        self.standby_port = _free_port()
        self._user = _server_user()
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        self.root.chmod(0o755)

    def _run(self, tool: str, *args: str, timeout: float = 60) -> str:
        as_user: dict[str, Any] = {}
        if self._user is not None:
            u = self._user
            as_user = {"user": u.pw_uid, "group": u.pw_gid, "extra_groups": []}
        done = subprocess.run(  # fixed argv, no shell
            [str(self.bin_dir / tool), *args],
            capture_output=True, text=True, timeout=timeout, cwd="/", **as_user,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def _start(self, pgdata: Path, port: int, *options: str) -> None:
        opts = " ".join(
            [
                f"-p {port}",
                "-h 127.0.0.1",
                f"-k {pgdata}",
                # The test's servers live for a minute: durability against an OS crash is
                # not what it tests (a killed server's writes are in the page cache).
                "-c fsync=off",
                "-c max_connections=200",
                *options,
            ]
        )
        log = pgdata.parent / f"{pgdata.name}.log"
        self._run(
            "pg_ctl", "-D", str(pgdata), "-w", "-t", "60", "-l", str(log), "-o", opts, "start"
        )

    def url(self, database: str = "flowsync") -> str:
        """The multi-host URL FlowSync is given: whichever of the two accepts writes."""
        return (
            f"postgresql://postgres@127.0.0.1:{self.primary_port},127.0.0.1:{self.standby_port}"
            f"/{database}?target_session_attrs=read-write"
        )

    def primary_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.primary_port}/{database}"

    def standby_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.standby_port}/{database}"

    def start(self) -> None:
        self._run(
            "initdb", "-D", str(self.primary_dir), "--username=postgres", "--auth=trust",
            "--encoding=UTF8", "--no-locale",
        )  # fmt: skip
        # The synchronous setting goes on the command line, not in a file that
        # pg_basebackup would copy to the standby (which, promoted, has no standby).
        self._start(
            self.primary_dir,
            self.primary_port,
            "-c wal_level=replica",
            "-c max_wal_senders=4",
            f"-c synchronous_standby_names={STANDBY_NAME}",
        )
        self._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres",
            "-D", str(self.standby_dir), "-X", "stream", "-R",
        )  # fmt: skip
        # -R wrote standby.signal and a primary_conninfo; this one names the standby, which
        # synchronous_standby_names waits for.
        conninfo = (
            f"host=127.0.0.1 port={self.primary_port} user=postgres application_name={STANDBY_NAME}"
        )
        with (self.standby_dir / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"primary_conninfo = '{conninfo}'\n")
        assert (self.standby_dir / "standby.signal").exists()
        self._start(self.standby_dir, self.standby_port)
        self._wait_synchronous()

    def psql(self, port: int, sql: str, database: str = "postgres") -> str:
        """One statement through psql on `port`, its unaligned output."""
        return self._run(
            "psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", database,
            "-At", "-c", sql, timeout=30,
        ).strip()  # fmt: skip

    def _wait_synchronous(self) -> None:
        deadline = time.monotonic() + 30
        query = "SELECT sync_state FROM pg_stat_replication WHERE application_name = "
        while time.monotonic() < deadline:
            if self.psql(self.primary_port, query + f"'{STANDBY_NAME}'") == "sync":
                return
            time.sleep(0.1)
        raise AssertionError("the standby did not become synchronous within 30 s")

    def _pids(self, pgdata: Path) -> list[int]:
        """The postmaster's pid and its children's, if it runs."""
        try:
            postmaster = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return []
        if not _is_postgres(postmaster):  # gone (a stale file), or its pid reused
            return []
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                children.append(int(entry.name))
        return [*children, postmaster]

    def kill_primary(self) -> None:
        """SIGKILL every process of the primary at once: a lost host, no shutdown."""
        pids = self._pids(self.primary_dir)
        assert pids, "the primary is not running"
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def promote_standby(self) -> None:
        self._run("pg_ctl", "-D", str(self.standby_dir), "-w", "-t", "60", "promote")

    def close(self) -> None:
        for pgdata in (self.primary_dir, self.standby_dir):
            if self._pids(pgdata):
                try:
                    self._run("pg_ctl", "-D", str(pgdata), "-m", "immediate", "-w", "stop")
                except (RuntimeError, subprocess.TimeoutExpired):
                    for pid in self._pids(pgdata):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)
