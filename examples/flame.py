"""Flame: use a remote Python process's modules, builtins, files and console from the client.

Run it with ``python examples/flame.py``. Flame ("foreign location automatic module exposer")
gives a client the server's whole Python: ``flame.module("os")``, ``flame.builtin("max")``,
``evaluate``/``execute`` of code, sending a module's source, files both ways, a remote console.
It is therefore **off by default** and refuses to run unless:

* the server sets ``FLAME_ENABLED`` (here ``PYRO_FLAME_ENABLED=true`` in its environment) and
  accepts *only* pickle (the ``flameserver`` tool sets that itself);
* the client uses ``SERIALIZER = "pickle"``.

Use it only on trusted networks, with an HMAC key or SSL. The server is the command-line tool
``python -m pyro4compat.utils.flameserver`` in a child process on 127.0.0.1 that this script
starts and stops. The part at the top shows the guards refusing. Exits 0 when every step worked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pyro4compat as Pyro4
import pyro4compat.utils.flame

MODULE_SOURCE = '''
def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
'''


def guards() -> None:
    Pyro4.config.FLAME_ENABLED = False  # the default
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        try:
            pyro4compat.utils.flame.start(daemon)
        except Pyro4.errors.SecurityError as exc:
            print("server without FLAME_ENABLED:", exc)
        else:
            raise AssertionError("Flame must not start unless enabled")
    try:
        pyro4compat.utils.flame.connect("127.0.0.1:1")
    except Pyro4.errors.SerializeError as exc:
        print("client without pickle:", exc)
    else:
        raise AssertionError("a Flame client must use pickle")


def start_flame_server() -> tuple:
    env = dict(os.environ, PYRO_FLAME_ENABLED="true")
    command = [sys.executable] + ["-W" + option for option in sys.warnoptions]
    command += ["-m", "pyro4compat.utils.flameserver", "--host", "127.0.0.1", "--port", "0"]
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    for line in child.stdout:  # "Starting ...", a warning about the missing HMAC key, then the URI
        if line.startswith("server uri:"):
            return child, Pyro4.URI(line.split(":", 1)[1].strip())
    raise AssertionError("the flame server did not start")


def main() -> int:
    guards()
    child, uri = start_flame_server()
    try:
        print("flame server running at", uri)
        Pyro4.config.SERIALIZER = "pickle"
        with pyro4compat.utils.flame.connect(uri.location) as flame:
            remote_os = flame.module("os")
            pid = remote_os.getpid()
            print("remote os.getpid():", pid, "(ours: %d)" % os.getpid())
            assert pid == child.pid

            biggest = flame.builtin("max")([4, 9, 2])
            print("remote builtin max([4, 9, 2]):", biggest)
            assert biggest == 9

            flame.execute("import sys; answer = 6 * 7")
            print("execute, then evaluate('answer'):", flame.evaluate("answer"))
            assert flame.evaluate("answer") == 42

            flame.sendmodule("examplemath", MODULE_SOURCE)
            fib = flame.module("examplemath").fib(30)
            print("a module we sent, run remotely: fib(30) =", fib)
            assert fib == 832040

            with tempfile.TemporaryDirectory() as directory:  # the server runs on this machine too
                path = os.path.join(directory, "note.txt")
                flame.sendfile(path, b"written by the client")
                back = flame.getfile(path)
                print("sendfile, then getfile:", back)
                assert back == b"written by the client"

            with flame.console() as console:
                output, more = console.remoteconsole.push_and_get_output("print(sum(range(10)))")
            print("remote console printed:", output.strip())
            assert output.strip() == "45" and not more
    finally:
        child.terminate()
        child.wait(10)
        child.stdout.close()
    print("flame example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
