"""User profiles: a stable uid per user and realm, with labels and application data."""
