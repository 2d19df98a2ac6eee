"""Fixtures for every kind of test."""

from __future__ import annotations

from typing import Iterator

import pytest
from pgcluster import PgCluster

from pyro4compat._context import current_context
from pyro4compat.configuration import config


@pytest.fixture(autouse=True)
def restore_config() -> Iterator[None]:
    """Every test may change the global config; put it back afterwards."""
    saved = config.asDict()
    yield
    for item, value in saved.items():
        setattr(config, item, value)


@pytest.fixture(autouse=True)
def clean_call_context() -> Iterator[None]:
    """A test that leaves annotations or a correlation id in this thread's call context must
    not change what the next test sends."""
    yield
    current_context.correlation_id = None
    current_context.annotations = {}
    current_context.response_annotations = {}


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A private PostgreSQL server for the whole run (started by the first test that needs it)."""
    cluster = PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A fresh, empty database of :func:`pg_cluster`, as a ``postgresql://`` URL."""
    if pg_cluster.proc is None:  # a test that stopped it failed before starting it again
        pg_cluster.start()
    return pg_cluster.create_database()
