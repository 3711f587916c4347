"""One FlowSync cluster on one machine, shared by the module's tests: six hosts as network
namespaces on one switch (see `netns`), each process started as an operator would start
it on that host (docs/deploy.md, "The commands, as the cluster test runs them"):

    pg      PostgreSQL (this machine's binaries, a fresh data folder), on its address
    api1    `flowsync api-keys create` (which migrates first), `flowsync serve`
    api2    `flowsync migrate` (at the same time as api1's command), `flowsync serve`
    w1, w2  `flowsync worker`, each with its own host name (what steps report as
            `workerHost`), short leases so that a lost host's work comes back in seconds
    client  the test itself, through a thread inside this namespace

Everything is removed at the end, whatever happened: the processes (SIGKILL of all that
run in the namespaces), the namespaces with their links, and the data folder. Where this
machine cannot make namespaces the tests skip, saying why; with
FLOWSYNC_REQUIRE_CLUSTER=1 (CI sets it) they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import httpx
import pytest

from flowsync.db import embedded
from tests.cluster import netns
from tests.conftest import REQUIRE_CLUSTER
from tests.support.processes import ROOT

T = TypeVar("T")

# Host -> the last octet of its address.
HOSTS = {"pg": 10, "api1": 11, "api2": 12, "w1": 21, "w2": 22, "client": 30}
APIS = ("api1", "api2")
WORKERS = ("w1", "w2")
PG_PORT = 5432
API_PORT = 8000
DATABASE = "flowsync"
SUBNETS = [f"10.213.{n}.0/24" for n in range(10, 250, 7)]

API_SETTINGS: dict[str, object] = {
    # The test client polls; the limits would count it as one busy user.
    "rate_limit_per_ip": "100000/minute",
    "rate_limit_per_principal": "100000/minute",
}
WORKER_SETTINGS: dict[str, object] = {
    # A lost host's jobs are claimed again within lease + reclaim (2.5 s), and its
    # connections end within a few seconds (flowsync.worker.liveness derives the
    # keepalives and the idle-in-transaction timeout from the lease).
    "lease_seconds": 2,
    "heartbeat_seconds": 0.5,
    "reclaim_seconds": 0.5,
    "poll_seconds": 0.5,
    # A `transform` that first sleeps the run's `input.sleep` seconds.
    "extra_handlers": "transform=tests.support.handlers:SlowTransform",
}
WORKER_CONCURRENCY = 2
INITDB_OPTIONS = ["--username=postgres", "--auth=trust", "--encoding=UTF8", "--no-locale",
                  "--no-sync"]  # fmt: skip
# Trust and no fsync: a test's shortcuts (docs/deploy.md says so).
POSTGRES_OPTIONS = ["-c", "fsync=off"]


def hostname(host: str) -> str:
    """The host name of `host` (what `socket.gethostname()` says there)."""
    return f"cluster-{host}"


def missing(reason: str) -> NoReturn:
    """Skip where the machine cannot; fail instead where FLOWSYNC_REQUIRE_CLUSTER=1."""
    if REQUIRE_CLUSTER:
        pytest.fail(f"{reason} (FLOWSYNC_REQUIRE_CLUSTER=1: the cluster tests must run)")
    pytest.skip(f"cluster tests: {reason}")


def flowsync_command() -> list[str]:
    """This checkout's `flowsync` (the script beside the interpreter running the tests)."""
    script = Path(sys.executable).with_name("flowsync")
    return [str(script)] if script.exists() else [sys.executable, "-m", "flowsync"]


