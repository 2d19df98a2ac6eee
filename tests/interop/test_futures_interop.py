"""The same scripted Future/FutureResult scenarios, run by real Pyro4 and by us, must agree.

Each scenario records plain outcomes (return values, identities, error types and texts,
the order handlers ran in) into ``OUTPUT``; Pyro4 runs the script in a child process via
the ``pyro4`` fixture, we run it in-process with ``Pyro4.futures`` bound to our module.
"""

from __future__ import annotations

import textwrap
import types

import pytest

from pyro4compat import futures

pytestmark = pytest.mark.interop

SCENARIOS = textwrap.dedent('''
    import threading
    Future, FutureResult = Pyro4.futures.Future, Pyro4.futures.FutureResult
    Wrapper = Pyro4.futures._ExceptionWrapper
    OUTPUT = out = {}
    WAIT = 10

    def error_of(fn):
        try:
            fn()
        except Exception as exc:
            return (type(exc).__name__, str(exc))
        return ("no error",)

    def gated(fn, gate, started=None):
        def run(*args, **kwargs):
            if started is not None:
                started.set()
            gate.wait(WAIT)
            return fn(*args, **kwargs)
        return run

    def add(a, b=0):
        return a + b

    # attributes, then/iferror return values, a chain with extra arguments, state afterwards
    f = Future(add)
    out["init"] = (f.callable is add, list(f.chain), f.exceptionhandler, f.call_delay, f.cancelled, f.completed)
    out["then_is_self"] = (f.then(lambda v, m: v * m, 10) is f,
                           f.then(lambda v, suffix: str(v) + suffix, suffix="!") is f)
    out["iferror_is_self"] = f.iferror(print) is f
    result = f(1, b=2)
    out["result_type"] = type(result).__name__
    out["chain_value"] = result.value
    out["call_again"] = error_of(f)
    out["done_state"] = (f.completed, f.cancelled, f.call_delay, hasattr(f, "chain"),
                         f.delay(1), f.cancel(), f.completed, f.cancelled, f.call_delay)
    out["then_after_start"] = error_of(lambda: f.then(str))
    out["result_after"] = (result.ready, result.wait(), result.wait(0), result.callchain)

    # calling while the first call is still running
    gate, started = threading.Event(), threading.Event()
    f = Future(gated(lambda: "ran", gate, started))
    result = f()
    started.wait(WAIT)
    out["running"] = (error_of(f), f.delay(3), f.cancel(), f.completed, f.cancelled)
    gate.set()
    out["running_value"] = result.value

    # cancel before the call
    ran = []
    f = Future(lambda: ran.append(1))
    out["cancel_first"] = (f.cancel(), f.cancel(), f.delay(2), error_of(f), f.cancelled,
                           f.completed, f.call_delay, hasattr(f, "chain"), ran)

    # cancel while delayed
    handled = []
    f = Future(lambda: ran.append(2))
    out["delay_then_cancel"] = [f.delay(0.3)]
    result = f().iferror(lambda e: handled.append((type(e).__name__, str(e))))
    out["delay_then_cancel"] += [f.cancel(), result.wait(WAIT), error_of(lambda: result.value),
                                 handled, ran, f.completed, f.cancelled, f.cancel(), f.delay(1),
                                 error_of(f)]

    # delays that run out, including a float, an int and a negative one
    for seconds in (0.05, 1, -1):
        f = Future(add)
        accepted = f.delay(seconds)
        value = f(seconds, b=1).value
        out["delay %r" % seconds] = (accepted, value, f.call_delay, type(f.call_delay).__name__,
                                     f.completed)

    # exceptions: from the callable, from a chain step, from a result callback
    def boom(*args):
        raise ValueError("bad")

    for name, make in [("callable", lambda g: Future(gated(boom, g))),
                       ("chain", lambda g: Future(gated(lambda: 1, g)).then(boom)),
                       ("callback", lambda g: Future(gated(lambda: 1, g)))]:
        calls, gate = [], threading.Event()
        f = make(gate).iferror(lambda e: calls.append(("future", type(e).__name__, str(e))))
        result = f()
        if name == "callback":
            result.then(lambda v: v / 0)
        result.iferror(lambda e: calls.append(("result", type(e).__name__, str(e))))
        gate.set()
        out["error " + name] = (error_of(lambda: result.value), calls, f.completed, result.ready)

    # a Future's own chain runs before the callbacks added to its result
    gate, order = threading.Event(), []
    f = Future(gated(lambda: "v", gate)).then(lambda v: order.append("future") or v + "1")
    result = f()
    result.then(lambda v: order.append("result") or v + "2")
    gate.set()
    out["chain_order"] = (result.value, order)

    # FutureResult on its own
    r = FutureResult()
    out["fr_init"] = (r.ready, r.wait(0), r.wait(0.01), list(r.callchain), r.exceptionhandler,
                      type(r.valueLock).__name__)
    out["fr_then"] = (r.then(lambda v, a: v + a, 1) is r, r.then(lambda v, b=0: v * b, b=3) is r,
                      len(r.callchain))
    r.value = 4
    out["fr_value"] = (r.ready, r.wait(), r.value, r.callchain, r.get_value())
    out["fr_then_ready"] = (r.then(lambda v, d: v - d, 5) is r, r.value)
    r.set_value(1)
    r.value = 2
    out["fr_set_twice"] = r.value

    r, never = FutureResult(), []
    r.then(lambda v: Wrapper(KeyError("k"))).then(never.append)
    r.value = 1
    out["fr_wrapper_breaks_chain"] = (error_of(lambda: r.value), never, r.ready)

    r, handled = FutureResult(), []
    out["fr_iferror_is_self"] = r.iferror(lambda e: handled.append(str(e))) is r
    r.then(never.append)
    r.value = Wrapper(ValueError("x"))
    out["fr_error"] = (handled, never, error_of(lambda: r.value), r.callchain)
    r.then(lambda wrapper: type(wrapper).__name__)
    out["fr_then_on_error"] = r.value

    r = FutureResult()
    r.set_cancelled()
    out["fr_cancelled"] = (r.ready, error_of(lambda: r.value))

    wrapped = Wrapper(OSError("disk"))
    out["wrapper"] = (type(wrapped.exception).__name__, error_of(wrapped.raiseIt))
''')


def run_ours(code: str) -> dict:
    namespace = {"Pyro4": types.SimpleNamespace(futures=futures), "INPUT": None, "OUTPUT": None}
    exec(compile(code, "<futures scenarios>", "exec"), namespace)
    return namespace["OUTPUT"]


@pytest.mark.timeout(60)
def test_futures_scenarios_match_real_pyro4(pyro4) -> None:
    theirs = pyro4(SCENARIOS)
    ours = run_ours(SCENARIOS)
    assert len(theirs) >= 25  # the script really ran to its end over there
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        assert ours[key] == theirs[key], key
