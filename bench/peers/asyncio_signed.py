#!/usr/bin/env python3
"""Python peer of the tulipwire bench: asyncio (or uvloop) Protocols + msgpack + hmac over mTLS.

Run by bench/signed.ts with Debian's interpreter (`command -p python3`, packages python3-msgpack and
python3-uvloop). It speaks the line protocol of bench/support/workers.ts on stdout.

The signed message is the one of PERF-NOTES: body = msgpack([expires_at, nonce16, message]) followed by
HMAC-SHA256(key, packed) (32 bytes); a frame is a 4-byte big-endian length then the body. The sender takes nonces
from a pool filled by os.urandom, builds a batch of frames per loop iteration and writes it once (the fastest of
the Python variants measured in PERF-NOTES); the receiver deframes, checks the tag with hmac.compare_digest,
unpacks and checks the expiry of every message.

Roles: --role recv|send (one-way throughput over --conns connections), --role echo-server|ping (sequential signed
request/response round trips).
"""
import argparse
import asyncio
import hmac
import json
import os
import ssl
import struct
import sys
import time

import msgpack

KEY = bytes.fromhex("7477" * 16)  # the bench key shared with bench/support/peer-format.ts
TAG = 32
TTL = 30.0
GAME = {"t": "move", "id": 42, "x": 1.5, "y": -3.25, "seq": 123456, "ts": 1700000000000}
BATCH_BYTES = 256 * 1024
LEN = struct.Struct(">I")


def emit(ev):
    sys.stdout.write(json.dumps(ev) + "\n")
    sys.stdout.flush()


def cpu_us():
    t = os.times()
    return (t.user + t.system) * 1e6


class NoncePool:
    """16-byte nonces sliced from a 64 KiB os.urandom buffer (one syscall per 4096 nonces)."""

    def __init__(self):
        self.buf = b""
        self.off = 0

    def take(self):
        if self.off + 16 > len(self.buf):
            self.buf = os.urandom(65536)
            self.off = 0
        o = self.off
        self.off = o + 16
        return self.buf[o:o + 16]


def message(pad, seq):
    m = dict(GAME)
    m["seq"] = seq
    if pad:
        m["pad"] = b"\x07" * pad
    return m


def sign(packer, nonces, msg, exp):
    packed = packer.pack([exp, nonces.take(), msg])
    tag = hmac.digest(KEY, packed, "sha256")
    return LEN.pack(len(packed) + TAG) + packed + tag


def verify(mv, start, end, now):
    """Checks and decodes the body mv[start:end]; returns the message or raises ValueError."""
    tag_at = end - TAG
    if tag_at <= start:
        raise ValueError("short body")
    if not hmac.compare_digest(hmac.digest(KEY, mv[start:tag_at], "sha256"), mv[tag_at:end]):
        raise ValueError("bad signature")
    try:
        exp, _nonce, msg = msgpack.unpackb(mv[start:tag_at])
    except Exception as e:  # a body that is not [exp, nonce, msg]: malformed, as tulipwire's receiver says
        raise ValueError("malformed: %s" % e) from None
    if exp < now:
        raise ValueError("expired")
    return msg


class Deframer:
    """Splits a byte stream into frame bodies; calls on_body(memoryview, start, end) for each complete one."""

    def __init__(self):
        self.rest = b""

    def feed(self, data, on_body):
        if self.rest:
            data = self.rest + data
        mv = memoryview(data)
        n = len(data)
        i = 0
        count = 0
        while n - i >= 4:
            (size,) = LEN.unpack_from(data, i)
            if size > 16 * 1024 * 1024:
                raise ValueError("frame too large")
            end = i + 4 + size
            if end > n:
                break
            on_body(mv, i + 4, end)
            count += 1
            i = end
        self.rest = bytes(mv[i:]) if i < n else b""
        return count, i


def tls_of(transport):
    """The negotiated TLS version and cipher of a transport, e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384"."""
    so = transport.get_extra_info("ssl_object")
    if so is None:
        return ""
    return "%s %s" % (so.version(), so.cipher()[0])


