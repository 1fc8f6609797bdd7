"""A TCP proxy that delays every chunk by a fixed time each way: a database "on another host".

``python -m benchmarks.proxy --target 127.0.0.1:5432 --delay-ms 0.5`` listens on a free
port of 127.0.0.1, prints ``listening PORT`` and forwards every connection to the target,
holding each chunk of bytes ``--delay-ms`` before passing it on, in either direction (a
round trip gains twice the delay). Chunks keep their order and are not held behind each
other: a chunk read at t leaves at t + delay, whatever came before it.

Threads, not asyncio: an event loop rounds a sub-millisecond timer up to a whole
millisecond (epoll's timeout is in ms), so a 0.5 ms delay would become 1 ms. Each
direction of a connection has a reader thread (stamps each chunk with its release time)
and a writer thread (sleeps until then, sends). ``--delay-ms 0`` takes the same path, so
the proxy's own cost is the same in both runs and a ratio between them measures only the
delay. :func:`measure_round_trip` checks what a proxy really adds.
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable

CHUNK = 65536


def _nodelay(sock: socket.socket) -> None:
    # Nagle would hold small writes (a query, a row) until the previous one is acked.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def sleep_overshoot(samples: int = 50, asked: float = 0.0005) -> float:
    """How much longer than asked ``time.sleep`` takes here (median, seconds): the
    writer asks for that much less, so the delay is what was claimed."""
    late = []
    for _ in range(samples):
        started = time.perf_counter()
        time.sleep(asked)
        late.append(time.perf_counter() - started - asked)
    return max(0.0, statistics.median(late))


def _pump(source: socket.socket, sink: socket.socket, delay: float, overshoot: float) -> None:
    """Forward ``source`` to ``sink``, each chunk ``delay`` seconds after it was read."""
    held: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

    def read() -> None:
        try:
            while chunk := source.recv(CHUNK):
                held.put((time.monotonic() + delay, chunk))
        except OSError:
            pass
        held.put((time.monotonic() + delay, b""))

    def write() -> None:
        try:
            while True:
                release, chunk = held.get()
                wait = release - time.monotonic() - overshoot
                if wait > 0:
                    time.sleep(wait)
                if not chunk:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(chunk)
        except OSError:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    for target in (read, write):
        threading.Thread(target=target, daemon=True).start()


def serve(listener: socket.socket, target: tuple[str, int], delay: float) -> None:
    """Accept for ever; each connection is forwarded to ``target`` with ``delay`` each way."""
    overshoot = sleep_overshoot() if delay else 0.0
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection(target, timeout=10)
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        for sock in (client, upstream):
            _nodelay(sock)
        _pump(client, upstream, delay, overshoot)
        _pump(upstream, client, delay, overshoot)


def measure_round_trip(ping: Callable[[], object], samples: int = 300, warmup: int = 20) -> float:
    """The median wall time of ``ping()`` (one round trip), in milliseconds."""
    for _ in range(warmup):
        ping()
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        ping()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.proxy", description=__doc__)
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="added each way (ms)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: free)")
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    listener = socket.create_server(("127.0.0.1", args.port), backlog=256)
    print(f"listening {listener.getsockname()[1]}", flush=True)
    try:
        serve(listener, (host, int(port)), args.delay_ms / 1000)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
