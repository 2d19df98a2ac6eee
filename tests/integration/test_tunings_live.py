"""Busy-polling and the large-buffer tuning as config items, on running daemons and proxies (loopback).

A bad value is refused when a daemon is made or a proxy connects, before any socket exists; a
value changed while serving takes effect at the next wait, on both server types.
"""

from __future__ import annotations

import time
from typing import List

import pytest

from daemons import serving
from pyro4compat import _busypoll
from pyro4compat._client.proxy import Proxy
from pyro4compat._server.daemon import Daemon
from pyro4compat._server.exposure import expose
from pyro4compat.configuration import config

pytestmark = pytest.mark.timeout(60)


@expose
class Service:
    def ping(self) -> str:
        return "pong"


@pytest.mark.parametrize("item, value, variable", [("BUSYPOLL_US", "fast", "PYRO_BUSYPOLL_US"),
                                                   ("BUSYPOLL_US", -1, "PYRO_BUSYPOLL_US"),
                                                   ("KEEP_LARGE_BUFFERS", "maybe", "PYRO_KEEP_LARGE_BUFFERS")])
def test_a_bad_tuning_is_refused_when_a_daemon_is_made(servertype, item, value, variable) -> None:
    setattr(config, item, value)
    with pytest.raises(ValueError, match=r"config.%s \(%s\) must be" % (item, variable)):
        Daemon(host="127.0.0.1", port=0)


def test_a_bad_tuning_is_refused_when_a_proxy_connects_and_tolerated_on_a_live_one(
        servertype, caplog: pytest.LogCaptureFixture) -> None:
    with serving(Daemon(host="127.0.0.1", port=0)) as daemon:
        uri = daemon.register(Service(), "service")
        with Proxy(uri) as live:
            assert live.ping() == "pong"
            config.BUSYPOLL_US = "fast"
            with pytest.raises(ValueError, match=r"config.BUSYPOLL_US \(PYRO_BUSYPOLL_US\) must be"):
                Proxy(uri)._pyroBind()
            with caplog.at_level("WARNING", logger="Pyro4.core"):
                assert live.ping() == "pong"        # a connected proxy and the daemon go on, not spinning
            assert "treated as off until it is fixed" in caplog.text
            config.BUSYPOLL_US = 200
            assert live.ping() == "pong"


def test_busypolling_follows_config_while_serving(servertype, monkeypatch: pytest.MonkeyPatch) -> None:
    """A daemon made with busy-polling off spins once it is switched on, and stops when it is off again."""
    ticks: List[None] = []

    def counting_clock() -> float:      # read only by a spin that really probes
        ticks.append(None)
        return time.perf_counter()

    monkeypatch.setattr(_busypoll, "_clock", counting_clock)
    config.BUSYPOLL_US = 0
    with serving(Daemon(host="127.0.0.1", port=0)) as daemon:
        uri = daemon.register(Service(), "service")
        with Proxy(uri) as proxy:
            for _ in range(20):
                assert proxy.ping() == "pong"
            assert not ticks
            config.BUSYPOLL_US = 2000
            for _ in range(20):
                assert proxy.ping() == "pong"
            assert ticks
            config.BUSYPOLL_US = 0
            time.sleep(0.05)        # a spin begun before the switch ends (2 ms at most)
            del ticks[:]
            for _ in range(20):
                assert proxy.ping() == "pong"
            assert not ticks
