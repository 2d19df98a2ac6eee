"""Extended pickle and dill: send arbitrary Python objects, and even functions, as arguments.

Run it with ``python examples/extended_pickle.py``. The default serializer (serpent) only
carries plain data. If *both* sides opt in, pickle sends instances of your own classes as they
are, and dill (when installed) also sends lambdas and closures:

* the server lists them in ``config.SERIALIZERS_ACCEPTED`` before creating its daemon;
* the client picks one with ``config.SERIALIZER`` or per proxy with ``proxy._pyroSerializer``.

**Security**: a pickle/dill payload can run any code when it is loaded. Only accept these
serializers from clients you fully trust (and behind HMAC keys or SSL). A daemon in a thread
on 127.0.0.1. Exits 0 when every step worked.
"""

from __future__ import annotations

import importlib.util
import threading

import pyro4compat as Pyro4


class Matrix:
    """An ordinary class: no to/from-dict hooks needed with pickle."""

    def __init__(self, rows) -> None:
        self.rows = [list(row) for row in rows]

    def transposed(self) -> "Matrix":
        return Matrix(zip(*self.rows))

    def __eq__(self, other) -> bool:
        return isinstance(other, Matrix) and self.rows == other.rows


@Pyro4.expose
class Calculator:
    def transpose(self, matrix: Matrix) -> Matrix:
        assert isinstance(matrix, Matrix)  # a real Matrix on the server too
        return matrix.transposed()

    def apply(self, function, values):
        return [function(value) for value in values]


def main() -> int:
    # Server side: accept pickle and dill besides the defaults, before the daemon is made.
    Pyro4.config.SERIALIZERS_ACCEPTED = {"serpent", "json", "marshal", "pickle", "dill"}
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        uri = daemon.register(Calculator())
        threading.Thread(target=daemon.requestLoop, daemon=True).start()

        Pyro4.config.SERIALIZER = "pickle"  # client side: read for every call
        with Pyro4.Proxy(uri) as calculator:
            result = calculator.transpose(Matrix([[1, 2, 3], [4, 5, 6]]))
            print("pickle: got a %s back: %s" % (type(result).__name__, result.rows))
            assert result == Matrix([[1, 4], [2, 5], [3, 6]])

            try:
                calculator.apply(lambda x: x * x, [1, 2, 3])
            except Exception as exc:  # plain pickle refuses lambdas, already on the client
                print("pickle can't send a lambda: %s: %.50s" % (type(exc).__name__, exc))
            else:
                raise AssertionError("pickle should not serialize a lambda")

            if importlib.util.find_spec("dill") is None:
                print("dill is not installed: skipping the dill part")
            else:
                calculator._pyroSerializer = "dill"  # just this proxy
                offset = 10
                squares = calculator.apply(lambda x: x * x + offset, [1, 2, 3])
                print("dill: a closure ran on the server:", squares)
                assert squares == [11, 14, 19]

        Pyro4.config.SERIALIZER = "serpent"
        with Pyro4.Proxy(uri) as calculator:
            try:
                calculator.transpose(Matrix([[1]]))
            except Exception as exc:  # serpent sends Matrix as a dict, which the server won't make a class of
                print("the same call with serpent fails: %s: %s" % (type(exc).__name__, exc))
            else:
                raise AssertionError("serpent should not rebuild a Matrix")
        daemon.shutdown()
    print("extended pickle example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
