"""Remote iterators: a method that returns a generator streams its items one by one.

Run it with ``python examples/streaming.py``. Everything runs in this process on 127.0.0.1
with a random free port. Exits 0 when every step worked.
"""

from __future__ import annotations

import threading

import pyro4compat as Pyro4


@Pyro4.expose
class Sensor:
    def readings(self, count: int):
        """A generator: the client gets an iterator that fetches one item per call."""
        for i in range(count):
            yield {"sample": i, "value": i * i}

    def endless(self):
        i = 0
        while True:
            yield i
            i += 1


def main() -> int:
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(Sensor())
        threading.Thread(target=daemon.requestLoop, daemon=True).start()

        with Pyro4.Proxy(uri) as sensor:
            # Items arrive as the loop asks for them (config.ITER_STREAMING must be on: the default).
            for reading in sensor.readings(4):
                print("reading:", reading)

            # Stop early: close() tells the server to drop its generator.
            counter = sensor.endless()
            first = [next(counter) for _ in range(5)]
            print("first five of an endless stream:", first)
            print("open streams on the server:", len(daemon.streaming_responses))
            counter.close()
            # close() is a oneway message, handled a moment later: wait (at most 5 s) for it.
            pause = threading.Event()
            for _ in range(500):
                if not daemon.streaming_responses:
                    break
                pause.wait(0.01)
            print("open streams after close():", len(daemon.streaming_responses))
            assert not daemon.streaming_responses

            # With streaming switched off the client gets a clear error instead.
            Pyro4.config.ITER_STREAMING = False
            try:
                sensor.readings(2)
            except Pyro4.errors.ProtocolError as exc:
                print("streaming off:", exc)
            Pyro4.config.ITER_STREAMING = True
        daemon.shutdown()
    print("streaming example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
