"""Service accounts (``elastic/fleet-server``, ``elastic/kibana``, ...) and their bearer tokens."""
