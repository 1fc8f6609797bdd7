"""What an operator sees when a setting is wrong or the database is not there.

Every error is one line they can act on, and no error ever shows a password.
"""

from __future__ import annotations

import base64
import gc
import secrets
import stat
import time
import traceback
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from casenet.bootstrap import StoreUnavailable, build_casenet
from casenet.settings import Settings, SettingsError, load_settings, token_entropy_bits

PASSWORD = "s3cret"
#: Nothing listens on port 1: the connection is refused at once.
UNREACHABLE_URL = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/casenet"
#: How long an operator may wait to be told the database is not there.
UNREACHABLE_BOUND_SECONDS = 10.0

MASTER_KEY = bytes(range(1, 33))
SIGNING_KEY = bytes(range(101, 133))
VALID_MASTER_KEYS = "k1:" + base64.b64encode(MASTER_KEY).decode()
VALID_SIGNING_KEY = base64.b64encode(SIGNING_KEY).decode()
VALID_OPERATOR_TOKEN = secrets.token_urlsafe(32)


def every_message(error: BaseException) -> str:
    """The error's text and everything chained to it, as a traceback would show it."""
    parts = ["".join(traceback.format_exception_only(error)), repr(error)]
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        parts += [str(link), repr(link), repr(getattr(link, "args", ()))]
        link = link.__cause__ or link.__context__
    return "\n".join(parts)


def assert_one_safe_line(error: BaseException) -> str:
    message = str(error)
    assert message.strip()
    assert "\n" not in message
    assert PASSWORD not in every_message(error)
    return message


def store_unavailable(settings: Settings) -> str:
    """The one safe line ``build_casenet`` fails with.

    The half-opened store (its connection pool) is finalised here, in this thread,
    rather than by a later garbage collection inside some other test.
    """
    try:
        build_casenet(settings).close()
    except StoreUnavailable as error:
        message = assert_one_safe_line(error)
    else:
        pytest.fail("the store opened")
    gc.collect()
    return message


# --- the database URL --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        pytest.param(f"mysql://root:{PASSWORD}@db/casenet", "must start with", id="scheme"),
        pytest.param("casenet.sqlite3", "must start with", id="no-scheme"),
        pytest.param("sqlite:///", "file path", id="sqlite-without-path"),
        pytest.param(f"postgresql://:{PASSWORD}@db:5432/casenet", "user, host", id="no-user"),
        pytest.param(f"postgresql://app:{PASSWORD}@:5432/casenet", "user, host", id="no-host"),
        pytest.param(f"postgresql://app:{PASSWORD}@db:5432/", "user, host", id="no-database"),
        pytest.param(f"postgresql://app:{PASSWORD}@db:port/casenet", "port", id="port"),
        pytest.param(f"postgresql://app:{PASSWORD}@db:99999/casenet", "port", id="port-range"),
    ],
)
def test_a_malformed_database_url_is_one_line_without_the_password(
    url: str, says: str, tmp_path: Path
) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"CASENET_DATABASE_URL": url, "CASENET_DATA_DIR": str(tmp_path)})

    message = assert_one_safe_line(refused.value)
    assert "CASENET_DATABASE_URL" in message
    assert says in message


def test_an_unreachable_database_is_one_line_without_the_password_and_fails_fast(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        {"CASENET_DATABASE_URL": UNREACHABLE_URL, "CASENET_DATA_DIR": str(tmp_path)}
    )

    started = time.monotonic()
    message = store_unavailable(settings)
    elapsed = time.monotonic() - started

    assert "postgresql://postgres@127.0.0.1:1/casenet" in message
    print(f"[measure] unreachable database reported after {elapsed:.2f} s")
    assert elapsed < UNREACHABLE_BOUND_SECONDS


def test_the_settings_repr_never_shows_the_database_password(tmp_path: Path) -> None:
    settings = load_settings(
        {"CASENET_DATABASE_URL": UNREACHABLE_URL, "CASENET_DATA_DIR": str(tmp_path)}
    )

    assert settings.database.password == PASSWORD
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in repr(settings.database)


