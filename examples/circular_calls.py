"""Circular calls: server A calls server B, which calls A back, and so on, while the first call waits.

Run it with ``python examples/circular_calls.py``. Two daemons ("ping" and "pong") in threads on
127.0.0.1 play a rally: each hit calls the other server with a shorter count until it reaches 0.
This works because:

* both daemons use the thread-pool server type, so a callback can be served while an earlier
  call on the same daemon is still waiting for its answer;
* every hop makes its own proxy. A proxy serializes its calls with a lock, so reusing one
  proxy object for a nested call that comes back through the same path would wait for itself.

Exits 0 when every step worked.
"""

from __future__ import annotations

import threading

import pyro4compat as Pyro4


@Pyro4.expose
class Player:
    def __init__(self, name: str) -> None:
        self.name = name
        self.opponent = None
        self.threads = set()

    def set_opponent(self, uri) -> None:
        self.opponent = uri

    def hit(self, count: int) -> list:
        self.threads.add(threading.current_thread().name)
        if count == 0:
            return ["%s wins the rally" % self.name]
        with Pyro4.Proxy(self.opponent) as opponent:  # a fresh proxy per nested call
            rest = opponent.hit(count - 1)
        return ["%s hits (%d)" % (self.name, count)] + rest


def main() -> int:
    with Pyro4.Daemon(host="127.0.0.1") as daemon_a, Pyro4.Daemon(host="127.0.0.1") as daemon_b:
        ping, pong = Player("ping"), Player("pong")
        uri_a, uri_b = daemon_a.register(ping), daemon_b.register(pong)
        ping.set_opponent(uri_b)
        pong.set_opponent(uri_a)
        for daemon in (daemon_a, daemon_b):
            threading.Thread(target=daemon.requestLoop, daemon=True).start()

        with Pyro4.Proxy(uri_a) as server_a:
            rally = server_a.hit(6)
        for line in rally:
            print(line)
        assert rally[0] == "ping hits (6)" and rally[-1] == "ping wins the rally" and len(rally) == 7
        # Each server was busy with several nested calls at once, each in its own worker thread.
        print("worker threads used: ping %d, pong %d" % (len(ping.threads), len(pong.threads)))
        assert len(ping.threads) == 4 and len(pong.threads) == 3
        daemon_a.shutdown()
        daemon_b.shutdown()
    print("circular calls example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
