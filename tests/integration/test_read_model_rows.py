"""Each read model's row structure lists its table's columns, in the table's order.

Models insert a row as its structure's values, by position (``base.values``: COPY on
PostgreSQL, ``INSERT ... VALUES`` on SQLite), so a field out of order would put a value
in another column without any error from the store.
"""

from __future__ import annotations

import msgspec
import pytest

from casenet.application import Casenet
from casenet.infrastructure.projections import (
    appeals,
    audit,
    cases,
    consents,
    directory,
    disclosures,
    emergency_grants,
    feed,
    feed_parties,
    network_metrics,
    partnerships,
    referrals,
    webhooks,
)
from casenet.infrastructure.projections.base import Row

ROWS: dict[str, type[Row]] = {
    "rm_agencies": directory.AgencyRow,
    "rm_workers": directory.WorkerRow,
    "rm_services": directory.ServiceRow,
    "rm_clients": cases.ClientRow,
    "rm_cases": cases.CaseRow,
    "rm_consents": consents.ConsentRow,
    "rm_emergency_grants": consents.EmergencyGrantRow,
    "rm_referrals": referrals.ReferralRow,
    "rm_referral_history": referrals.StatusRow,
    "rm_disclosures": disclosures.DisclosureRow,
    "rm_emergency_disclosures": disclosures.EmergencyDisclosureRow,
    "rm_feed": feed.FeedRow,
    "rm_feed_parties": feed.PartiesRow,
    "rm_audit_records": audit.RecordRow,
    "rm_audit_subjects": audit.SubjectRow,
    "rm_referral_times": network_metrics.ReferralTimesRow,
    "rm_webhooks": webhooks.WebhookRow,
    "rm_feed_client_parties": feed_parties.ClientPartyRow,
    "rm_emergency_review_notices": emergency_grants.ReviewNoticeRow,
    "rm_partnerships": partnerships.PartnershipRow,
    "rm_appeals": appeals.AppealRow,
    "rm_appeal_reach": appeals.ReachRow,
    "rm_appeal_responses": appeals.AnswerRow,
}


def test_every_table_a_model_inserts_into_has_a_row_structure(casenet: Casenet) -> None:
    tables = {t for m in casenet.app.projections.models.values() for t in m.tables}
    # rm_audit_pages is written by one upsert that names its columns.
    assert tables - {"rm_audit_pages"} == set(ROWS)


@pytest.mark.parametrize("table", sorted(ROWS))
def test_a_row_structure_lists_its_tables_columns_in_order(casenet: Casenet, table: str) -> None:
    with casenet.app.database.cursor(commit=False) as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE 1 = 0")
        columns = tuple(column[0] for column in cursor.description)
    assert tuple(f.name for f in msgspec.structs.fields(ROWS[table])) == columns
