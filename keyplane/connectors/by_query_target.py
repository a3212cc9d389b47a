"""A connector system index as the target of ``_delete_by_query`` and ``_update_by_query``.

The run's rules are those of content indices (``indices.by_query``); the documents are the connectors
or sync jobs, read and written through ``ConnectorService``'s document operations, so deleting a
document removes the connector or the job for good, as ``_doc`` DELETE does.
"""

from __future__ import annotations

import sys

from keyplane.connectors import system_index
from keyplane.connectors.service import ConnectorService
from keyplane.connectors.system_index import Kind
from keyplane.errors import Conflict
from keyplane.indices.by_query import Action, ByQuery, Candidate, Conflicted

_ALL = sys.maxsize  # a run reads every match


class SystemIndexTarget:
    def __init__(self, connectors: ConnectorService, kind: Kind) -> None:
        self.connectors = connectors
        self.kind = kind

    async def matches(self, request: ByQuery) -> list[Candidate]:
        search = system_index.search_request(self.kind, request.query, request.sort, 0, _ALL, True)
        found = await self.connectors.search_documents(self.kind, search)
        term = system_index.PRIMARY_TERM
        return [
            Candidate(self.kind.index, hit.document.id, hit.document.seq_no, term, hit.document.source)
            for hit in found.hits
        ]

    async def write(self, action: Action, candidate: Candidate) -> str:
        expected = system_index.precondition(candidate.seq_no, candidate.primary_term)
        try:
            if action == "delete":
                return (await self.connectors.delete_document(self.kind, candidate.id, expected)).result
            await self.connectors.index_document(self.kind, candidate.id, candidate.source, precondition=expected)
            return "updated"
        except Conflict as exc:
            raise Conflicted(str(exc), self.kind.uuid) from None
