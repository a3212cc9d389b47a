"""OAuth2-style access tokens (``/_security/oauth2/token``) and ``Authorization: Bearer``."""
