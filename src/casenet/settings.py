"""Every ``CASENET_*`` setting, read once from the environment, documented here.
Long because every setting lives in this one module with its documentation (house rule).

- ``CASENET_DATABASE_URL``: ``sqlite:///path/file.sqlite3`` or
  ``postgresql://user[:pass]@host:port/db``; default ``sqlite:///./var/casenet.sqlite3``.
- ``CASENET_REPLICA_URLS``: comma-separated ``postgresql://`` URLs of hot standbys of
  that database. Reads a replica can serve go to one, still read-your-writes (a read
  waits until the replica has replayed the primary's WAL position taken at its start);
  writes always go to the primary. Needs a PostgreSQL ``CASENET_DATABASE_URL``. Default
  none (every read on the primary).
- ``CASENET_REPLICA_WAIT_MS``: how long a read waits for a replica to catch up before
  it goes to the primary, 0 to 10000; default ``50``.
- ``CASENET_HANDLER_THREADS``: threads of a ``casenet serve`` process that run the
  request handlers (every one that touches the store runs in one, off the event loop),
  1 to 64. Default ``3`` on SQLite, whose reads and writes are the process's own CPU
  under the GIL, where more threads mostly contend for it (a few let the group
  commit batch concurrent writes); ``16`` on PostgreSQL, where a
  thread waits on its round trips and more of them overlap (below the pool's 20
  connections). BENCHMARKS.md, "Owner read", has the measurements.
- ``CASENET_DATA_DIR``: where dev keys and local files live; default ``./var``.
- ``CASENET_MASTER_KEYS``: comma-separated ``key_id:base64(32 bytes)``, newest last.
  Development: generated once into the data dir (mode 0600). Production: required.
- ``CASENET_SIGNING_KEY``: base64 Ed25519 private key (32-byte seed) for audit bundles.
  Development: generated into the data dir.
- ``CASENET_OPERATOR_TOKEN``: the operator's bearer token. Development: generated into
  the data dir and printed at start.
- ``CASENET_ENV``: ``development`` (default) or ``production``.
- ``CASENET_AUTH_FAILURES_PER_MINUTE``: failed authentications (a request whose
  ``Authorization`` header names no active worker nor the operator) one client address
  may make in any 60 seconds; past it, every request from that address that sends an
  ``Authorization`` header, a correct token too, answers 429 with ``Retry-After`` until
  the oldest failure is a minute old. Counted in each server process (with ``--workers
  N``, an address gets at most N times this many guesses a minute). ``0`` turns it off.
  Default ``20``.
- ``CASENET_TRUSTED_PROXIES``: comma-separated addresses or CIDR networks of the
  reverse proxies in front of casenet. Only a request from one of them has its client
  address taken from ``X-Forwarded-For`` (the right-most address not itself a trusted
  proxy); from anyone else that header is ignored. Default none.
- ``CASENET_LOG_LEVEL``: ``debug``, ``info`` (default), ``warning`` or ``error``; the
  access log (one line per request) is written at ``info``.
- ``CASENET_LOG_FORMAT``: ``text`` (default) or ``json`` (one JSON object per line, see
  :mod:`casenet.api.observability`).
- ``CASENET_WEBHOOK_ALLOW_HOSTS``: comma-separated host names webhooks may target in
  production even if they resolve to a loopback, private, link-local or metadata
  address (an agency's receiver inside the operator's network). Compared with the URL's
  host, case-insensitively, exactly (no wildcards). Default none. Production also
  wants ``https``; development allows ``http`` and any address.
- ``CASENET_WEBHOOK_WORKER``: ``on`` (default) or ``off``: whether ``casenet serve``
  runs a webhook delivery thread. ``off`` when deliveries run as their own process
  (``casenet webhooks deliver``); any number of workers may run at once.
- ``CASENET_PROJECTIONS_IN_SERVER``: ``true`` (default), or ``false``: no server process keeps
  read models current (``casenet projections run`` processes do); reads catch up either way.

Production refuses to start unless the keys and the operator token come from the
environment, and refuses weak ones: a dev key on disk next to the database protects
nothing, and neither does a guessable one. It also needs an explicit
``CASENET_DATABASE_URL`` (the default SQLite file under the working directory is for
trying casenet out, not for clients' data).

The operator token's strength is estimated as its length times the smaller of two
per-character figures: the Shannon entropy of its characters (how evenly it uses the
characters it has: ``"a" * 64`` has 0 bits) and log2 of the size of the character
classes it draws from (lower case 26, upper case 26, digits 10, ASCII punctuation 33,
anything else 128). Production wants at least 128 bits:
``secrets.token_urlsafe(32)`` (43 characters, 180 to 230 bits by this estimate) passes,
and so does ``casenet keys generate``'s; 32 hex digits (128 random bits, estimated
at about 118) do not: the estimate needs some margin, give 64. A master or signing key
is refused when it has fewer than 16 distinct byte values (all-zero, all-equal, a short
pattern repeated): 32 random bytes have fewer with a probability under 2^-50.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import os
import re
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEVELOPMENT = "development"
PRODUCTION = "production"

_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_MIN_OPERATOR_TOKEN_BITS = 128
_MIN_DISTINCT_KEY_BYTES = 16
_DEFAULT_AUTH_FAILURES_PER_MINUTE = 20
_DEFAULT_REPLICA_WAIT_MS = 50
#: ``CASENET_HANDLER_THREADS`` by store when unset (see the module's documentation).
DEFAULT_HANDLER_THREADS = {"sqlite": 3, "postgresql": 16}
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
_IN_SERVER = "CASENET_PROJECTIONS_IN_SERVER"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line an operator can act on."""


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the event store lives: one SQLite file, or a PostgreSQL database."""

    url: str = field(repr=False)  # may hold the password: shown as ``display``
    kind: str  # "sqlite" or "postgresql"
    path: Path | None = None
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = field(default="", repr=False)
    dbname: str = ""

    def __repr__(self) -> str:
        return f"DatabaseSettings({self.display!r})"

    @property
    def display(self) -> str:
        """The URL without its password, safe to print and log."""
        if self.kind == "sqlite":
            return self.url
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"


@dataclass(frozen=True)
class Settings:
    """The settings of one casenet process; build with :func:`load_settings`."""

    database: DatabaseSettings
    data_dir: Path
    master_keys: tuple[tuple[str, bytes], ...] = field(repr=False)
    signing_key: bytes = field(repr=False)
    operator_token: str = field(repr=False)
    env: str = DEVELOPMENT
    #: Failed authentications a client address may make a minute (0: no limit).
    auth_failures_per_minute: int = _DEFAULT_AUTH_FAILURES_PER_MINUTE
    #: Proxies whose ``X-Forwarded-For`` is believed.
    trusted_proxies: tuple[IPNetwork, ...] = ()
    #: How much the process logs (one of :data:`LOG_LEVELS`).
    log_level: str = "info"
    #: How each log line is written (one of :data:`LOG_FORMATS`).
    log_format: str = "text"
    projections_in_server: bool = True  # CASENET_PROJECTIONS_IN_SERVER
    #: Hosts webhooks may target in production whatever they resolve to.
    webhook_allow_hosts: frozenset[str] = frozenset()
    #: Whether the server runs a webhook delivery thread.
    webhook_worker: bool = True
    #: Hot standbys of ``database`` that serve reads (``CASENET_REPLICA_URLS``).
    replicas: tuple[DatabaseSettings, ...] = ()
    #: Milliseconds a read waits for a replica to catch up before using the primary.
    replica_wait_ms: int = _DEFAULT_REPLICA_WAIT_MS
    #: Threads running a server process's handlers (``CASENET_HANDLER_THREADS``).
    handler_threads: int = DEFAULT_HANDLER_THREADS["sqlite"]
    #: Which of the secrets were generated into the data dir (development only).
    generated: frozenset[str] = frozenset()

    @property
    def is_production(self) -> bool:
        return self.env == PRODUCTION


def parse_database_url(url: str, setting: str = "CASENET_DATABASE_URL") -> DatabaseSettings:
    """Parse ``CASENET_DATABASE_URL``; raise :class:`SettingsError` naming the problem."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path:
            raise SettingsError(f"{setting}: sqlite URL needs a file path")
        return DatabaseSettings(url=url, kind="sqlite", path=Path(path))
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise SettingsError(
            f"{setting} must start with sqlite:/// or postgresql:// "
            f"(got scheme {parts.scheme or 'none'!r})"
        )
    try:
        port = parts.port or 5432
    except ValueError:
        raise SettingsError(f"{setting}: the port is not a number") from None
    dbname = parts.path.lstrip("/")
    if not parts.hostname or not parts.username or not dbname:
        raise SettingsError(
            f"{setting} must name user, host and database: postgresql://user[:pass]@host:port/db"
        )
    return DatabaseSettings(
        url=url,
        kind="postgresql",
        host=parts.hostname,
        port=port,
        user=unquote(parts.username),
        password=unquote(parts.password or ""),
        dbname=unquote(dbname),
    )


