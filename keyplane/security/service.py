"""The security domain's services, one module each; imported from here by the wiring and older callers.

Services orchestrate: they call the pure rules of the domain modules (``users``, ``roles``,
``app_privileges``, ``role_mappings``, ``index_settings``) and the repositories, return plain
values and raise the errors of ``keyplane.errors``. The REST layer parses and renders.
"""

from __future__ import annotations

from keyplane.security.privilege_service import ApplicationDefinitions, PrivilegeService
from keyplane.security.role_mapping_service import RoleMappingService
from keyplane.security.role_service import RoleDeletes, RoleService, RoleWrites
from keyplane.security.settings_service import SecuritySettingsService
from keyplane.security.user_service import UserService

__all__ = [
    "ApplicationDefinitions",
    "PrivilegeService",
    "RoleDeletes",
    "RoleMappingService",
    "RoleService",
    "RoleWrites",
    "SecuritySettingsService",
    "UserService",
]
