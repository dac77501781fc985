"""Django's PostgreSQL backend with fewer round trips: the health check and BEGIN (base.py)."""
