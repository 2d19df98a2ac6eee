"""Fixtures for every kind of test."""

from __future__ import annotations

from typing import Iterator

import pytest

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
