"""Where a webhook may point (the SSRF rule), its secret, its URL, and the backoff."""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

import pytest
import standardwebhooks

from casenet.application.webhook_delivery import Backoff
from casenet.application.webhooks import check_types, new_secret
from casenet.domain.errors import InvalidInput
from casenet.domain.webhook import check_url
from casenet.infrastructure.webhook_http import TargetRefused, TargetRule, forbidden
from casenet.settings import SettingsError, load_settings

FORBIDDEN = [
    "127.0.0.1",
    "127.255.0.9",
    "0.0.0.0",  # noqa: S104
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "169.254.0.1",
    "100.64.0.1",  # shared address space (carrier NAT)
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "fd00:ec2::254",  # AWS metadata over IPv6
    "ff02::1",
    "fec0::1",  # site-local
    "2001:db8::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
]
PUBLIC = [
    "93.184.216.34",
    "1.1.1.1",
    "8.8.8.8",
    "2606:4700:4700::1111",
    "2a00:1450:4001:82b::200e",
    "::ffff:93.184.216.34",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_non_public_addresses_are_forbidden(address: str) -> None:
    assert forbidden(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not forbidden(ipaddress.ip_address(address))


def resolving_to(*addresses: str) -> TargetRule:
    return TargetRule(production=True, resolve=lambda host, port: list(addresses))


def test_production_wants_https() -> None:
    with pytest.raises(TargetRefused, match="https"):
        resolving_to("93.184.216.34").target("http://hooks.example.org/x")
    target = resolving_to("93.184.216.34").target("https://hooks.example.org/x?a=1")
    assert (target.host, target.port, target.path, target.address) == (
        "hooks.example.org",
        443,
        "/x?a=1",
        "93.184.216.34",
    )


def test_one_private_answer_among_public_ones_is_refused() -> None:
    with pytest.raises(TargetRefused, match="non-public"):
        resolving_to("93.184.216.34", "10.0.0.5").target("https://hooks.example.org/")


def test_an_allowed_host_may_resolve_to_a_private_address() -> None:
    rule = TargetRule(
        production=True,
        allow_hosts=frozenset({"intake.internal"}),
        resolve=lambda host, port: ["10.0.0.5"],
    )
    assert rule.target("https://INTAKE.internal:8443/hook").address == "10.0.0.5"
    with pytest.raises(TargetRefused):
        rule.target("https://other.internal/hook")


def test_a_host_that_does_not_resolve_is_refused() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(TargetRefused, match="does not resolve"):
        TargetRule(resolve=fail).target("http://nowhere.invalid/")
    # Registering resolves only in production; development finds out at delivery.
    TargetRule(resolve=fail).check("http://nowhere.invalid/")
    with pytest.raises(TargetRefused, match="does not resolve"):
        TargetRule(production=True, resolve=fail).check("https://nowhere.invalid/")


def test_development_allows_http_to_loopback() -> None:
    assert TargetRule().target("http://127.0.0.1:8080/hook").address == "127.0.0.1"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/x",
        "example.org/x",
        "https://user:pw@example.org/x",
        "https://example.org:99999/x",
        "https://example.org/x#frag",
        "https:///x",
        "https://exa mple.org/x",
        "",
    ],
)
def test_urls_that_are_not_plain_http_targets_are_invalid(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_url(url)
    assert refused.value.field == "url"


def test_types_outside_the_feed_vocabulary_are_listed_in_the_error() -> None:
    assert check_types(["consent_granted"]) == ("consent_granted",)
    with pytest.raises(InvalidInput) as refused:
        check_types(["consent_granted", "banana"])
    assert "referral_requested" in refused.value.message


def test_the_secret_is_a_standard_webhooks_secret() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert secret != new_secret()
    assert len(standardwebhooks.Webhook(secret)._whsecret) == 32


def test_the_backoff_grows_from_seconds_to_hours_with_jitter() -> None:
    backoff, rng = Backoff(), random.Random(7)
    delays = [backoff.delay(n, rng) for n in range(1, 30)]
    assert 2.5 <= delays[0] <= 5
    assert all(backoff.cap / 2 <= d <= backoff.cap for d in delays[20:])  # capped
    ceilings = [min(backoff.cap, backoff.base * 2 ** (n - 1)) for n in range(1, 30)]
    assert all(c / 2 <= d <= c for c, d in zip(ceilings, delays, strict=True))
    assert len({round(d, 6) for d in delays[20:]}) > 1  # jittered, not all equal
    # Given up only after a day: the attempts before it span at least 24 hours.
    spent, attempts = 0.0, 0
    while spent < backoff.give_up_after:
        attempts += 1
        spent += backoff.delay(attempts, rng)
    assert 12 <= attempts <= 30, attempts


def test_the_webhook_settings_are_read_and_checked(tmp_path: Path) -> None:
    environ = {"CASENET_DATA_DIR": str(tmp_path)}
    defaults = load_settings(environ)
    assert defaults.webhook_allow_hosts == frozenset()
    assert defaults.webhook_worker is True
    settings = load_settings(
        {
            **environ,
            "CASENET_WEBHOOK_ALLOW_HOSTS": " Intake.Internal, 10.0.0.5 ,",
            "CASENET_WEBHOOK_WORKER": "off",
        }
    )
    assert settings.webhook_allow_hosts == {"intake.internal", "10.0.0.5"}
    assert settings.webhook_worker is False
    for name, value in (
        ("CASENET_WEBHOOK_ALLOW_HOSTS", "https://x.org/"),
        ("CASENET_WEBHOOK_WORKER", "maybe"),
    ):
        with pytest.raises(SettingsError, match=name):
            load_settings({**environ, name: value})
