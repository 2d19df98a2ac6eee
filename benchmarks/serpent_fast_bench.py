"""Micro-benchmark: serpent 1.43 against pyro4compat's serpent fast path, µs per operation.

    python benchmarks/serpent_fast_bench.py [--repeat N] [--quick]

For each payload it checks that both produce the same bytes and the same value, then prints
the best-of-N time of encode and decode for serpent and for the fast path, and the ratio.
Payloads: a small call tuple, a small result, 10 MB of ``bytes`` (and the dict it arrives as,
which an echo server sends back), and the ~1 MB nested structure of the echo figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import timeit
from pathlib import Path
from typing import Any, Callable, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import serpent  # noqa: E402

from pyro4compat._serializers.serpent_fast import dumps_call_fast, dumps_fast, loads_fast  # noqa: E402
from service import nested_payload  # noqa: E402


def serpent_dumps(value: Any) -> bytes:
    return serpent.dumps(value, module_in_classname=True)


def payloads(quick: bool) -> List[Tuple[str, Any]]:
    ten_mb = os.urandom(10 * 1000 * 1000 // (10 if quick else 1))
    return [
        ("small call", ("obj_1234", "add", (1, 2), {})),
        ("small result", 3),
        ("result dict", {"status": "ok", "count": 12, "items": [1.5, "two", None, True]}),
        ("10 MB bytes" if not quick else "1 MB bytes", ten_mb),
        ("  as received (dict)", serpent.loads(serpent_dumps(ten_mb))),
        ("~1 MB nested" if not quick else "~64 KB nested", nested_payload(1 << (16 if quick else 20))),
    ]


def best_us(func: Callable[[], Any], repeat: int) -> float:
    """Best time of one call, in µs, with enough calls per sample to be above timer noise."""
    timer = timeit.Timer(func)
    number, _ = timer.autorange()
    number = max(1, number // 4)
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def check(name: str, value: Any) -> bytes:
    expected = serpent_dumps(value)
    if dumps_fast(value) != expected:
        raise SystemExit("%s: dumps_fast differs from serpent.dumps" % name)
    if repr(loads_fast(expected)) != repr(serpent.loads(expected)):
        raise SystemExit("%s: loads_fast differs from serpent.loads" % name)
    return expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="samples per figure (best is kept)")
    parser.add_argument("--quick", action="store_true", help="smaller payloads, for a smoke test")
    args = parser.parse_args()
    print("%-22s %10s %12s %12s %8s" % ("payload", "op", "serpent us", "fast us", "speedup"))
    for name, value in payloads(args.quick):
        data = check(name, value)
        rows = (("encode", lambda: serpent_dumps(value), lambda: dumps_fast(value)),
                ("decode", lambda: serpent.loads(data), lambda: loads_fast(data)))
        for op, slow, fast in rows:
            slow_us, fast_us = best_us(slow, args.repeat), best_us(fast, args.repeat)
            print("%-22s %10s %12.1f %12.1f %7.1fx" % (name, op, slow_us, fast_us, slow_us / fast_us))
    call = ("obj_1234", "add", (1, 2), {})
    if dumps_call_fast(*call) != serpent_dumps(call):
        raise SystemExit("dumps_call_fast differs from serpent.dumps")
    slow_us = best_us(lambda: serpent_dumps(call), args.repeat)
    fast_us = best_us(lambda: dumps_call_fast(*call), args.repeat)
    print("%-22s %10s %12.1f %12.1f %7.1fx" % ("small call", "dumpsCall", slow_us, fast_us, slow_us / fast_us))


if __name__ == "__main__":
    main()
