"""Token guessing, throttled: failed authentications counted per client address.

An address that has failed to authenticate ``CASENET_AUTH_FAILURES_PER_MINUTE`` times
in the last 60 seconds gets 429 (with ``Retry-After``) for every request that sends an
``Authorization`` header, until its oldest failure is a minute old. A correct token
from that address is refused too: otherwise a guesser would learn from the 429 turning
into a 200 that a guess was right, and throttling is there to stop guessing. A request
without the header guesses nothing and is neither counted nor throttled.

The counts live in each server process (nothing is written per failed request, which
an attacker could otherwise turn into write load); with ``--workers N`` an address gets
at most N times the limit a minute. IPv6 clients are counted per /64, the block one
subscriber usually holds. At most :data:`MAX_ADDRESSES` addresses are tracked; past
that the longest-tracked is forgotten first. Addresses whose failures have aged out are
forgotten once a minute.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from litestar import Request

from casenet.settings import IPNetwork

logger = logging.getLogger("casenet.auth")

WINDOW_SECONDS = 60.0
MAX_ADDRESSES = 10_000
#: How many ``X-Forwarded-For`` hops are looked at, from the right.
MAX_FORWARDED_HOPS = 16


class TooManyFailedAuthentications(Exception):
    """This address failed to authenticate too often; it may try again later."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class AuthFailures:
    """Each client address's failed authentications of the last minute (this process)."""

    def __init__(
        self,
        limit: int,
        trusted_proxies: tuple[IPNetwork, ...] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.trusted_proxies = trusted_proxies
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._swept = clock()

    def client_address(self, request: Request[Any, Any, Any]) -> str:
        """Who is calling: the peer, or what a trusted proxy says it forwarded for."""
        connection = request.scope.get("client")
        peer = str(connection[0]) if connection else ""
        if not self.trusted_proxies or not self._trusted(peer):
            return peer or "unknown"
        hops = ",".join(request.headers.getall("x-forwarded-for", [])).split(",")
        client = peer
        # Right to left: each trusted hop vouches for the one before it; the first
        # address not a trusted proxy is the client (what is left of it, anyone wrote).
        for hop in reversed(hops[-MAX_FORWARDED_HOPS:]):
            if not self._trusted(client):
                break
            ip = _ip(hop.strip())
            if ip is None:
                break
            client = str(ip)
        return client

    def check(self, request: Request[Any, Any, Any]) -> None:
        """Raise :class:`TooManyFailedAuthentications` if the caller's address is
        throttled. Nothing is computed while no address has failed lately."""
        if self.limit <= 0 or not self._failures:
            return
        key = _key(self.client_address(request))
        with self._lock:
            self._sweep_if_due()
            failures = self._recent(key)
            if failures is None or len(failures) < self.limit:
                return
            wait = failures[0] + WINDOW_SECONDS - self.clock()
        raise TooManyFailedAuthentications(max(1, math.ceil(wait)))

    def failed(self, request: Request[Any, Any, Any], reason: str, *, count: bool = True) -> None:
        """Log a failed authentication (address, route, reason; never the token) and,
        with ``count``, count it against the caller's address."""
        address = self.client_address(request)
        route = request.scope.get("path_template") or "(unrouted)"
        logger.warning(
            "authentication failed from %s on %s %s: %s", address, request.method, route, reason
        )
        if not count or self.limit <= 0:
            return
        key = _key(address)
        with self._lock:
            failures = self._recent(key)
            if failures is None:
                if len(self._failures) >= MAX_ADDRESSES:
                    self._forget_one()
                failures = self._failures[key] = deque(maxlen=self.limit)
            failures.append(self.clock())
            throttled = len(failures) == self.limit
        if throttled:
            logger.warning(
                "throttling %s: %d failed authentications within %.0f s",
                key,
                self.limit,
                WINDOW_SECONDS,
            )

    def _recent(self, key: str) -> deque[float] | None:
        """``key``'s failures of the last window (older ones dropped); lock held."""
        failures = self._failures.get(key)
        if failures is None:
            return None
        horizon = self.clock() - WINDOW_SECONDS
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def _forget_one(self) -> None:
        """Make room: forget the address tracked longest (in O(1), so that many addresses
        failing at once cost no more each than one); lock held."""
        del self._failures[next(iter(self._failures))]

    def _sweep_if_due(self) -> None:
        """Once a window, forget every address whose failures have all aged out, so that
        :meth:`check` is back to doing nothing when nobody has failed lately; lock held."""
        now = self.clock()
        if now - self._swept < WINDOW_SECONDS:
            return
        self._swept = now
        for key in list(self._failures):
            self._recent(key)

    def _trusted(self, address: str) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in network for network in self.trusted_proxies)


@functools.lru_cache(maxsize=4096)  # parsing an address costs microseconds; a hit, 0.1
def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address (an IPv4 one mapped into IPv6 as itself), or None if it is none."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@functools.lru_cache(maxsize=4096)
def _key(address: str) -> str:
    """What is counted: the address, or its /64 for IPv6."""
    ip = _ip(address)
    if ip is None:
        return address[:64]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
