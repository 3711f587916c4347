"""The SSRF guard: which network addresses an `action` step may reach.

An `action` URL is written by a workflow author, so without a guard any workflow could read
the cloud metadata service (169.254.169.254), an admin port on localhost or a database on
the private network, and return the reply as its output. The guard is on by default.

What callers may rely on:

- `resolve_checked(host, port, policy)` resolves `host` once and returns its addresses only
  if every one of them may be reached; otherwise it raises `UrlRefused` (not retryable)
  whose message says why ("127.0.0.1 is a loopback address"). One refused address refuses
  the host, so a DNS answer that mixes a public and a private address is refused.
- Refused unless allowed: loopback, private, link-local (and the metadata address),
  "this network", shared (100.64.0.0/10), documentation, benchmarking, multicast,
  reserved and unspecified addresses, IPv6 unique-local (fc00::/7), site-local and Teredo,
  anything else Python does not consider global, and the IPv4-mapped, IPv4-compatible,
  NAT64 (64:ff9b::/96) and 6to4 (2002::/16) forms of refused IPv4 addresses.
- The names `localhost` and `*.localhost` are refused without asking DNS.
- An IP literal is not resolved. Any other host string goes to `getaddrinfo`, which also
  turns odd IPv4 spellings (`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`) into an
  address; the check is made on that address, so these are refused like `127.0.0.1`.
- Only `http` and `https` URLs are used (`check_scheme`).

Callers must connect to the returned addresses and to nothing else: resolving the name
again would let a second DNS answer replace the checked one (DNS rebinding).
`flowsync.worker.http_client` connects that way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence

from flowsync.errors import ConfigurationError, StepFailed, UrlRefused

__all__ = [
    "ALLOWED_SCHEMES",
    "IPAddress",
    "NetworkPolicy",
    "Resolver",
    "check_address",
    "check_scheme",
    "refusal_reason",
    "resolve_checked",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]
"""Turns (host name, port) into addresses; raises `OSError` (e.g. `socket.gaierror`) when
the name does not resolve. Tests inject a fake one instead of patching the system."""

ALLOWED_SCHEMES = frozenset({"http", "https"})


class NetworkPolicy:
    """What the operator allows despite the guard's rules.

    `allow` entries are host names (matched exactly, case-insensitively, after dropping a
    trailing dot; write an international name in its `xn--` form) or IP networks in CIDR
    form (`"127.0.0.0/8"`, `"::1/128"`; a bare address means that one address). An allowed
    name may resolve to any address; an allowed network lets any host whose addresses all
    fall inside allowed networks through. `NetworkPolicy()` allows nothing.
    """

    __slots__ = ("_hosts", "_networks", "allow")

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.allow: tuple[str, ...] = tuple(allow)
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in self.allow:
            text = entry.strip()
            if not text:
                raise ConfigurationError("The network allow list has an empty entry.")
            try:
                networks.append(ipaddress.ip_network(text.strip("[]")))
            except ValueError as exc:
                # A host name never contains "/" or ":", so such an entry was meant as an
                # address or network: a typo there must not silently become a name.
                if "/" in text or ":" in text:
                    raise ConfigurationError(
                        f"{entry!r} in the network allow list is not a valid IP network: {exc}"
                    ) from exc
                hosts.add(_normalise_host(text))
        self._hosts = frozenset(hosts)
        self._networks = tuple(networks)

    def allows_host(self, host: str) -> bool:
        """Whether the host name itself is in the allow list."""
        return _normalise_host(host) in self._hosts

    def allows_address(self, address: IPAddress) -> bool:
        """Whether the address is inside an allowed network. An IPv4-mapped IPv6 address
        (`::ffff:a.b.c.d`) is the same socket address as its IPv4 form, so it matches too."""
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(a in net for a in candidates for net in self._networks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NetworkPolicy):
            return NotImplemented
        return (self._hosts, set(self._networks)) == (other._hosts, set(other._networks))

    def __hash__(self) -> int:
        return hash((self._hosts, frozenset(self._networks)))

    def __repr__(self) -> str:
        return f"NetworkPolicy(allow={list(self.allow)!r})"


def _net(text: str) -> IPNetwork:
    return ipaddress.ip_network(text)


# Checked in order, so the metadata address is named before the link-local block it is in.
_IPV4_RULES: tuple[tuple[IPNetwork, str], ...] = tuple(
    (_net(cidr), reason)
    for cidr, reason in (
        ("169.254.169.254/32", "the cloud metadata address"),
        ("0.0.0.0/32", "the unspecified address"),
        ("0.0.0.0/8", "a 'this network' address"),
        ("127.0.0.0/8", "a loopback address"),
        ("10.0.0.0/8", "a private address"),
        ("172.16.0.0/12", "a private address"),
        ("192.168.0.0/16", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("169.254.0.0/16", "a link-local address"),
        ("192.0.0.0/24", "an IETF protocol assignment"),
        ("192.0.2.0/24", "a documentation address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("192.88.99.0/24", "a 6to4 relay anycast address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
    )
)

_IPV6_RULES: tuple[tuple[IPNetwork, str], ...] = tuple(
    (_net(cidr), reason)
    for cidr, reason in (
        ("::/128", "the unspecified address"),
        ("::1/128", "a loopback address"),
        ("fd00:ec2::254/128", "the cloud metadata address"),
        ("fc00::/7", "a unique-local address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard-only address"),
        ("2001::/32", "a Teredo tunnel address"),
        ("2001:db8::/32", "a documentation address"),
        ("3fff::/20", "a documentation address"),
    )
)

# Python 3.11 calls NAT64 and 6to4 forms of 127.0.0.1 "global", so embedded IPv4 addresses
# are extracted and judged by the IPv4 rules rather than trusting `is_global` on them.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address stands for, and the name of the form, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "IPv4-mapped"
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
    if address.sixtofour is not None:
        return address.sixtofour, "6to4"
    if address in _IPV4_COMPATIBLE:  # :: and ::1 are caught by the rules before this
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "IPv4-compatible"
    return None


def _ipv4_reason(address: ipaddress.IPv4Address) -> str | None:
    for network, reason in _IPV4_RULES:
        if address in network:
            return reason
    if not address.is_global:  # a catch-all for blocks added to the registry later
        return "not a globally routable address"
    return None


def refusal_reason(address: IPAddress) -> str | None:
    """Why the guard refuses `address` (e.g. "a loopback address"), or None if it is
    globally routable. Ignores any allow list; see `check_address`."""
    if isinstance(address, ipaddress.IPv4Address):
        return _ipv4_reason(address)
    bare = address if address.scope_id is None else ipaddress.IPv6Address(int(address))
    for network, reason in _IPV6_RULES:
        if bare in network:
            return reason
    embedded = _embedded_ipv4(bare)
    if embedded is not None:
        ipv4, form = embedded
        inner = _ipv4_reason(ipv4)
        return None if inner is None else f"the {form} form of {ipv4}, {inner}"
    if not bare.is_global:
        return "not a globally routable address"
    return None


def check_address(address: IPAddress, policy: NetworkPolicy, *, host: str | None = None) -> None:
    """Raise `UrlRefused` unless `address` is globally routable or allowed by `policy`.
    `host` (the name it was resolved from) only makes the message clearer."""
    if policy.allows_address(address):
        return
    reason = refusal_reason(address)
    if reason is None:
        return
    subject = f"{address} is" if host is None else f"{host} resolves to {address},"
    raise UrlRefused(f"{subject} {reason}; the network policy does not allow it")


def check_scheme(scheme: str) -> None:
    """Raise `UrlRefused` unless the URL scheme is http or https."""
    if scheme.lower() not in ALLOWED_SCHEMES:
        shown = scheme or "(none)"
        raise UrlRefused(f"only http:// and https:// URLs are allowed, not {shown}:")


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The operating system's resolver (`getaddrinfo`, off the event loop's thread)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [
        ipaddress.ip_address(str(info[4][0]))
        for info in infos
        if info[0] in (socket.AF_INET, socket.AF_INET6)
    ]


async def resolve_checked(
    host: str, port: int, policy: NetworkPolicy, *, resolver: Resolver | None = None
) -> list[IPAddress]:
    """The addresses to connect to for `host`, each one checked; in resolver order,
    without duplicates, never empty.

    Raises `UrlRefused` (not retryable) when the host or any of its addresses is refused,
    and `StepFailed` (retryable: DNS failures are often passing) when it does not resolve.
    """
    name = _normalise_host(host)
    if not name:
        raise UrlRefused("the URL has no host")
    literal = _ip_literal(name)
    if literal is not None:
        check_address(literal, policy)
        return [literal]
    if policy.allows_host(name):
        return await _resolve(name, port, resolver or system_resolver)
    if name == "localhost" or name.endswith(".localhost"):
        # RFC 6761: these names mean this machine, whatever DNS says; never ask it.
        raise UrlRefused(f"{name} is a loopback name; the network policy does not allow it")
    addresses = await _resolve(name, port, resolver or system_resolver)
    for address in addresses:
        check_address(address, policy, host=name)
    return addresses


async def _resolve(name: str, port: int, resolver: Resolver) -> list[IPAddress]:
    try:
        found = await resolver(name, port)
    except UnicodeError as exc:  # getaddrinfo's IDNA encoding rejects the name
        raise UrlRefused(f"{name!r} is not a valid host name") from exc
    except OSError as exc:
        detail = exc.strerror or str(exc)
        raise StepFailed(f"could not resolve {name}: {detail}", retryable=True) from exc
    addresses = list(dict.fromkeys(found))
    if not addresses:
        raise StepFailed(f"could not resolve {name}: no addresses", retryable=True)
    return addresses


def _normalise_host(host: str) -> str:
    name = host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name[:-1] if name.endswith(".") else name


def _ip_literal(name: str) -> IPAddress | None:
    """The address if `name` is a standard IP literal. Odd spellings (`127.1`, octal,
    hex, a bare integer) are not literals here: they go to the resolver, and the check is
    made on what it returns, so the spelling cannot hide the address."""
    text = name.replace("%25", "%")  # a zone id as written in a URL: fe80::1%25eth0
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