def parse_replica_urls(value: str, primary: DatabaseSettings) -> tuple[DatabaseSettings, ...]:
    """Parse ``CASENET_REPLICA_URLS``: PostgreSQL URLs, for a PostgreSQL primary only."""
    setting = "CASENET_REPLICA_URLS"
    replicas = [parse_database_url(u.strip(), setting) for u in value.split(",") if u.strip()]
    if any(replica.kind != "postgresql" for replica in replicas):
        raise SettingsError(f"{setting}: a replica is a PostgreSQL hot standby (postgresql://)")
    if replicas and primary.kind != "postgresql":
        raise SettingsError(f"{setting} needs a PostgreSQL CASENET_DATABASE_URL")
    return tuple(replicas)


def _replica_wait_ms(value: str | None) -> int:
    if value is None or not value.strip():
        return _DEFAULT_REPLICA_WAIT_MS
    wait = int(value.strip()) if value.strip().isdigit() else -1
    if not 0 <= wait <= 10_000:
        raise SettingsError("CASENET_REPLICA_WAIT_MS must be a whole number from 0 to 10000")
    return wait


def _handler_threads(value: str | None, database: DatabaseSettings) -> int:
    if value is None or not value.strip():
        return DEFAULT_HANDLER_THREADS[database.kind]
    threads = int(value.strip()) if value.strip().isdigit() else 0
    if not 1 <= threads <= 64:
        raise SettingsError("CASENET_HANDLER_THREADS must be a whole number from 1 to 64")
    return threads


