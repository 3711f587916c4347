"""The SSRF guard: which addresses and names are refused, and why.

Host names go through a fake resolver (dependency injection, no patching). The odd IPv4
spellings go through the real `getaddrinfo`, because the point is what it turns them
into; it parses them locally, without asking DNS.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

from flowsync.errors import ConfigurationError, StepFailed, UrlRefused
from flowsync.worker.netguard import (
    IPAddress,
    NetworkPolicy,
    check_address,
    check_scheme,
    refusal_reason,
    resolve_checked,
)

DEFAULT = NetworkPolicy()


class FakeResolver:
    """Answers from a table and records the names it was asked for."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.calls.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(a) for a in self.answers[host]]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.255.254", "a loopback address"),
        ("10.0.0.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "the cloud metadata address"),
        ("169.254.1.1", "a link-local address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("100.100.100.200", "a shared (carrier-grade NAT) address"),
        ("0.0.0.0", "the unspecified address"),
        ("0.1.2.3", "a 'this network' address"),
        ("224.0.0.1", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "the broadcast address"),
        ("192.0.2.10", "a documentation address"),
        ("198.18.0.1", "a benchmarking address"),
        ("192.0.0.8", "an IETF protocol assignment"),
        ("::", "the unspecified address"),
        ("::1", "a loopback address"),
        ("fc00::1", "a unique-local address"),
        ("fd12:3456::1", "a unique-local address"),
        ("fd00:ec2::254", "the cloud metadata address"),
        ("fe80::1", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("fec0::1", "a site-local address"),
        ("ff02::1", "a multicast address"),
        ("2001:db8::1", "a documentation address"),
        ("2001:0:4136:e378::1", "a Teredo tunnel address"),
        ("64:ff9b:1::a00:1", "a local-use NAT64 address"),
        ("::ffff:127.0.0.1", "the IPv4-mapped form of 127.0.0.1, a loopback address"),
        ("::ffff:7f00:1", "the IPv4-mapped form of 127.0.0.1, a loopback address"),
        (
            "::ffff:169.254.169.254",
            "the IPv4-mapped form of 169.254.169.254, the cloud metadata address",
        ),
        ("::7f00:1", "the IPv4-compatible form of 127.0.0.1, a loopback address"),
        ("::a00:1", "the IPv4-compatible form of 10.0.0.1, a private address"),
        ("64:ff9b::7f00:1", "the NAT64 form of 127.0.0.1, a loopback address"),
        ("64:ff9b::a9fe:a9fe", "the NAT64 form of 169.254.169.254, the cloud metadata address"),
        ("2002:7f00:1::", "the 6to4 form of 127.0.0.1, a loopback address"),
        ("2002:c0a8:101::1", "the 6to4 form of 192.168.1.1, a private address"),
    ],
)
def test_refused_addresses_say_why(address: str, reason: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.215.14",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_global_addresses_pass(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None
    check_address(ipaddress.ip_address(address), DEFAULT)


@pytest.mark.parametrize(
    ("host", "address", "reason"),
    [
        ("127.0.0.1", "127.0.0.1", "a loopback address"),
        ("10.0.0.1", "10.0.0.1", "a private address"),
        ("169.254.169.254", "169.254.169.254", "the cloud metadata address"),
        ("[::1]", "::1", "a loopback address"),
        ("::1", "::1", "a loopback address"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1", "IPv4-mapped form of 127.0.0.1"),
        ("[fe80::1%25eth0]", "fe80::1%eth0", "a link-local address"),
    ],
)
async def test_ip_literals_are_checked_without_resolving(
    host: str, address: str, reason: str
) -> None:
    resolver = FakeResolver({})
    with pytest.raises(UrlRefused, match=reason) as caught:
        await resolve_checked(host, 80, DEFAULT, resolver=resolver)
    assert caught.value.message.startswith(f"{address} is ")
    assert resolver.calls == []


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),  # one 32-bit number
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("0x7f.1", "127.0.0.1"),  # hex, two parts
        ("127.1", "127.0.0.1"),  # two parts
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0xa.1", "10.0.0.1"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("2852039166", "169.254.169.254"),
    ],
)
async def test_odd_ipv4_spellings_are_refused_by_the_address_they_resolve_to(
    spelling: str, address: str
) -> None:
    with pytest.raises(UrlRefused, match=f"^{spelling} resolves to {address}, ") as caught:
        await resolve_checked(spelling, 80, DEFAULT)
    assert caught.value.retryable is False


async def test_an_odd_spelling_resolves_to_the_checked_address_when_allowed() -> None:
    # What the caller connects to is the resolved address, never the spelling.
    allowed = NetworkPolicy(allow=["127.0.0.0/8"])
    assert await resolve_checked("0x7f.1", 80, allowed) == [ipaddress.ip_address("127.0.0.1")]


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost.", "api.localhost"])
async def test_localhost_names_are_refused_without_asking_dns(host: str) -> None:
    resolver = FakeResolver({"localhost": ["8.8.8.8"], "api.localhost": ["8.8.8.8"]})
    with pytest.raises(UrlRefused, match="is a loopback name"):
        await resolve_checked(host, 80, DEFAULT, resolver=resolver)
    assert resolver.calls == []