def server_ctx(certs):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.path.join(certs, "server.pem"), os.path.join(certs, "server.key"))
    ctx.load_verify_locations(os.path.join(certs, "ca.pem"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_ctx(certs):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=os.path.join(certs, "ca.pem"))
    ctx.load_cert_chain(os.path.join(certs, "client.pem"), os.path.join(certs, "client.key"))
    return ctx


# ---------------------------------------------------------------- one-way throughput

class RecvState:
    def __init__(self, args, loop):
        self.args = args
        self.loop = loop
        self.msgs = 0
        self.bytes = 0
        self.started = False
        self.mark = None
        self.transports = []
        # Rejected messages over the whole run (not only the window), as the Node receivers report them: any
        # rejection marks the row as failed (bench/support/compare.ts).
        self.rejected = 0
        self.first_reject = ""
        self.tls = ""
        self.done = loop.create_future()

    def first(self):
        self.started = True
        self.loop.call_later(self.args.warmup, self.snap0)

    def snap0(self):
        self.mark = (time.perf_counter(), self.msgs, self.bytes, cpu_us())
        self.loop.call_later(self.args.duration, self.finish)

    def finish(self):
        t0, m0, b0, c0 = self.mark
        emit({"event": "result", "msgs": self.msgs - m0, "bytes": self.bytes - b0,
              "seconds": time.perf_counter() - t0, "cpuUs": cpu_us() - c0,
              "rejected": self.rejected, "firstReject": self.first_reject, "tls": self.tls})
        for t in self.transports:
            t.abort()
        if not self.done.done():
            self.done.set_result(None)


class Receiver(asyncio.Protocol):
    def __init__(self, state):
        self.state = state
        self.deframer = Deframer()

    def connection_made(self, transport):
        self.state.transports.append(transport)
        self.state.tls = tls_of(transport)

    def data_received(self, data):
        st = self.state
        if not st.started:
            st.first()
        now = time.time()
        bad = 0

        # Only messages that verified and decoded are counted; a bad one is rejected on its own (the connection
        # keeps serving, as tulipwire's MessageProtocol does) and counted in st.rejected.
        def on_body(mv, start, end):
            nonlocal bad
            try:
                verify(mv, start, end, now)
            except ValueError as e:
                bad += 1
                if st.rejected + bad == 1:
                    st.first_reject = str(e)

        count, consumed = self.deframer.feed(data, on_body)
        st.msgs += count - bad
        st.rejected += bad
        st.bytes += consumed


class Sender(asyncio.Protocol):
    def __init__(self, state):
        self.state = state
        self.paused = False
        self.transport = None
        self.packer = msgpack.Packer()
        self.nonces = NoncePool()
        self.seq = 0

    def connection_made(self, transport):
        self.transport = transport
        self.state.ready()

    def start(self):
        self.state.loop.call_soon(self.pump)

    def pump(self):
        t = self.transport
        if self.paused or t is None or t.is_closing():
            return
        st = self.state
        exp = time.time() + TTL
        frames = []
        for _ in range(st.per_batch):
            self.seq += 1
            frames.append(sign(self.packer, self.nonces, message(st.pad, self.seq), exp))
        t.write(b"".join(frames))
        st.sent += st.per_batch
        st.loop.call_soon(self.pump)

    def pause_writing(self):
        self.paused = True

    def resume_writing(self):
        self.paused = False
        self.state.loop.call_soon(self.pump)

    def connection_lost(self, exc):
        self.transport = None
        self.state.lost()


class SendState:
    def __init__(self, args, loop):
        self.loop = loop
        self.pad = args.pad
        frame_len = len(sign(msgpack.Packer(), NoncePool(), message(args.pad, 1), 0.0))
        self.per_batch = max(1, min(256, BATCH_BYTES // frame_len))
        self.sent = 0
        self.open = 0
        self.done = loop.create_future()

    def ready(self):
        self.open += 1

    def lost(self):
        self.open -= 1
        if self.open <= 0 and not self.done.done():
            self.done.set_result(None)


async def run_recv(args):
    loop = asyncio.get_running_loop()
    st = RecvState(args, loop)
    server = await loop.create_server(lambda: Receiver(st), "127.0.0.1", 0, ssl=server_ctx(args.certs), backlog=1024)
    emit({"event": "listening", "port": server.sockets[0].getsockname()[1]})
    await st.done
    server.close()


async def run_send(args):
    loop = asyncio.get_running_loop()
    st = SendState(args, loop)
    ctx = client_ctx(args.certs)
    protos = []
    for _ in range(args.conns):
        _t, p = await loop.create_connection(lambda: Sender(st), "127.0.0.1", args.port, ssl=ctx,
                                             server_hostname="localhost")
        protos.append(p)
    c0 = cpu_us()
    for p in protos:
        p.start()
    await st.done
    emit({"event": "result", "sent": st.sent, "cpuUs": cpu_us() - c0})


# ---------------------------------------------------------------- round trips

class EchoServer(asyncio.Protocol):
    def __init__(self, pad):
        self.deframer = Deframer()
        self.packer = msgpack.Packer()
        self.nonces = NoncePool()
        self.pad = pad

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        now = time.time()
        out = []

        def on_body(mv, start, end):
            msg = verify(mv, start, end, now)
            out.append(sign(self.packer, self.nonces, msg, now + TTL))

        self.deframer.feed(data, on_body)
        if out:
            self.transport.write(b"".join(out))


class PingClient(asyncio.Protocol):
    def __init__(self, loop):
        self.loop = loop
        self.deframer = Deframer()
        self.waiter = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        now = time.time()

        def on_body(mv, start, end):
            verify(mv, start, end, now)
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)

        self.deframer.feed(data, on_body)


async def run_echo_server(args):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: EchoServer(args.pad), "127.0.0.1", 0, ssl=server_ctx(args.certs))
    emit({"event": "listening", "port": server.sockets[0].getsockname()[1]})
    await asyncio.Event().wait()


async def run_ping(args):
    loop = asyncio.get_running_loop()
    _t, p = await loop.create_connection(lambda: PingClient(loop), "127.0.0.1", args.port, ssl=client_ctx(args.certs),
                                         server_hostname="localhost")
    packer = msgpack.Packer()
    nonces = NoncePool()
    samples = []
    deadline = None
    i = 0
    while len(samples) < args.count:
        i += 1
        t0 = time.perf_counter()
        p.waiter = loop.create_future()
        p.transport.write(sign(packer, nonces, message(args.pad, i), time.time() + TTL))
        await p.waiter
        dt = (time.perf_counter() - t0) * 1e6
        if i > args.warmup:
            if deadline is None:
                deadline = time.perf_counter() + args.duration
            samples.append(dt)
            if time.perf_counter() > deadline:
                break
    samples.sort()
    n = len(samples)

    def pct(q):
        k = min(n - 1, max(0, -(-q * n // 100) - 1))
        return round(samples[int(k)], 1)

    emit({"event": "result", "n": n, "p50": pct(50), "p99": pct(99), "max": round(samples[-1], 1)})
    p.transport.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    ap.add_argument("--role", required=True, choices=["recv", "send", "echo-server", "ping"])
    ap.add_argument("--certs", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--pad", type=int, default=0)
    ap.add_argument("--warmup", type=float, default=0.3)
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--count", type=int, default=10000)
    args = ap.parse_args()
    if args.loop == "uvloop":
        import uvloop
        uvloop.install()
    role = {"recv": run_recv, "send": run_send, "echo-server": run_echo_server, "ping": run_ping}[args.role]
    asyncio.run(with_parent_watch(role(args)))


async def with_parent_watch(coro):
    """Runs coro, exiting the process if the parent that started it goes away (no orphaned servers)."""
    parent = os.getppid()
    loop = asyncio.get_running_loop()

    def check():
        if os.getppid() != parent:
            os._exit(3)
        loop.call_later(0.5, check)

    loop.call_later(0.5, check)
    return await coro


if __name__ == "__main__":
    main()
