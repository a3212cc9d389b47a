"""Implicit index privileges (Elasticsearch 9.5's ImplicitPrivilegesProvider).

In Elasticsearch a plugin may register providers that, while a role is built, derive extra index
privileges from the role's application privileges and the stored application privilege
definitions they name (Kibana features such as alerts or cases grant read on their own indices
this way). ``GET /_security/role?include_implicit=true`` shows those entries next to the stored
ones, each marked ``"implicitly_granted": true``; the put role API refuses the marker.

Keyplane ships no provider: the providers are Kibana-feature code inside Elasticsearch plugins,
not part of the security API. The registry below is where one would be added; with none
registered, ``include_implicit`` changes nothing, as in an Elasticsearch without such plugins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from keyplane.security.roles import IndicesPrivileges, RoleDescriptor

# (role, stored application privilege definitions it names) -> extra index privileges
Provider = Callable[[RoleDescriptor, list[dict[str, Any]]], Iterable[IndicesPrivileges]]

PROVIDERS: list[Provider] = []


def implicit_indices(rd: RoleDescriptor, stored: list[dict[str, Any]]) -> list[IndicesPrivileges]:
    """Every index privilege the registered providers derive for this role."""
    return [group for provider in PROVIDERS for group in provider(rd, stored)]


@dataclass(frozen=True)
class RoleWithImplicit:
    """A role as the get role API shows it: the stored role, and the index privileges providers add
    (shown after its own, each marked as implicitly granted)."""

    role: RoleDescriptor
    implicit: list[IndicesPrivileges] = field(default_factory=list)


def role_with_implicit(rd: RoleDescriptor, stored: list[dict[str, Any]]) -> RoleWithImplicit:
    """A role with the index privileges the registered providers derive for it."""
    return RoleWithImplicit(rd, implicit_indices(rd, stored))
