"""By-query runs, with the rules and accounting of ``by_query``, over content indices (``IndexService``)
or over any other ``Target`` (the connector system indices give theirs from the API layer, as this
package does not depend on the connectors package).

A run searches once, then writes every match on the condition that it is still as the search read it,
through the same single-document operations as the document APIs: versions, sequence numbers and
conflicts are theirs. An update without a script writes the document back as read (a new version and
sequence number, as Elasticsearch's reindexing does).
"""

from __future__ import annotations

import sys

from keyplane.indices import by_query, core
from keyplane.indices.by_query import Action, ByQuery, Candidate, Conflicted, Progress, Target
from keyplane.indices.core import Condition, IndexMeta
from keyplane.indices.search import SearchRequest, parse_sort
from keyplane.indices.service import IndexService

# Every match is read: a by-query request is not paged by the caller.
_ALL = sys.maxsize


class _Indices:
    """Content indices as a run's target."""

    def __init__(self, service: IndexService, indices: list[IndexMeta]) -> None:
        self.service = service
        self.indices = indices
        self.uuids = {meta.name: meta.uuid for meta in indices}

    async def matches(self, request: ByQuery) -> list[Candidate]:
        search = SearchRequest(request.query, parse_sort(request.sort), 0, _ALL, True)
        result, _ = await self.service.search(self.indices, search)
        return [
            Candidate(hit.index.name, hit.doc.id, hit.doc.seq_no, hit.doc.primary_term, hit.doc.source)
            for hit in result.hits
        ]

    async def write(self, action: Action, candidate: Candidate) -> str:
        cond = Condition(candidate.seq_no, candidate.primary_term)
        try:
            if action == "delete":
                return (await self.service.delete_doc(candidate.index, candidate.id, cond)).result
            await self.service.index(candidate.index, candidate.id, candidate.source, "index", cond, None)
            return "updated"
        except core.VersionConflict as exc:
            raise Conflicted(str(exc), self.uuids.get(candidate.index, exc.uuid)) from None


class ByQueryService:
    def __init__(self, indices: IndexService) -> None:
        self.indices = indices

    async def run(self, request: ByQuery, indices: list[IndexMeta]) -> Progress:
        """Delete or rewrite the documents of content indices matching the request's query; with
        ``refresh``, the indices are refreshed at the end (a search then sees every write of the run)."""
        progress = await by_query.run(request, _Indices(self.indices, indices))
        if request.refresh:
            await self.indices.refresh(indices)
        return progress

    async def run_on(self, request: ByQuery, target: Target) -> Progress:
        """The same over another target's documents."""
        return await by_query.run(request, target)
