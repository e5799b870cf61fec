"""Tests that need a system tool skip where it is missing, but never in CI.

.ci/run installs every tool the tests use, so under CI=true a missing one is a missing install step:
the test runs and fails on it instead of skipping quietly.
"""

from __future__ import annotations

import os

import pytest

IN_CI = bool(os.environ.get("CI"))


def needs(available: bool, reason: str) -> pytest.MarkDecorator:
    """A skipif mark for a missing tool, off in CI."""
    return pytest.mark.skipif(not available and not IN_CI, reason=reason)


def skip_unless_ci(reason: str) -> None:
    """Inside a test: skip for a missing tool, or fail in CI."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must install it: see .ci/run)")
    pytest.skip(reason)
