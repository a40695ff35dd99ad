"""The program of examples/loop-internals/main.ts in Python asyncio, traced at each ``_run_once``.

    python3 examples/loop-internals/asyncio_walk.py

Wraps ``BaseEventLoop._run_once`` (private, for teaching only) to print one line per iteration in the format of
the TypeScript example: the select() timeout asyncio computed, how many timers fell due, how many callbacks were
ready (``ntodo``) and their names. Time is the loop's (real) clock relative to the start.
"""
import asyncio
import heapq
from asyncio import base_events, events


_started = set()


def name_of(handle):
    cb = handle._callback
    owner = getattr(cb, '__self__', None)
    if isinstance(owner, asyncio.tasks._PyTask):
        # The pure-Python Task (see main): its first __step is the start, later ones and __wakeup are steps.
        first = id(owner) not in _started
        _started.add(id(owner))
        return f'{owner.get_name()}.{"start" if first else "step"}'
    return getattr(cb, '__name__', repr(cb))


def install_tracer(loop, lines):
    orig_select = loop._selector.select
    state = {'timeout': None, 'it': 0, 't0': loop.time()}

    def select(timeout=None):
        state['timeout'] = timeout
        return orig_select(timeout)

    loop._selector.select = select
    orig_run_once = loop._run_once

    def run_once():
        # Which callbacks will this iteration run? Replay _run_once's own bookkeeping after the poll.
        state['it'] += 1
        before_ready = list(loop._ready)
        sched = sorted(h for h in loop._scheduled if not h._cancelled)
        orig_run_once()
        end = loop.time()
        due = [h for h in sched if h._when <= end and h not in loop._scheduled]
        ran = before_ready + due
        t = state['timeout']
        wait = 'idle' if t is None else f'wait={t:.3f}'.rstrip('0').rstrip('.') if t else 'wait=0'
        lines.append(f"#{state['it']:<3} {wait:<20} ready={len(ran)}{' timers=%d' % len(due) if due else ''}  "
                     + ', '.join(name_of(h) for h in ran))

    loop._run_once = run_once


async def program(loop, log):
    lock = asyncio.Lock()
    reply = loop.create_future()

    def plainC():
        log('plainC runs, one iteration after plainA')

    def plainA():
        log('plainA runs; schedules plainC with call_soon (next iteration)')
        loop.call_soon(plainC)

    def plainB():
        log('plainB runs')

    def timerHalf():
        log('timer at 0.5 fires')

    def resolveReply():
        log('timer at 1 resolves the reply Future')
        reply.set_result('pong')

    loop.call_soon(plainA)
    loop.call_soon(plainB)
    loop.call_later(0.5, timerHalf)
    loop.call_later(1, resolveReply)

    async def worker(name):
        async with lock:
            log(f'{name} holds the lock')
            await asyncio.sleep(0)
            log(f'{name} releases the lock')

    w1 = loop.create_task(worker('w1'), name='w1')
    w2 = loop.create_task(worker('w2'), name='w2')

    async def waiter_body():
        v = await reply
        log(f'waiter got {v}')
        return v

    waiter = loop.create_task(waiter_body(), name='waiter')

    async def sleeper_body():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            log('sleeper: cancelled, cleaning up')
            raise

    sleeper = loop.create_task(sleeper_body(), name='sleeper')

    def cancelSleeper():
        log('timer at 2 cancels the sleeper')
        sleeper.cancel()

    loop.call_later(2, cancelSleeper)
    await w1
    await w2
    v = await waiter
    try:
        await sleeper
    except asyncio.CancelledError:
        pass
    return v


def main():
    loop = asyncio.new_event_loop()
    # The pure-Python Task, so the tracer can see which task a step belongs to (the C one hides it).
    loop.set_task_factory(lambda loop, coro, **kw: asyncio.tasks._PyTask(coro, loop=loop, **kw))
    lines, events_ = [], []
    install_tracer(loop, lines)
    task = loop.create_task(program(loop, lambda s: events_.append(s)), name='main')
    result = loop.run_until_complete(task)
    loop.close()
    print('iter select() wait        ready  what ran, in order')
    for l in lines:
        print(l)
    print()
    print('what the program saw:')
    for e in events_:
        print('  ' + e)
    print('result', result)


if __name__ == '__main__':
    main()