class Cluster:
    """The running cluster: its hosts, the processes on them, and the client."""

    def __init__(self, network: netns.Network, folder: Path) -> None:
        self.network = network
        self.folder = folder
        self.processes: dict[str, list[subprocess.Popen[bytes]]] = {h: [] for h in HOSTS}
        self.logs: dict[str, list[Path]] = {h: [] for h in HOSTS}
        self.client: netns.NamespaceLoop | None = None
        self.key = ""

    def address(self, host: str) -> str:
        return self.network.hosts[host]

    def url(self, api: str) -> str:
        """The base URL of API host `api`."""
        return f"http://{self.address(api)}:{API_PORT}"

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@{self.address('pg')}:{PG_PORT}/{DATABASE}"

    def env(self, host: str, **settings: object) -> dict[str, str]:
        """The environment of a FlowSync process on `host`: the machine's, without any
        FLOWSYNC_* of it, plus the database and `settings` as FLOWSYNC_*."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSYNC_")}
        env["PYTHONPATH"] = str(ROOT)  # for tests.support.handlers
        env["FLOWSYNC_DATABASE_URL"] = self.database_url
        env["FLOWSYNC_DATA_DIR"] = str(self.folder / host)
        for key, value in settings.items():
            env[f"FLOWSYNC_{key.upper()}"] = str(value)
        return env

    def start(
        self, host: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `argv` on `host`; its output goes to a log file of its own."""
        (self.folder / host).mkdir(exist_ok=True)
        log = self.folder / host / f"{len(self.logs[host])}-{Path(argv[0]).name}.log"
        self.logs[host].append(log)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                self.network.command(host, argv, hostname(host)),
                env=env, cwd=self.folder / host, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.processes[host].append(proc)
        return proc

    def flowsync(self, host: str, *args: str, **settings: object) -> subprocess.Popen[bytes]:
        """`flowsync ARGS` on `host`."""
        return self.start(host, [*flowsync_command(), *args], self.env(host, **settings))

    def tails(self, chars: int = 2500) -> str:
        """The end of every log, to explain a failure."""
        parts = []
        for host, logs in self.logs.items():
            for log in logs:
                text = log.read_text(errors="replace") if log.exists() else ""
                parts.append(f"--- {host} {log.name}:\n{text[-chars:]}")
        return "\n".join(parts)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        """Run `coro` on the client host; a failure carries the hosts' logs."""
        assert self.client is not None
        try:
            return self.client.run(coro, timeout)
        except (AssertionError, TimeoutError) as exc:
            exc.add_note(self.tails())
            raise

    def http(self, api: str) -> httpx.AsyncClient:
        """An HTTP client of API host `api`, with the cluster's key (use it on the client
        host, inside `run`). No proxy from the environment: only the hosts are reached."""
        return httpx.AsyncClient(
            base_url=self.url(api),
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=20,
            trust_env=False,
        )

    def kill_host(self, host: str) -> None:
        """Lose `host` as a machine is lost: its link is cut first (so that nothing it
        would send on dying, FIN or RST, reaches anyone), then every process on it gets
        SIGKILL."""
        self.network.cut(host)
        self.network.kill(host)
        for proc in self.processes[host]:
            proc.wait(10)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        try:
            self.network.teardown()
        finally:
            for procs in self.processes.values():
                for proc in procs:
                    if proc.poll() is None:
                        proc.kill()
                    proc.wait(10)


