"""WAL positions as persistence/replicas.py compares them: the primary's insert position
against a standby's replay position."""

from __future__ import annotations

from casenet.infrastructure.persistence.replicas import wal_position


def test_a_position_is_its_two_hex_halves() -> None:
    assert wal_position("0/0") == 0
    assert wal_position("16/B374D848") == (0x16 << 32) | 0xB374D848


def test_the_insert_position_just_past_a_page_header_is_the_page_boundary() -> None:
    """A standby that replayed the record ending at a page's boundary reports the
    boundary; the primary's insert position is then past the next page's short header
    (24 bytes). Both are the same WAL: without this a caught-up standby looks behind."""
    assert wal_position("0/2002018") == 0x2002000
    assert wal_position("0/2002019") == 0x2002019
    assert wal_position("0/2002030") == 0x2002030
