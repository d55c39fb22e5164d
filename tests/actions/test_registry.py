"""The action server starts: every custom action of the domain is registered by
rasa-sdk from the `actions` package, and nothing else is."""

from __future__ import annotations

from rasa_sdk.executor import ActionExecutor

from checks.action_runner import DOMAIN


def test_every_domain_action_is_served_by_the_action_server():
    executor = ActionExecutor()
    executor.register_package("actions")
    custom = {name for name in DOMAIN["actions"] if not name.startswith("utter_")}
    assert custom - set(executor.actions) == set()
    assert set(executor.actions) - custom == set(), "an action the domain does not know"
