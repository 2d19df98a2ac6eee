"""Smoke test: every script in examples/ runs non-interactively, exits 0 and says what it did.

The scripts run as child processes under ``-W error``, a few at a time (a module-scoped fixture
starts them all up front), so the whole file takes a few seconds rather than the sum of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
PARALLEL = 4
EXAMPLE_TIMEOUT = 50

# Text each example must print (its last line and something that proves the feature worked).
# An example not listed here must still exit 0 and print something.
EXPECTED = {
    "quickstart.py": ["done: every call went over protocol 48"],
    "asyncio_server.py": ["they overlapped on the loop: yes", "meanwhile: answered while a worker hashes",
                          "ticks: [0, 1, 2, 3, 4]", "asyncio server example done"],
    "asyncio_client.py": ["200 concurrent takes on one proxy, last answer: 800 | distinct answers: 200",
                          "gave up waiting for slow_count", "next call still gets its own answer: 2",
                          "motto now: keep calm and take pears", "batch results: [1, 700]",
                          "items: ['apple', 'pear']", "with _pyroTimeout: TimeoutError receiving: timeout",
                          "asyncio client example done"],
    "batch.py": ["batch results: [10, 20, 30, 40, 50]", "the batch stopped at: ZeroDivisionError",
                 "asynchronous batch results: [42]", "batch example done"],
    "async_calls.py": ["chained: BAKED BREAD!", "value raised: the pizza caught fire", "async example done"],
    "streaming.py": ["first five of an endless stream: [0, 1, 2, 3, 4]", "open streams after close(): 0",
                     "server is not configured to allow streaming", "streaming example done"],
    "callbacks.py": ["client: server reports progress on c", "listener failed: ValueError",
                     "error during handleRequest: client refuses", "callbacks example done"],
    "ssl_two_way.py": ["server: client certificate subject: {'commonName': 'example-client'}",
                       "client: the secret is 42", "ssl example done"],
    "remote_attributes.py": ["after setting it to 21: target 21.0, reading 20.7",
                             "read-only property: attempt to access unexposed or unknown remote attribute",
                             "remote attributes example done"],
    "autoproxy.py": ["beetle has driven 42 km in total", "odometers on the server: {'beetle': 42}",
                     "unsupported serialized class: garage.Car", "autoproxy example done"],
    "auto_reconnect.py": ["client: lost the server (", "client: tick from server generation 2",
                          "auto-reconnect example done"],
    "auto_retry.py": ["without retries the caller sees: ConnectionClosedError",
                      "counter on the server: 3 (the retried call ran twice!)", "auto-retry example done"],
    "blob_dispatch.py": ["dispatcher: routing a SerializedBlob to the 'orders' handler",
                         "client: handled 3 x teapot (Order, gift wrapped)", "blob dispatch example done"],
    "call_context.py": ["server saw: annotations sent by the client = ['APPV', 'CORR', 'NOTE']",
                        "client got response annotations: {'BALN': b'70', 'SRVR': b'server-1'}",
                        "call context example done"],
    "message_bus.py": ["carol's screen: [music] carol: concert tonight!",
                       "bus: 'music' message delivered to 2 subscribers (bob is gone)",
                       "message bus example done"],
    "circular_calls.py": ["pong hits (1)", "ping wins the rally", "circular calls example done"],
    "oneway_deadlock.py": ["listener got no answer (receiving: timeout)",
                           "the listener got its answer: rang 2 times", "oneway deadlock example done"],
    "distributed_computing.py": ["600851475143 = 71 x 839 x 1471 x 6857", "distributed computing example done"],
    "event_loop.py": ["own loop: client saw readings ['12.5', '13.0', '12.8']",
                      "combined loop: name server lookup and the call both answered", "event loop example done"],
    "custom_exceptions.py": ["without a hook: unsupported serialized class: bank.InsufficientFunds",
                             "balance attribute = 40", "custom exceptions example done"],
    "extended_pickle.py": ["pickle: got a Matrix back: [[1, 4], [2, 5], [3, 6]]",
                           "the same call with serpent fails: SecurityError", "extended pickle example done"],
    "file_transfer.py": ["serpent delivers bytes as: dict ['data', 'encoding']",
                         "uploaded 3145728 bytes in chunks; server checksum matches: True",
                         "file transfer example done"],
    "future_calls.py": ["Lisbon in Fahrenheit: 66.2", "its result says: future has been cancelled",
                        "FutureResult.then: 11.5 degrees", "futures example done"],
    "handshake.py": ["client: the server said: welcome, alice", "client: you are alice",
                     "rejected: wrong password", "handshake example done"],
    "instance_modes.py": ["PerCall:   instance 1, call 1; instance 2, call 1;",
                          "Created:   instance 1, call 101;", "instance modes example done"],
    "max_message_size.py": ["MessageTooLargeError: max message size exceeded (60082 where max=50000)",
                            "client sends 10 KB again                 -> ok, 10000",
                            "max message size example done"],
    "name_server_metadata.py": ["printers with color: ['lab.plotter', 'office.inkjet']",
                                "PYROMETA:floor:2,large -> plotter printed 'poster'",
                                "name server metadata example done"],
    "no_name_server.py": ["-> hello, world", "the daemon's own object lists: ['Pyro.Daemon', 'example.greeter']",
                          "no name server example done"],
    "oneway.py": ["oneway call returned None after", "later: 5 sent",
                  "the server's thread hook saw: RuntimeError('nobody will hear about this')",
                  "oneway example done"],
    "proxy_sharing.py": ["(calls took turns)", "(in parallel)", "proxy sharing example done"],
    "resource_tracking.py": ["after the client disconnected, careless.txt open: False",
                             "its contents were flushed by close(): ['first line', 'second line']",
                             "resource tracking example done"],
    "serialization_hooks.py": ["the server answers: unsupported serialized class: finance.Money",
                               "marshal: 10.00 EUR -> Money(11.00 USD)", "serialization hooks example done"],
    "server_types.py": ["served by 3 thread(s)", "served by 1 thread(s)", "server types example done"],
    "socketpair.py": ["over a socketpair: add(2, 3) = 5 via PYRO:calculator@<<connected-socket>>:0",
                      "then Pyro on the same TCP connection: add(40, 2) = 42", "socketpair example done"],
    "timeouts.py": ["a 1 s call: TimeoutError (receiving: timeout)",
                    "the next call reconnects and works: slept 0.0 s",
                    "timeouts example done"],
    "unix_sockets.py": ["socket file: it is tea time", "socket file removed after the daemon closed: True",
                        "unix sockets example done"],
    "user_sessions.py": ["alice's cart: tea, cake", "bob's cart: hammer",
                         "one connection, per-call user: order for ladder placed by bob",
                         "user sessions example done"],
    "flame.py": ["server without FLAME_ENABLED: Flame is disabled in the server configuration",
                 "a module we sent, run remotely: fib(30) = 832040", "remote console printed: 45",
                 "flame example done"],
    "http_gateway.py": ["GET  add?a=2&b=40 -> 200 42", "GET  divide by 0  -> 500 builtins.ZeroDivisionError",
                        "wrong gateway key -> 403", "http gateway example done"],
}


def _run(script: Path) -> tuple:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYRO_")}
    env["PYTHONPATH"] = str(ROOT)
    try:
        proc = subprocess.run([sys.executable, "-W", "error", str(script)], capture_output=True, text=True,
                              timeout=EXAMPLE_TIMEOUT, env=env, cwd=str(ROOT), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout or ""
        if isinstance(partial, bytes):
            partial = partial.decode("utf-8", "replace")
        return None, "timed out after %d s; output so far:\n%s" % (EXAMPLE_TIMEOUT, partial)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def results():
    """name -> (returncode, output) of every example, run a few at a time."""
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        return dict(zip((path.name for path in EXAMPLES), pool.map(_run, EXAMPLES)))


def test_the_examples_this_test_knows_are_there():
    assert set(EXPECTED) <= {path.name for path in EXAMPLES}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("script", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_runs(script, results):
    returncode, output = results[script.name]
    assert returncode == 0, output
    assert output.strip(), "an example should say what it did"
    for text in EXPECTED.get(script.name, []):
        assert text in output, (text, output)
