"""By-query runs over content indices (``IndexService``) and over the connector system indices
(``ConnectorService``'s document operations), with the rules and accounting of ``by_query``.

Each run searches once, then writes every match on the condition that it is still as the search read
it, through the same single-document operations as the document APIs: versions, sequence numbers and
conflicts are theirs. An update without a script writes the document back as read (a new version and
sequence number, as Elasticsearch's reindexing does).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from keyplane.connectors import system_index
from keyplane.connectors.service import ConnectorService
from keyplane.connectors.system_index import Kind
from keyplane.errors import Conflict
from keyplane.indices import by_query, core
from keyplane.indices.by_query import ByQuery, Candidate, Conflicted, Progress
from keyplane.indices.core import Condition, IndexMeta, Source
from keyplane.indices.search import SearchRequest, parse_sort
from keyplane.indices.service import IndexService

# Every match is read: a by-query request is not paged by the caller.
_ALL = sys.maxsize


class ByQueryService:
    def __init__(self, indices: IndexService, connectors: ConnectorService) -> None:
        self.indices = indices
        self.connectors = connectors

    async def run(self, indices: list[IndexMeta], request: ByQuery) -> Progress:
        """Delete or rewrite the documents of content indices matching the request's query."""
        search = SearchRequest(request.query, parse_sort(request.sort), 0, _ALL, True)
        result, _ = await self.indices.search(indices, search)
        sources: dict[tuple[str, str], Source] = {}
        uuids = {meta.name: meta.uuid for meta in indices}
        candidates: list[Candidate] = []
        for hit in result.hits:
            sources[(hit.index.name, hit.doc.id)] = hit.doc.source
            candidates.append(Candidate(hit.index.name, hit.doc.id, hit.doc.seq_no, hit.doc.primary_term))

        async def write(candidate: Candidate) -> str:
            cond = Condition(candidate.seq_no, candidate.primary_term)
            try:
                if request.action == "delete":
                    deleted = await self.indices.delete_doc(candidate.index, candidate.id, cond)
                    return deleted.result
                source = sources[(candidate.index, candidate.id)]
                await self.indices.index(candidate.index, candidate.id, source, "index", cond, None)
                return "updated"
            except core.VersionConflict as exc:
                raise Conflicted(str(exc), uuids.get(candidate.index, exc.uuid)) from None

        return await by_query.run(request, candidates, write)

    async def run_on_system_index(self, kind: Kind, request: ByQuery, uuid: Callable[[Kind], str]) -> Progress:
        """The same over ``.elastic-connectors`` or ``.elastic-connectors-sync-jobs``: deleting a document
        removes the connector or sync job for good, as deleting it through ``_doc`` does."""
        search = system_index.search_request(kind, request.query, request.sort, 0, _ALL, True)
        found = await self.connectors.search_documents(kind, search)
        sources = {hit.document.id: hit.document.source for hit in found.hits}
        candidates = [
            Candidate(kind.index, hit.document.id, hit.document.seq_no, system_index.PRIMARY_TERM) for hit in found.hits
        ]

        async def write(candidate: Candidate) -> str:
            expected = system_index.precondition(candidate.seq_no, candidate.primary_term)
            try:
                if request.action == "delete":
                    deleted = await self.connectors.delete_document(kind, candidate.id, expected)
                    return deleted.result
                await self.connectors.index_document(kind, candidate.id, sources[candidate.id], precondition=expected)
                return "updated"
            except Conflict as exc:
                raise Conflicted(str(exc), uuid(kind)) from None

        return await by_query.run(request, candidates, write)
