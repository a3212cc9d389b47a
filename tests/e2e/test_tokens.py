"""Access and refresh tokens through the official client: who may refresh a token."""

from __future__ import annotations

import pytest
from elasticsearch import BadRequestError, Elasticsearch

from tests.e2e.server import Server


def test_only_the_creating_client_refreshes_a_token(server: Server, es: Elasticsearch) -> None:
    es.security.put_role(name="tokens", cluster=["manage_token"])
    es.security.put_user(username="tom", password="tom-secret", roles=["tokens"])
    es.security.put_user(username="una", password="una-secret", roles=["tokens"])
    una = Elasticsearch(server.url, basic_auth=("una", "una-secret"))
    # elastic asks for a token of tom's: elastic is the client, tom the owner.
    first = es.security.get_token(grant_type="password", username="tom", password="tom-secret").body
    for other in (una, Elasticsearch(server.url, basic_auth=("tom", "tom-secret"))):
        with pytest.raises(BadRequestError) as refused:
            other.security.get_token(grant_type="refresh_token", refresh_token=first["refresh_token"])
        assert refused.value.body == {
            "error": "invalid_grant",
            "error_description": "tokens must be refreshed by the creating client",
        }
    # The refused attempts did not use the refresh token up: its client still can.
    refreshed = es.security.get_token(grant_type="refresh_token", refresh_token=first["refresh_token"]).body
    assert refreshed["authentication"]["username"] == "tom"
    # The new pair belongs to the client that refreshed it, too.
    with pytest.raises(BadRequestError):
        una.security.get_token(grant_type="refresh_token", refresh_token=refreshed["refresh_token"])
    own = una.security.get_token(grant_type="password", username="una", password="una-secret").body
    assert una.security.get_token(grant_type="refresh_token", refresh_token=own["refresh_token"])["access_token"]
