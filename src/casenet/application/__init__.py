"""Application services: what the API and the CLI call, and nothing else does."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from casenet.application.actor import OPERATOR_ACTOR, Actor
from casenet.application.agencies import AgencyService, DirectoryQueries
from casenet.application.appeals import AppealService
from casenet.application.audit import AuditService
from casenet.application.case_queries import CaseQueries
from casenet.application.cases import CaseService, ClientDetails
from casenet.application.clients import ClientService
from casenet.application.consents import ConsentService
from casenet.application.directory import ServiceDirectory
from casenet.application.directory_exchange import DirectoryExchange
from casenet.application.emergency_grants import EmergencyGrantService
from casenet.application.feed_queries import FeedQueries
from casenet.application.fhir_exchange import FhirExchange
from casenet.application.network_metrics import NetworkMetrics
from casenet.application.operations import KeyService, ProjectionService
from casenet.application.partnerships import PartnershipService
from casenet.application.referral_queries import ReferralQueries
from casenet.application.referrals import ReferralService
from casenet.application.store import CasenetApplication, SchemaStatus
from casenet.application.subject_access import SubjectAccessService
from casenet.application.webhook_delivery import DeliveryOptions, WebhookDelivery
from casenet.application.webhooks import WebhookService
from casenet.infrastructure.persistence.replicas import ReplicaStats, routed_reads
from casenet.infrastructure.webhook_http import TargetRule

__all__ = [
    "OPERATOR_ACTOR",
    "Actor",
    "Casenet",
    "CasenetApplication",
    "ClientDetails",
    "SchemaStatus",
]


class Casenet:
    """Every application service over one store; built by ``casenet.bootstrap``."""

    def __init__(
        self,
        app: CasenetApplication,
        *,
        signing_seed: bytes,
        webhook_rule: TargetRule | None = None,
    ) -> None:
        self.app = app
        self.audit = AuditService(app, signing_seed)
        self.agencies = AgencyService(app)
        self.directory = DirectoryQueries(app)
        #: The network's services: search, HSDS, and the operator's import and export.
        self.services = ServiceDirectory(app)
        self.directory_exchange = DirectoryExchange(self.agencies, self.directory, self.services)
        self.clients = ClientService(app)
        #: The client's copy of their data (GDPR Art. 15).
        self.subject_access = SubjectAccessService(app)
        self.case_queries = CaseQueries(app)
        self.referral_queries = ReferralQueries(app, self.case_queries)
        self.feed = FeedQueries(app)
        self.cases = CaseService(app, self.case_queries)
        self.consents = ConsentService(app, self.cases)
        self.emergency_grants = EmergencyGrantService(app, self.cases, self.consents)
        self.referrals = ReferralService(app, self.cases, self.consents, self.referral_queries)
        self.network = NetworkMetrics(app, self.directory)
        #: The FHIR API's reads and Task moves, over the services above (issue 20).
        self.fhir = FhirExchange(app, self.case_queries, self.referral_queries, self.referrals)
        #: The operator's: read models and keys (the CLI).
        self.projections = ProjectionService(app)
        self.keys = KeyService(app)
        #: Retried creates (Idempotency-Key) answer with their first response.
        self.idempotency = app.idempotency
        #: Webhooks; ``webhooks.rule`` says where they may point (production: public
        #: https only, see ``infrastructure.webhook_http``).
        self.webhooks = WebhookService(app, webhook_rule or TargetRule())
        #: The network (rule 7: no client data): partnerships and appeals.
        self.partnerships = PartnershipService(app)
        self.appeals = AppealService(app, self.partnerships)

    def webhook_worker(
        self,
        options: DeliveryOptions | None = None,
        *,
        observe: Callable[[str], None] = lambda outcome: None,
    ) -> WebhookDelivery:
        """A delivery worker over this store (a server's thread, or the CLI's)."""
        options = options or DeliveryOptions()
        return WebhookDelivery(self.app, self.webhooks.rule, options, observe=observe)

    @property
    def schema(self) -> SchemaStatus:
        """What opening the store did to the tables: created, upgraded, or nothing."""
        return self.app.schema

    def observe_commits(self, observer: Callable[[int], None]) -> Callable[[], None]:
        """Tell ``observer`` how many saves each group commit of this process wrote (the
        API's ``/metrics``); returns the call that stops telling it."""
        return self.app.store.observe_batches(observer)

    def replica_reads(self) -> AbstractContextManager[None]:
        """Within: a request that only reads (GET, HEAD); its reads may be served by a
        read replica, still seeing every write that answered before it started. No I/O
        (it sets a context variable): the API opens it on the event loop."""
        return routed_reads()

    def replica_stats(self) -> ReplicaStats | None:
        """What the read replicas served in this process, and why reads fell back to the
        primary (``/metrics``); None without replicas."""
        return self.app.database.replica_stats()

    def close(self) -> None:
        self.app.close()
