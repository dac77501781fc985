"""The benchmarks' own databases (make bench, make pumping): each starts from an empty one."""

import psycopg


def database_recreate(url: str) -> None:
    """Drop the database `url` names (its connections too) and create it empty."""
    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
