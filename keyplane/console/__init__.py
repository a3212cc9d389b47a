"""The web console: static files served by Keyplane itself under :data:`PREFIX`.

The pages are plain HTML, CSS and hand-written JavaScript modules shipped as package data; they call
Keyplane's public REST API with the signed-in user's own credentials. Serving them needs no
authentication: the files hold no secrets, and every API call they make is authenticated.
"""

from keyplane.console.serve import PREFIX, is_console_path, serve

__all__ = ["PREFIX", "is_console_path", "serve"]