def parse_master_keys(value: str) -> tuple[tuple[str, bytes], ...]:
    """Parse ``key_id:base64(32 bytes),...`` (newest last)."""
    keys: list[tuple[str, bytes]] = []
    for item in value.split(","):
        key_id, sep, encoded = item.strip().partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise SettingsError("CASENET_MASTER_KEYS: each entry must be key_id:base64")
        key = _decode_key(encoded, "CASENET_MASTER_KEYS", key_id)
        if key_id in (k for k, _ in keys):
            raise SettingsError(f"CASENET_MASTER_KEYS: key id {key_id!r} appears twice")
        keys.append((key_id, key))
    if not keys:
        raise SettingsError("CASENET_MASTER_KEYS: no key given")
    return tuple(keys)


def _decode_key(encoded: str, setting: str, key_id: str = "") -> bytes:
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError(f"{setting}: key {key_id!r} is not valid base64") from None
    if len(key) != 32:
        raise SettingsError(f"{setting}: key {key_id!r} must be 32 bytes, got {len(key)}")
    return key


def token_entropy_bits(token: str) -> float:
    """A simple estimate of a token's entropy, in bits (see the module's docstring)."""
    if not token:
        return 0.0
    counts = Counter(token)
    shannon = -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())
    alphabet = 0
    for in_class, size in (
        (str.islower, 26),
        (str.isupper, 26),
        (str.isdigit, 10),
        (lambda c: c.isascii() and not c.isalnum(), 33),
    ):
        if any(in_class(c) and c.isascii() for c in counts):
            alphabet += size
    if any(not c.isascii() for c in counts):
        alphabet += 128
    return len(token) * min(shannon, math.log2(alphabet))


def _check_random_key(key: bytes, setting: str, key_id: str = "") -> None:
    """Refuse a key no random source would make (production only)."""
    distinct = len(set(key))
    if distinct < _MIN_DISTINCT_KEY_BYTES:
        which = f"key {key_id!r}" if key_id else "the key"
        raise SettingsError(
            f"{setting}: {which} is not random ({distinct} distinct byte values), "
            "production refuses it; make new secrets with `casenet keys generate`"
        )


def parse_trusted_proxies(value: str) -> tuple[IPNetwork, ...]:
    """Parse ``CASENET_TRUSTED_PROXIES``: comma-separated addresses or CIDR networks."""
    networks: list[IPNetwork] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SettingsError(
                f"CASENET_TRUSTED_PROXIES: {item[:64]!r} is not an address or CIDR network"
            ) from None
    return tuple(networks)


def _auth_failures_per_minute(value: str | None) -> int:
    if value is None or not value.strip():
        return _DEFAULT_AUTH_FAILURES_PER_MINUTE
    try:
        limit = int(value.strip())
    except ValueError:
        limit = -1
    if not 0 <= limit <= 1_000_000:
        raise SettingsError(
            "CASENET_AUTH_FAILURES_PER_MINUTE must be a whole number from 0 (no limit) to 1000000"
        )
    return limit


_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$|^[0-9a-f:.]{2,45}$")


