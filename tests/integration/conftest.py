"""Integration fixtures: daemons on loopback (port 0), both server types."""

from __future__ import annotations

import pytest

from daemons import serving
from pyro4compat.configuration import config

SERVERTYPES = ["thread", "multiplex"]


@pytest.fixture(params=SERVERTYPES)
def servertype(request) -> str:
    """Run the test once per server type; config.SERVERTYPE is set accordingly."""
    config.SERVERTYPE = request.param
    return request.param


@pytest.fixture
def serve():
    """The :func:`serving` context manager."""
    return serving
