"""Runs a snippet of code against real Pyro4 4.82, in its own process.

Invoked by ``tests/interop/conftest.py`` only. Reads a marshal-encoded ``(code, input)`` pair
from stdin, executes ``code`` with ``Pyro4`` imported and ``INPUT`` bound, and writes the
marshal encoding of the ``OUTPUT`` name the code set to stdout. Plain data only crosses
the process boundary, so nothing here needs pyro4compat, and pyro4compat never meets Pyro4.
"""

import marshal
import sys
import warnings

warnings.simplefilter("ignore")  # Pyro4 4.82 itself is not warning-clean on new Pythons

import Pyro4  # noqa: E402  (real Pyro4, a test-only dependency)

assert Pyro4.__version__ == "4.82", Pyro4.__version__
assert "pyro4compat" not in sys.modules


def main() -> None:
    code, data = marshal.loads(sys.stdin.buffer.read())
    namespace = {"Pyro4": Pyro4, "INPUT": data, "OUTPUT": None}
    exec(compile(code, "<interop snippet>", "exec"), namespace)
    sys.stdout.buffer.write(marshal.dumps(namespace["OUTPUT"]))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