@pytest.mark.postgres
def test_a_missing_database_on_a_live_server_is_store_unavailable(
    postgres_url: str, tmp_path: Path
) -> None:
    # Same server and role as the tests use, a database that does not exist, a password.
    parts = urlsplit(postgres_url)
    url = (
        f"postgresql://{parts.username}:{PASSWORD}@{parts.hostname}:{parts.port or 5432}"
        "/casenet_test_does_not_exist"
    )
    settings = load_settings({"CASENET_DATABASE_URL": url, "CASENET_DATA_DIR": str(tmp_path)})

    message = store_unavailable(settings)

    assert "casenet_test_does_not_exist" in message


def test_a_sqlite_file_that_cannot_be_opened_is_store_unavailable(tmp_path: Path) -> None:
    directory = tmp_path / "a-directory.sqlite3"
    directory.mkdir()
    settings = load_settings(
        {"CASENET_DATABASE_URL": f"sqlite:///{directory}", "CASENET_DATA_DIR": str(tmp_path)}
    )

    message = store_unavailable(settings)

    assert str(directory) in message


def test_a_sqlite_folder_that_cannot_be_made_is_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database's folder should be")
    settings = load_settings(
        {
            "CASENET_DATABASE_URL": f"sqlite:///{blocker / 'casenet.sqlite3'}",
            "CASENET_DATA_DIR": str(tmp_path / "data"),
        }
    )

    assert store_unavailable(settings)


# --- production refuses to start without real secrets ----------------------------------


PRODUCTION_SECRETS = {
    "CASENET_MASTER_KEYS": VALID_MASTER_KEYS,
    "CASENET_SIGNING_KEY": VALID_SIGNING_KEY,
    "CASENET_OPERATOR_TOKEN": VALID_OPERATOR_TOKEN,
}


@pytest.mark.parametrize("missing", sorted(PRODUCTION_SECRETS))
def test_production_without_a_secret_refuses_to_start_and_names_it(
    missing: str, tmp_path: Path
) -> None:
    environ = {
        "CASENET_ENV": "production",
        "CASENET_DATABASE_URL": f"postgresql://casenet_app:{PASSWORD}@db:5432/casenet",
        "CASENET_DATA_DIR": str(tmp_path / "data"),
        **{name: value for name, value in PRODUCTION_SECRETS.items() if name != missing},
    }

    with pytest.raises(SettingsError) as refused:
        load_settings(environ)

    message = assert_one_safe_line(refused.value)
    assert missing in message
    assert "production" in message
    assert not (tmp_path / "data").exists(), "production must not write dev secrets"


def test_production_with_every_secret_starts_from_the_environment_alone(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "CASENET_ENV": "production",
            "CASENET_DATABASE_URL": f"sqlite:///{tmp_path / 'casenet.sqlite3'}",
            "CASENET_DATA_DIR": str(tmp_path / "data"),
            **PRODUCTION_SECRETS,
        }
    )

    assert settings.is_production
    assert settings.generated == frozenset()
    assert settings.master_keys == (("k1", MASTER_KEY),)
    assert settings.signing_key == SIGNING_KEY
    assert settings.operator_token == VALID_OPERATOR_TOKEN
    assert not (tmp_path / "data").exists()


