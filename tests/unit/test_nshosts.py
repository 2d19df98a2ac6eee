"""Parsing a list of name servers in NS_HOST, and the order it is tried in (no sockets)."""

from __future__ import annotations

import pytest

from pyro4compat import errors
from pyro4compat._client.nshosts import FailedHosts, NameServerAddress as A, is_host_list, parse_host_list

LISTS = [
    ("ns1:9090,ns2:9091", [A("ns1", 9090), A("ns2", 9091)]),
    ("ns1,ns2", [A("ns1", 7777), A("ns2", 7777)]),
    ("  ns1:1 ,\tns2  ", [A("ns1", 1), A("ns2", 7777)]),
    ("ns1,", [A("ns1", 7777)]),
    (",ns1,,ns2,", [A("ns1", 7777), A("ns2", 7777)]),
    ("[::1]:9090,[fe80::1%eth0]", [A("::1", 9090), A("fe80::1%eth0", 7777)]),
    ("::1,127.0.0.1:65535", [A("::1", 7777), A("127.0.0.1", 65535)]),
    ("./u:/tmp/ns.sock,ns2:2", [A("./u:/tmp/ns.sock", None), A("ns2", 2)]),
    ("ns1:1,ns1:1", [A("ns1", 1), A("ns1", 1)]),
]

BAD = [
    ",", " , ,", "ns1:abc,ns2", "ns1:0,", "ns1:65536,", "ns1:-1,", ":9090,ns2", "[::1,ns2",
    "[::1]x,", "[]:1,", "[[::1]]:1,", "::1]:1,", "./u:,ns2", "ns1:,", " ns1 : 1 , ns2 ",
]


@pytest.mark.parametrize("text, expected", LISTS)
def test_parse_host_list(text, expected):
    assert is_host_list(text)
    assert parse_host_list(text, 7777) == expected


@pytest.mark.parametrize("text", BAD)
def test_parse_host_list_refuses(text):
    with pytest.raises(errors.NamingError, match="name server address"):
        parse_host_list(text, 9090)


@pytest.mark.parametrize("text", [None, "", "localhost", "ns1:9090", "::1", "./u:/tmp/ns.sock"])
def test_without_a_comma_it_is_pyro4s_single_host(text):
    assert not is_host_list(text)


@pytest.mark.parametrize("address, text, uri", [
    (A("ns1", 9090), "ns1:9090", "PYRO:Pyro.NameServer@ns1:9090"),
    (A("::1", 1), "[::1]:1", "PYRO:Pyro.NameServer@[::1]:1"),
    (A("./u:/s", None), "./u:/s", "PYRO:Pyro.NameServer@./u:/s"),
])
def test_address_text_and_uri(address, text, uri):
    assert str(address) == text
    assert address.uri == uri


def test_recent_failures_go_last_in_order_of_failure():
    a, b, c = A("a", 1), A("b", 1), A("c", 1)
    hosts = FailedHosts(penalty=30.0)
    assert hosts.order([a, b, c], 100.0) == [a, b, c]
    hosts.failed(b, 100.0)
    hosts.failed(a, 101.0)
    assert hosts.order([a, b, c], 102.0) == [c, b, a]
    assert hosts.order([a, b, c], 130.5) == [b, c, a]  # b's failure is 30.5 s old: back in place
    hosts.answered(a)
    assert hosts.order([a, b, c], 102.0) == [a, c, b]
    hosts.clear()
    assert hosts.order([a, b, c], 102.0) == [a, b, c]