def parse_allow_hosts(value: str) -> frozenset[str]:
    """Parse ``CASENET_WEBHOOK_ALLOW_HOSTS``: comma-separated host names (or addresses)."""
    hosts: set[str] = set()
    for item in (part.strip().lower() for part in value.split(",")):
        if not item:
            continue
        if not _HOST.match(item):
            raise SettingsError(f"CASENET_WEBHOOK_ALLOW_HOSTS: {item[:64]!r} is not a host name")
        hosts.add(item)
    return frozenset(hosts)


def _one_of(
    environ: Mapping[str, str], setting: str, allowed: tuple[str, ...], default: str
) -> str:
    """The setting's value, lower-cased, if it is one of ``allowed`` (``default`` if unset)."""
    value = environ.get(setting, "").strip().lower() or default
    if value not in allowed:
        raise SettingsError(f"{setting} must be one of {', '.join(allowed)}")
    return value


def _check_production_secrets(settings: Settings) -> None:
    """Production refuses secrets that protect nothing: guessable or hand-made."""
    bits = token_entropy_bits(settings.operator_token)
    if bits < _MIN_OPERATOR_TOKEN_BITS:
        raise SettingsError(
            f"CASENET_OPERATOR_TOKEN is too weak for production (about {bits:.0f} bits, "
            f"{_MIN_OPERATOR_TOKEN_BITS} needed); make one with `casenet keys generate`"
        )
    for key_id, key in settings.master_keys:
        _check_random_key(key, "CASENET_MASTER_KEYS", key_id)
    _check_random_key(settings.signing_key, "CASENET_SIGNING_KEY")


def _dev_secret(data_dir: Path, name: str, make: str) -> str:
    """Read a dev secret from the data dir, creating it (mode 0600) the first time."""
    path = data_dir / name
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(make + "\n")
    return path.read_text().strip()


def _b64_random(n: int) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every setting once. In development, missing secrets are made in the data dir."""
    environ = os.environ if environ is None else environ
    env = environ.get("CASENET_ENV", DEVELOPMENT)
    if env not in (DEVELOPMENT, PRODUCTION):
        raise SettingsError("CASENET_ENV must be development or production")
    data_dir = Path(environ.get("CASENET_DATA_DIR", "./var"))
    if env == PRODUCTION and not environ.get("CASENET_DATABASE_URL", "").strip():
        raise SettingsError("CASENET_DATABASE_URL is required when CASENET_ENV=production")
    database = parse_database_url(
        environ.get("CASENET_DATABASE_URL", f"sqlite:///{data_dir / 'casenet.sqlite3'}")
    )
    generated: set[str] = set()

    def secret(setting: str, filename: str, make: str) -> str:
        value = environ.get(setting, "")
        if value:
            return value
        if env == PRODUCTION:
            raise SettingsError(f"{setting} is required when CASENET_ENV=production")
        generated.add(setting)
        return _dev_secret(data_dir, filename, make)

    master_keys = parse_master_keys(
        secret("CASENET_MASTER_KEYS", "master_keys", f"dev1:{_b64_random(32)}")
    )
    signing_key = _decode_key(
        secret("CASENET_SIGNING_KEY", "signing_key", _b64_random(32)), "CASENET_SIGNING_KEY"
    )
    operator_token = secret("CASENET_OPERATOR_TOKEN", "operator_token", secrets.token_urlsafe(32))
    settings = Settings(
        database=database,
        data_dir=data_dir,
        master_keys=master_keys,
        signing_key=signing_key,
        operator_token=operator_token,
        env=env,
        auth_failures_per_minute=_auth_failures_per_minute(
            environ.get("CASENET_AUTH_FAILURES_PER_MINUTE")
        ),
        trusted_proxies=parse_trusted_proxies(environ.get("CASENET_TRUSTED_PROXIES", "")),
        log_level=_one_of(environ, "CASENET_LOG_LEVEL", LOG_LEVELS, "info"),
        log_format=_one_of(environ, "CASENET_LOG_FORMAT", LOG_FORMATS, "text"),
        projections_in_server=_one_of(environ, _IN_SERVER, ("true", "false"), "true") == "true",
        webhook_allow_hosts=parse_allow_hosts(environ.get("CASENET_WEBHOOK_ALLOW_HOSTS", "")),
        webhook_worker=_one_of(environ, "CASENET_WEBHOOK_WORKER", ("on", "off"), "on") == "on",
        replicas=parse_replica_urls(environ.get("CASENET_REPLICA_URLS", ""), database),
        replica_wait_ms=_replica_wait_ms(environ.get("CASENET_REPLICA_WAIT_MS")),
        handler_threads=_handler_threads(environ.get("CASENET_HANDLER_THREADS"), database),
        generated=frozenset(generated),
    )
    if settings.is_production:
        _check_production_secrets(settings)
    return settings
