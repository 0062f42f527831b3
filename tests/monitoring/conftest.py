"""The Slack workspace fixtures (:mod:`tests.support.slack`) for the monitoring tests."""

from tests.support.slack import fake_slack, slack_policy, workspace  # noqa: F401 (fixtures)
