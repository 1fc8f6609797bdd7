"""Sending a webhook request, and the rule on where one may go (the SSRF guard).

In production a target must be ``https`` and every address its host resolves to must
be public: not loopback, private, link-local, unique-local, multicast, unspecified,
reserved, shared (100.64/10) or a cloud metadata address, IPv4 embedded in IPv6
(``::ffff:a.b.c.d``, NAT64, 6to4) judged as the IPv4 address it carries; a host listed
in ``CASENET_WEBHOOK_ALLOW_HOSTS`` is exempt from the address rule. The rule is checked
at registration and again at each delivery, against the address the request then
connects to: the host is resolved once, checked, and that address is connected to,
with the original name as ``Host`` and TLS server name, so a DNS answer that changes in
between (rebinding) cannot reach an address the check did not see. Redirects are never
followed (a 3xx is a failed attempt).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud metadata services (AWS, GCP, Azure: 169.254.169.254; AWS over IPv6).
METADATA = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
#: The most of a receiver's answer that is read (and dropped): only its status counts.
MAX_ANSWER = 64 * 1024

Resolver = Callable[[str, int], list[str]]


class TargetRefused(Exception):
    """The URL may not be a webhook's target here; the message is one safe line."""


def system_resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system's resolver)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4), else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def forbidden(address: IPAddress) -> bool:
    """Whether a webhook must not connect to ``address`` in production."""
    address = embedded_ipv4(address)
    return (
        address in METADATA
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
        or (isinstance(address, ipaddress.IPv4Address) and address in _SHARED)
        or not address.is_global
    )


@dataclass(frozen=True)
class Target:
    """Where one request goes: the URL's parts and the one address checked for it."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class TargetRule:
    """Where webhooks may point (see the module). Development allows http and any
    address (the tests' receivers listen on 127.0.0.1)."""

    production: bool = False
    allow_hosts: frozenset[str] = frozenset()
    resolve: Resolver = field(default=system_resolve, compare=False)

    def check(self, url: str) -> None:
        """At registration: production resolves and checks now (:class:`TargetRefused`);
        development resolves nothing (a name that does not resolve fails at delivery)."""
        if self.production:
            self.target(url)

    def target(self, url: str) -> Target:
        """Resolve the URL's host once and check the rule; :class:`TargetRefused`."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if self.production and parts.scheme != "https":
            raise TargetRefused("must be https in production")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = self.resolve(host, port)
        except (OSError, UnicodeError):
            raise TargetRefused("its host does not resolve") from None
        if not addresses:
            raise TargetRefused("its host does not resolve")
        if self.production and host not in self.allow_hosts:
            for text in addresses:
                if forbidden(ipaddress.ip_address(text.split("%", 1)[0])):
                    raise TargetRefused(
                        "its host resolves to a non-public address (loopback, private, "
                        "link-local or metadata); list it in CASENET_WEBHOOK_ALLOW_HOSTS "
                        "to allow it"
                    )
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        return Target(parts.scheme, host, port, path, addresses[0])


@dataclass(frozen=True)
class Answer:
    """What a receiver answered: a status code, or one safe line of error."""

    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the checked address, whatever the host now resolves to."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """As :class:`_PinnedHTTP`, with TLS to the original host name (SNI, certificate)."""

    def __init__(self, target: Target, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(target.host, target.port, timeout=timeout, context=self._tls)
        self._address = target.address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def post(target: Target, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
    """POST ``body`` to ``target``; no redirect is followed, the answer's body is
    read (at most :data:`MAX_ANSWER`) and dropped."""
    kind = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    connection = kind(target, timeout)
    try:
        connection.request("POST", target.path, body=body, headers=dict(headers))
        response = connection.getresponse()
        response.read(MAX_ANSWER)
        return Answer(response.status, None)
    except TimeoutError:
        return Answer(None, "timed out")
    except ssl.SSLError as error:
        return Answer(None, f"TLS failed ({type(error).__name__})")
    except ConnectionRefusedError:
        return Answer(None, "connection refused")
    except (OSError, http.client.HTTPException) as error:
        return Answer(None, f"connection failed ({type(error).__name__})")
    finally:
        connection.close()
