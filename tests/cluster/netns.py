"""Hosts as Linux network namespaces, joined by a switch, for the cluster suite.

A `Network` is a switch (a namespace holding a bridge) and hosts, each a namespace of
its own joined to the bridge by a veth pair and given one address of a private /24. The
addresses exist only inside these namespaces: the root namespace gets no interface,
address or route of the suite, so no packet of it can go anywhere but to these hosts.
The test process talks to the hosts from a thread that has entered the client host's
namespace (`NamespaceLoop`); the hosts' processes are started through `ip netns exec`.

Every name starts with PREFIX and the pid of the pytest process that made it, so that a
run removes what a crashed earlier run left behind (its pid is gone) without touching a
concurrent run's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

PREFIX = "fscluster"
SWITCH = "sw"
BRIDGE = "br0"
CLONE_NEWNET = 0x40000000
# Run by `sh -c` in a host's own UTS namespace: set its host name ($0), then the command.
HOST_SHELL = 'hostname "$0" && exec "$@"'
_LEFTOVER = re.compile(rf"^({PREFIX}(\d+)-\S+)")


def ip(*args: str) -> str:
    """Run `ip ARGS`; its output, or an error that says what it printed."""
    done = subprocess.run(  # fixed argv
        ["ip", *args], capture_output=True, text=True, timeout=20, check=False
    )
    if done.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def unavailable() -> str | None:
    """Why this machine cannot build hosts as namespaces, or None when it can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    for tool, package in (("ip", "iproute2"), ("unshare", "util-linux"), ("setpriv", "util-linux")):
        if shutil.which(tool) is None:
            return f"no `{tool}` on PATH (Debian's {package})"
    probe = f"{PREFIX}{os.getpid()}-probe"
    try:
        ip("netns", "add", probe)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`ip netns add` failed: {exc}"
    try:
        ip("-n", probe, "link", "add", BRIDGE, "type", "bridge")
        ip("-n", probe, "link", "add", "name", "vprobe0", "type", "veth", "peer", "name", "vprobe1")
    except OSError as exc:
        return f"no bridge or veth in a namespace: {exc}"
    finally:
        ip("netns", "delete", probe)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_namespace_processes(name: str, tries: int = 100) -> None:
    """SIGKILL every process inside namespace `name` until none is left (a process may
    fork while this runs, so it looks again, up to `tries` times)."""
    for _ in range(tries):
        try:
            pids = [int(p) for p in ip("netns", "pids", name).split()]
        except OSError:
            return  # the namespace is gone
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    raise AssertionError(f"processes still running in namespace {name} after {tries} rounds")