def production_environ(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Everything production needs, good, with ``overrides`` on top."""
    return {
        "CASENET_ENV": "production",
        "CASENET_DATABASE_URL": f"postgresql://casenet_app:{PASSWORD}@db:5432/casenet",
        "CASENET_DATA_DIR": str(tmp_path / "data"),
        **PRODUCTION_SECRETS,
        **overrides,
    }


def refusal(environ: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as refused:
        load_settings(environ)
    return assert_one_safe_line(refused.value)


def test_production_refuses_a_short_operator_token(tmp_path: Path) -> None:
    message = refusal(production_environ(tmp_path, CASENET_OPERATOR_TOKEN="short"))
    assert "CASENET_OPERATOR_TOKEN" in message


def test_production_refuses_to_start_without_an_explicit_database_url(tmp_path: Path) -> None:
    environ = production_environ(tmp_path)
    del environ["CASENET_DATABASE_URL"]

    message = refusal(environ)

    assert message == "CASENET_DATABASE_URL is required when CASENET_ENV=production"
    assert not (tmp_path / "data").exists()
    assert "CASENET_DATABASE_URL" in refusal({**environ, "CASENET_DATABASE_URL": "  "})


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("a" * 32, id="one-letter"),
        pytest.param(" " * 32, id="spaces"),
        pytest.param("t" * 400, id="long-but-one-letter"),
        pytest.param("ab" * 40, id="two-letters"),
        pytest.param("0123456789" * 3, id="digits"),
        pytest.param(secrets.token_hex(8), id="64-bit-hex"),
    ],
)
def test_production_refuses_an_operator_token_under_128_bits_and_does_not_show_it(
    token: str, tmp_path: Path
) -> None:
    message = refusal(production_environ(tmp_path, CASENET_OPERATOR_TOKEN=token))

    assert message.startswith("CASENET_OPERATOR_TOKEN is too weak for production")
    assert "128 needed" in message
    assert token.strip() == "" or token not in message


def test_production_accepts_every_token_urlsafe_32(tmp_path: Path) -> None:
    for _ in range(2000):
        token = secrets.token_urlsafe(32)
        assert token_entropy_bits(token) > 160, token
    settings = load_settings(production_environ(tmp_path, CASENET_OPERATOR_TOKEN=token))
    assert settings.operator_token == token


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(bytes(32), id="all-zero"),
        pytest.param(b"\xff" * 32, id="all-ff"),
        pytest.param(b"\x01" * 32, id="all-one"),
        pytest.param(b"deadbeef" * 4, id="repeated-pattern"),
    ],
)
@pytest.mark.parametrize("setting", ["CASENET_MASTER_KEYS", "CASENET_SIGNING_KEY"])
def test_production_refuses_a_master_or_signing_key_no_random_source_makes(
    setting: str, key: bytes, tmp_path: Path
) -> None:
    encoded = base64.b64encode(key).decode()
    value = f"{VALID_MASTER_KEYS},old:{encoded}" if setting == "CASENET_MASTER_KEYS" else encoded

    message = refusal(production_environ(tmp_path, **{setting: value}))

    assert message.startswith(f"{setting}: ")
    assert "is not random" in message
    assert encoded not in message
    # Development takes it: a dev store holds no client's data.
    development = production_environ(tmp_path, CASENET_ENV="development", **{setting: value})
    assert load_settings(development).env == "development"


def test_throttling_settings_default_and_parse(tmp_path: Path) -> None:
    defaults = load_settings({"CASENET_DATA_DIR": str(tmp_path)})
    assert defaults.auth_failures_per_minute == 20
    assert defaults.trusted_proxies == ()

    settings = load_settings(
        {
            "CASENET_DATA_DIR": str(tmp_path),
            "CASENET_AUTH_FAILURES_PER_MINUTE": "5",
            "CASENET_TRUSTED_PROXIES": " 10.0.0.1, 192.168.0.0/16 ,::1,",
        }
    )
    assert settings.auth_failures_per_minute == 5
    assert [str(n) for n in settings.trusted_proxies] == [
        "10.0.0.1/32", "192.168.0.0/16", "::1/128",
    ]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("CASENET_AUTH_FAILURES_PER_MINUTE", "many"),
        ("CASENET_AUTH_FAILURES_PER_MINUTE", "-1"),
        ("CASENET_TRUSTED_PROXIES", "10.0.0.1,proxy.example"),
        ("CASENET_TRUSTED_PROXIES", "10.0.0.0/33"),
    ],
)
def test_a_malformed_throttling_setting_is_one_line_naming_it(
    setting: str, value: str, tmp_path: Path
) -> None:
    message = refusal({"CASENET_DATA_DIR": str(tmp_path), setting: value})
    assert message.startswith(setting)


# --- read replicas --------------------------------------------------------------------

PRIMARY = "postgresql://casenet@db.example:5432/casenet"


def test_replica_settings_default_and_parse(tmp_path: Path) -> None:
    defaults = load_settings({"CASENET_DATA_DIR": str(tmp_path)})
    assert defaults.replicas == ()
    assert defaults.replica_wait_ms == 50

    settings = load_settings(
        {
            "CASENET_DATA_DIR": str(tmp_path),
            "CASENET_DATABASE_URL": PRIMARY,
            "CASENET_REPLICA_URLS": " postgresql://ro:s3cret@standby-1:5433/casenet,"
            "postgres://ro@standby-2/casenet, ",
            "CASENET_REPLICA_WAIT_MS": "120",
        }
    )
    assert [r.display for r in settings.replicas] == [
        "postgresql://ro@standby-1:5433/casenet",
        "postgresql://ro@standby-2:5432/casenet",
    ]
    assert settings.replicas[0].password == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.replica_wait_ms == 120


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("CASENET_REPLICA_URLS", "sqlite:///replica.sqlite3"),
        ("CASENET_REPLICA_URLS", "mysql://ro@standby/casenet"),
        ("CASENET_REPLICA_URLS", "postgresql://ro@standby:port/casenet"),
        ("CASENET_REPLICA_URLS", "postgresql://standby/casenet"),
        ("CASENET_REPLICA_WAIT_MS", "soon"),
        ("CASENET_REPLICA_WAIT_MS", "-5"),
        ("CASENET_REPLICA_WAIT_MS", "10001"),
    ],
)
def test_a_malformed_replica_setting_is_one_line_naming_it(
    setting: str, value: str, tmp_path: Path
) -> None:
    environ = {"CASENET_DATA_DIR": str(tmp_path), "CASENET_DATABASE_URL": PRIMARY}
    message = refusal({**environ, setting: value})
    assert message.startswith(setting)
    assert "\n" not in message


def test_replicas_of_a_sqlite_store_are_refused(tmp_path: Path) -> None:
    message = refusal(
        {
            "CASENET_DATA_DIR": str(tmp_path),
            "CASENET_REPLICA_URLS": "postgresql://ro:s3cret@standby:5433/casenet",
        }
    )
    assert message == "CASENET_REPLICA_URLS needs a PostgreSQL CASENET_DATABASE_URL"


# --- development makes its secrets once -------------------------------------------------


DEV_SECRET_FILES = {
    "CASENET_MASTER_KEYS": "master_keys",
    "CASENET_SIGNING_KEY": "signing_key",
    "CASENET_OPERATOR_TOKEN": "operator_token",
}


def test_development_generates_private_secrets_once_and_reuses_them(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    environ = {"CASENET_DATA_DIR": str(data_dir)}  # nothing else: a dev start

    first = load_settings(environ)
    files = {setting: data_dir / name for setting, name in DEV_SECRET_FILES.items()}
    contents = {setting: path.read_text() for setting, path in files.items()}
    second = load_settings(environ)

    assert first.env == "development"
    assert first.generated == frozenset(DEV_SECRET_FILES)
    for setting, path in files.items():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, setting
        assert path.read_text() == contents[setting], f"{setting} was rewritten"
    assert [len(key) for _, key in first.master_keys] == [32]
    assert len(first.signing_key) == 32
    assert len(first.operator_token) >= 32
    assert (second.master_keys, second.signing_key, second.operator_token) == (
        first.master_keys, first.signing_key, first.operator_token,
    )
    assert first.database.url == f"sqlite:///{data_dir / 'casenet.sqlite3'}"
    # Secrets never show in the settings' repr (what a log line or a traceback prints).
    shown = repr(first)
    assert first.operator_token not in shown
    assert base64.b64encode(first.signing_key).decode() not in shown


def test_development_takes_a_secret_from_the_environment_over_the_file(tmp_path: Path) -> None:
    environ = {"CASENET_DATA_DIR": str(tmp_path), "CASENET_MASTER_KEYS": VALID_MASTER_KEYS}

    settings = load_settings(environ)

    assert settings.master_keys == (("k1", MASTER_KEY),)
    assert "CASENET_MASTER_KEYS" not in settings.generated
    assert not (tmp_path / "master_keys").exists()
