"""The Teams fixture (:mod:`tests.support.teams`) for the Teams tests."""

from tests.support.teams import teams  # noqa: F401 (fixture)