def clean_leftovers() -> list[str]:
    """Remove the namespaces and temporary folders of earlier runs whose pytest process
    is gone (a run killed before its teardown); returns the namespaces removed."""
    removed = []
    for line in ip("netns", "list").splitlines():
        found = _LEFTOVER.match(line)
        if found is None or _alive(int(found.group(2))):
            continue
        kill_namespace_processes(found.group(1))
        ip("netns", "delete", found.group(1))
        removed.append(found.group(1))
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*-*"):
        owner = re.match(rf"{PREFIX}(\d+)-", folder.name)
        if owner is not None and not _alive(int(owner.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
    return removed


def free_subnet(candidates: Sequence[str]) -> ipaddress.IPv4Network:
    """The first /24 of `candidates` that overlaps no address or route of the root
    namespace (none would be reachable from here anyway; this keeps logs unambiguous)."""
    taken = []
    for line in ip("-4", "-o", "addr", "show").splitlines() + ip("-4", "route").splitlines():
        for word in line.split():
            try:
                taken.append(ipaddress.ip_network(word, strict=False))
            except ValueError:
                continue
    for text in candidates:
        net = ipaddress.IPv4Network(text)
        if not any(net.overlaps(t) for t in taken if t.prefixlen > 0):
            return net
    raise AssertionError(f"every candidate subnet overlaps this machine's: {taken}")


class Network:
    """A switch and the hosts plugged into it. `teardown()` removes all of it, the
    processes inside included, and may be called at any point of the build."""

    def __init__(self, subnet: ipaddress.IPv4Network) -> None:
        self.run = f"{PREFIX}{os.getpid()}"
        self.subnet = subnet
        self.hosts: dict[str, str] = {}  # host -> address
        self._made: list[str] = []
        self.switch = self.namespace(SWITCH)
        ip("netns", "add", self.switch)
        self._made.append(self.switch)
        ip("-n", self.switch, "link", "add", BRIDGE, "type", "bridge")
        ip("-n", self.switch, "link", "set", "dev", BRIDGE, "up")

    def namespace(self, host: str) -> str:
        """The namespace name of `host`."""
        return f"{self.run}-{host}"

    def add_host(self, host: str, last_octet: int) -> str:
        """A namespace for `host` with `eth0` on the switch; returns its address."""
        name = self.namespace(host)
        address = str(self.subnet.network_address + last_octet)
        ip("netns", "add", name)
        self._made.append(name)
        # Both ends are made inside their namespaces: nothing appears in the root one.
        ip("link", "add", "eth0", "netns", name, "type", "veth", "peer", "name", host,
           "netns", self.switch)  # fmt: skip
        ip("-n", self.switch, "link", "set", "dev", host, "master", BRIDGE)
        ip("-n", self.switch, "link", "set", "dev", host, "up")
        ip("-n", name, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        ip("-n", name, "link", "set", "dev", "eth0", "up")
        ip("-n", name, "link", "set", "dev", "lo", "up")
        self.hosts[host] = address
        return address

    def command(self, host: str, argv: Sequence[str], hostname: str) -> list[str]:
        """`argv` run on `host`: in its network namespace, with a UTS namespace of its
        own whose host name is `hostname` (what a worker reports as its host)."""
        return [
            "ip", "netns", "exec", self.namespace(host),
            "unshare", "--uts", "--",
            "sh", "-c", HOST_SHELL, hostname, *argv,
        ]  # fmt: skip

    def cut(self, host: str) -> None:
        """Unplug `host` from the switch: nothing it sends arrives anywhere."""
        ip("-n", self.switch, "link", "set", "dev", host, "down")

    def kill(self, host: str) -> None:
        """SIGKILL every process of `host`."""
        kill_namespace_processes(self.namespace(host))

    def teardown(self) -> None:
        """Kill every process in the hosts, then delete every namespace (their veths go
        with them). Errors are collected and raised once all was tried."""
        errors = []
        for name in reversed(self._made):
            try:
                kill_namespace_processes(name)
                ip("netns", "delete", name)
            except (OSError, AssertionError) as exc:
                errors.append(str(exc))
        self._made.clear()
        if errors:
            raise AssertionError("; ".join(errors))


def enter_namespace(name: str) -> None:
    """Move the calling thread (only it) into network namespace `name`."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into {name}: {os.strerror(errno)}")
    finally:
        os.close(fd)


class NamespaceLoop:
    """An event loop on a thread of its own inside a network namespace: every socket it
    opens (HTTP, websockets) is the client host's. `run(coro)` runs a coroutine there
    and returns its result."""

    def __init__(self, namespace: str) -> None:
        self.loop = asyncio.new_event_loop()
        entered: Future[None] = Future()

        def main() -> None:
            try:
                enter_namespace(namespace)
            except OSError as exc:
                entered.set_exception(exc)
                return
            entered.set_result(None)
            asyncio.set_event_loop(self.loop)
            self.loop.run_forever()

        self._thread = threading.Thread(target=main, name=f"netns {namespace}", daemon=True)
        self._thread.start()
        entered.result(10)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        """Run `coro` on the client host; its result (or its exception)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        if not self.loop.is_running():
            self.loop.close()
