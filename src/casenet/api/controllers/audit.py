"""The consent audit export over HTTP: the same signed bundle as the CLI, as a tar."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter
from litestar.response import Stream

from casenet.api.docs import problems
from casenet.api.http import CallerActor, Services, query_instant

_CHUNK = 64 * 1024


class AuditController(Controller):
    """Provable answers for auditors, data-protection officers and clients."""

    path = "/v1/audit"
    tags = ["audit"]

    @get(
        "/export",
        operation_id="export_audit",
        summary="The consent audit bundle (tar of JSON Lines + signed manifest)",
        sync_to_thread=True,
        media_type="application/x-tar",
        response_headers=[
            ResponseHeader(
                name="Content-Disposition",
                description="attachment; filename=...",
                documentation_only=True,
            )
        ],
        responses={
            200: ResponseSpec(
                data_container=bytes,
                generate_examples=False,
                media_type="application/x-tar",
                description="A tar archive of the bundle; verify with `casenet audit verify`.",
            ),
            **problems(400, 401, 403, 404, 422),
        },
    )
    def export(
        self,
        actor: CallerActor,
        casenet: Services,
        case_id: Annotated[UUID | None, QueryParameter(name="case_id", required=False)] = None,
        client_id: Annotated[UUID | None, QueryParameter(name="client_id", required=False)] = None,
        since: Annotated[datetime | None, QueryParameter(name="from", required=False)] = None,
        until: Annotated[datetime | None, QueryParameter(name="to", required=False)] = None,
    ) -> Stream:
        """Auditors of the owning agency (their agency's cases), or the operator; exactly
        one of ``case_id`` and ``client_id``."""
        since, until = query_instant(since, "from"), query_instant(until, "to")
        scope = casenet.audit.scope_for(actor, case_id=case_id, client_id=client_id)
        scratch = Path(tempfile.mkdtemp(prefix="casenet-audit-"))
        try:
            casenet.audit.export(scratch / "bundle", scope, since=since, until=until)
            archive = scratch / "bundle.tar"
            with tarfile.open(archive, "w") as tar:
                tar.add(scratch / "bundle", arcname="casenet-audit")
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        name = f"casenet-audit-{scope.kind}-{scope.id or 'all'}.tar"
        return Stream(
            _stream_then_delete(archive, scratch),
            media_type="application/x-tar",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )


def _stream_then_delete(archive: Path, scratch: Path) -> Iterator[bytes]:
    try:
        with archive.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