async def test_a_name_that_resolves_to_a_private_address_is_refused() -> None:
    resolver = FakeResolver({"intranet.test": ["10.1.2.3"]})
    with pytest.raises(UrlRefused, match=r"^intranet.test resolves to 10.1.2.3, a private"):
        await resolve_checked("intranet.test", 443, DEFAULT, resolver=resolver)


async def test_one_refused_address_refuses_the_whole_answer() -> None:
    resolver = FakeResolver({"mixed.test": ["93.184.215.14", "2606:4700::1", "127.0.0.1"]})
    with pytest.raises(UrlRefused, match=r"127\.0\.0\.1, a loopback"):
        await resolve_checked("mixed.test", 443, DEFAULT, resolver=resolver)


async def test_public_addresses_come_back_in_order_without_duplicates() -> None:
    resolver = FakeResolver({"shop.test": ["93.184.215.14", "2606:4700::1", "93.184.215.14"]})
    found = await resolve_checked("Shop.Test.", 443, DEFAULT, resolver=resolver)
    assert found == [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("2606:4700::1")]
    assert resolver.calls == ["shop.test"]


async def test_allowed_networks_let_their_addresses_through() -> None:
    policy = NetworkPolicy(allow=["127.0.0.1/32", "::1/128", "10.20.0.0/16"])
    resolver = FakeResolver({"db.test": ["10.20.3.4"], "other.test": ["10.21.0.1"]})
    assert await resolve_checked("127.0.0.1", 80, policy) == [ipaddress.ip_address("127.0.0.1")]
    assert await resolve_checked("[::1]", 80, policy) == [ipaddress.ip_address("::1")]
    # The IPv4-mapped form is the same socket address as the allowed IPv4 one.
    assert await resolve_checked("::ffff:127.0.0.1", 80, policy)
    assert await resolve_checked("db.test", 80, policy, resolver=resolver)
    with pytest.raises(UrlRefused, match=r"10\.21\.0\.1, a private"):
        await resolve_checked("other.test", 80, policy, resolver=resolver)
    with pytest.raises(UrlRefused, match=r"127\.0\.0\.2 is a loopback"):
        await resolve_checked("127.0.0.2", 80, policy)


async def test_allowed_names_match_exactly_and_skip_the_address_rules() -> None:
    policy = NetworkPolicy(allow=["Internal.Example", "localhost"])
    resolver = FakeResolver(
        {
            "internal.example": ["10.0.0.5"],
            "api.internal.example": ["10.0.0.6"],
            "localhost": ["127.0.0.1"],
        }
    )
    found = await resolve_checked("INTERNAL.example.", 80, policy, resolver=resolver)
    assert found == [ipaddress.ip_address("10.0.0.5")]
    assert await resolve_checked("localhost", 80, policy, resolver=resolver)
    with pytest.raises(UrlRefused):
        await resolve_checked("api.internal.example", 80, policy, resolver=resolver)


async def test_a_name_that_does_not_resolve_is_a_retryable_failure() -> None:
    with pytest.raises(StepFailed, match=r"could not resolve nowhere\.test") as caught:
        await resolve_checked("nowhere.test", 80, DEFAULT, resolver=FakeResolver({}))
    assert caught.value.retryable is True
    assert not isinstance(caught.value, UrlRefused)
    assert isinstance(caught.value.__cause__, socket.gaierror)


async def test_an_empty_answer_is_a_retryable_failure() -> None:
    with pytest.raises(StepFailed, match="no addresses") as caught:
        await resolve_checked("empty.test", 80, DEFAULT, resolver=FakeResolver({"empty.test": []}))
    assert caught.value.retryable is True


async def test_an_empty_host_is_refused() -> None:
    with pytest.raises(UrlRefused, match="no host"):
        await resolve_checked("", 80, DEFAULT)


@pytest.mark.parametrize("scheme", ["ftp", "file", "gopher", "javascript", "ws", ""])
def test_only_http_and_https_schemes(scheme: str) -> None:
    with pytest.raises(UrlRefused, match=r"only http:// and https:// URLs are allowed"):
        check_scheme(scheme)
    check_scheme("http")
    check_scheme("HTTPS")


def test_refusals_are_final_step_failures() -> None:
    with pytest.raises(UrlRefused) as caught:
        check_address(ipaddress.ip_address("127.0.0.1"), DEFAULT)
    error = caught.value
    assert isinstance(error, StepFailed)
    assert error.retryable is False
    assert error.code == "url_refused"
    assert error.message == "127.0.0.1 is a loopback address; the network policy does not allow it"


@pytest.mark.parametrize("entry", ["10.0.0.1/8", "10.0.0.0/33", "fe80::zz/64", "   "])
def test_malformed_allow_entries_are_configuration_errors(entry: str) -> None:
    with pytest.raises(ConfigurationError):
        NetworkPolicy(allow=[entry])


def test_policies_compare_by_what_they_allow() -> None:
    assert NetworkPolicy(["127.0.0.1", "Host.Test"]) == NetworkPolicy(["host.test", "127.0.0.1/32"])
    assert NetworkPolicy() != NetworkPolicy(["127.0.0.1/32"])
    assert hash(NetworkPolicy(["a.test"])) == hash(NetworkPolicy(["A.test."]))
