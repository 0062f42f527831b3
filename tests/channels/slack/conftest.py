"""The Slack workspace fixtures (:mod:`tests.support.slack`) for the Slack tests."""

from tests.support.slack import fake_slack, slack_policy, workspace  # noqa: F401 (fixtures)
