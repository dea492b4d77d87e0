"""The soak tests are slow (about a minute): marked ``soak`` so they can be selected
(``-m soak``) or left out (``-m "not soak"``)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: the fault soak and crash test (bench/soak.py, CI-sized)")
