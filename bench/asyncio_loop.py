"""bench/asyncio_loop.py: Python asyncio running the cases of bench/loop.ts, for same-run ratios.

Run with Debian's interpreter (``command -p python3``), the default asyncio event loop (not uvloop):

    python3 bench/asyncio_loop.py --json [--trials 5] [--scale 1.0]

Prints one JSON line: {"python": "3.11.2", "cases": {"call_soon": ops_per_cpu_s, ...}, "wall": {...}} with the
median of the trials. Rates are per CPU second of this process (``time.process_time``), as bench/loop.ts measures
its own side; ``wall`` has the wall-clock rates.
Each case does exactly what its tulipwire twin does:

- call_soon:   a chain of call_soon callbacks, each scheduling the next (callbacks/s);
- future:      in a task: f = loop.create_future(); loop.call_soon(f.set_result, 1); await f  (ops/s);
- task:        in a task: await loop.create_task(coro())  where coro returns at once (ops/s);
- sleep0:      in a task: await asyncio.sleep(0)  (round trips/s).
"""
import argparse
import asyncio
import json
import statistics
import sys
import time


def timed(run, n):
    """Runs ``run(n)``; returns (ops per CPU second, ops per wall second)."""
    c0, t0 = time.process_time(), time.perf_counter()
    run(n)
    return n / (time.process_time() - c0), n / (time.perf_counter() - t0)


def bench_call_soon(n):
    loop = asyncio.new_event_loop()
    count = 0

    def cb():
        nonlocal count
        count += 1
        if count < n:
            loop.call_soon(cb)
        else:
            loop.stop()

    loop.call_soon(cb)
    loop.run_forever()
    loop.close()


def run_in_task(body, n):
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(loop.create_task(body(loop, n)))
    finally:
        loop.close()


async def future_body(loop, n):
    for _ in range(n):
        f = loop.create_future()
        loop.call_soon(f.set_result, 1)
        await f


async def _ret(i):
    return i


async def task_body(loop, n):
    for i in range(n):
        await loop.create_task(_ret(i))


async def sleep0_body(loop, n):
    for _ in range(n):
        await asyncio.sleep(0)


CASES = {
    'call_soon': (lambda n: bench_call_soon(n), 300_000),
    'future': (lambda n: run_in_task(future_body, n), 100_000),
    'task': (lambda n: run_in_task(task_body, n), 60_000),
    'sleep0': (lambda n: run_in_task(sleep0_body, n), 100_000),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--json', action='store_true')
    ap.add_argument('--trials', type=int, default=5)
    ap.add_argument('--scale', type=float, default=1.0)
    ap.add_argument('--only', default=None)
    args = ap.parse_args()
    out = {}
    wall = {}
    for name, (fn, n) in CASES.items():
        if args.only and args.only not in name:
            continue
        n = max(1000, int(n * args.scale))
        fn(n // 10)  # warm-up
        runs = [timed(fn, n) for _ in range(args.trials)]
        out[name] = statistics.median(r[0] for r in runs)
        wall[name] = statistics.median(r[1] for r in runs)
    report = {'python': sys.version.split()[0], 'executable': sys.executable, 'cases': out, 'wall': wall}
    if args.json:
        print(json.dumps(report))
    else:
        for k, v in out.items():
            print(f'{k:10s} {v / 1e6:8.3f} M/s')


if __name__ == '__main__':
    main()