async def until(check: Callable[[], Awaitable[T | None]], timeout: float, what: str) -> T:
    """Poll `check` every 0.2 s until it returns something true; at most `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for _ in range(int(timeout / 0.2) + 1):
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            break
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _wait(proc: subprocess.Popen[bytes], timeout: float, what: str, cluster: Cluster) -> None:
    try:
        status = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{what} still running after {timeout}s\n{cluster.tails()}") from None
    assert status == 0, f"{what} exited {status}\n{cluster.tails()}"


def _start_postgres(cluster: Cluster, bin_dir: Path) -> None:
    """A fresh cluster in the data folder, run by the service user (PostgreSQL refuses
    root) on the pg host's address, plus its socket for `createdb` from here."""
    pgdata = cluster.folder / "pg" / "data"
    user = embedded._service_user(pgdata)
    if user is None:
        missing("PostgreSQL cannot be run as this user")
    (cluster.folder / "pg").mkdir()
    cluster.folder.chmod(0o711)
    (cluster.folder / "pg").chmod(0o711)
    pgdata.mkdir(mode=0o700)
    os.chown(pgdata, user.pw_uid, user.pw_gid)
    as_user: dict[str, Any] = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    subprocess.run(  # fixed argv
        [bin_dir / "initdb", "-D", pgdata, *INITDB_OPTIONS],
        check=True, capture_output=True, timeout=120, cwd="/", **as_user,
    )  # fmt: skip
    with (pgdata / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {cluster.network.subnet} trust\n")
    setpriv = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    cluster.start(
        "pg",
        [*setpriv, str(bin_dir / "postgres"), "-D", str(pgdata), "-p", str(PG_PORT),
         "-c", f"listen_addresses={cluster.address('pg')}", "-k", str(pgdata),
         *POSTGRES_OPTIONS],
    )  # fmt: skip
    deadline = time.monotonic() + 60
    for _ in range(600):
        ready = subprocess.run(
            [bin_dir / "pg_isready", "-q", "-h", pgdata, "-p", str(PG_PORT), "-U", "postgres",
             "-t", "1"],
            check=False, timeout=10,
        )  # fmt: skip
        if ready.returncode == 0:
            break
        assert cluster.processes["pg"][0].poll() is None, cluster.tails()
        assert time.monotonic() < deadline, f"PostgreSQL not ready after 60 s\n{cluster.tails()}"
        time.sleep(0.1)
    else:
        raise AssertionError(f"PostgreSQL not ready after 600 looks\n{cluster.tails()}")
    subprocess.run(
        [bin_dir / "createdb", "-h", pgdata, "-p", str(PG_PORT), "-U", "postgres", DATABASE],
        check=True, capture_output=True, timeout=30, **as_user,
    )  # fmt: skip


async def _until_serving(cluster: Cluster) -> None:
    """Both APIs ready, and both workers (and their schedulers) known to the database."""
    async with cluster.http("api1") as api1, cluster.http("api2") as api2:
        for api, http in (("api1", api1), ("api2", api2)):

            async def ready(http: httpx.AsyncClient = http, api: str = api) -> bool:
                for proc in cluster.processes[api]:
                    assert proc.poll() in (None, 0), f"{api} exited\n{cluster.tails()}"
                try:
                    return (await http.get("/api/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await until(ready, 60, f"{api} to be ready")

        async def workers() -> bool:
            listed = (await api1.get("/api/workers")).json()["items"]
            hosts = {w["hostname"] for w in listed if w["alive"]}
            status = (await api2.get("/api/scheduler/status")).json()
            return hosts == {hostname(w) for w in WORKERS} and status["running"] == 2

        await until(workers, 60, "both workers and both schedulers")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    reason = netns.unavailable()
    if reason is not None:
        missing(reason)
    try:
        # (PATH may hold links to the server's programs alone: their folder has the rest.)
        bin_dir = (embedded._system_bin_dir(None) / "postgres").resolve().parent
    except embedded._Unavailable as exc:
        missing(f"no PostgreSQL server binaries: {exc}")
    for tool in ("pg_isready", "createdb"):
        if not (bin_dir / tool).exists():
            missing(f"no {tool} beside the PostgreSQL server in {bin_dir}")
    netns.clean_leftovers()
    folder = Path(tempfile.mkdtemp(prefix=f"{netns.PREFIX}{os.getpid()}-"))
    network = netns.Network(netns.free_subnet(SUBNETS))
    built = Cluster(network, folder)
    try:
        for host, octet in HOSTS.items():
            network.add_host(host, octet)
        _start_postgres(built, bin_dir)
        # At the same time on a fresh database: `flowsync migrate` on api2, and on api1 the
        # key the client uses (a command that, like every one that needs the schema,
        # migrates first). One migrates; the other waits for its lock, finds the schema at
        # head and goes on.
        migrate = built.flowsync("api2", "migrate")
        keys = built.flowsync("api1", "api-keys", "create", "--owner", "cluster")
        keys_log = built.logs["api1"][-1]
        _wait(migrate, 120, "flowsync migrate on api2", built)
        for api in APIS:
            built.flowsync(
                api, "serve", "--host", built.address(api), "--port", str(API_PORT),
                **API_SETTINGS,
            )  # fmt: skip
        for worker in WORKERS:
            built.flowsync(
                worker, "worker", "--concurrency", str(WORKER_CONCURRENCY), **WORKER_SETTINGS
            )
        _wait(keys, 120, "flowsync api-keys create on api1", built)
        found = re.search(r"^key:\s+(\S+)", keys_log.read_text(), re.M)
        assert found is not None, built.tails()
        built.key = found.group(1)
        built.client = netns.NamespaceLoop(network.namespace("client"))
        try:
            built.run(_until_serving(built))
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{built.tails()}") from None
        yield built
    finally:
        try:
            built.close()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
