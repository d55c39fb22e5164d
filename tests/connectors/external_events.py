"""Rasa's agent as the provider-webhook route uses it (lock store, processor, trigger_intent),
with the rules `EXTERNAL_<event> -> <action>` played by running the action for the sender."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rasa_sdk import Action

from checks.action_runner import make_tracker, run
from checks.whatsapp_fakes import RecordingAgent


class _Lock:
    def __init__(self, held: list[str], sender: str) -> None:
        self._held, self._sender = held, sender

    async def __aenter__(self) -> None:
        self._held.append(self._sender)

    async def __aexit__(self, *_: Any) -> None:
        self._held.remove(self._sender)


class ExternalEventAgent(RecordingAgent):
    """Records each triggered intent (sender, intent, entities, whether the sender's lock was
    held) and runs the action its rule names, sending the action's texts to the customer."""

    def __init__(self, rules: Mapping[str, Action]) -> None:
        super().__init__()
        self.rules = rules
        self.triggered: list[tuple[str, str, list[dict[str, Any]], bool]] = []
        self.held: list[str] = []
        self.lock_store = self
        self.processor = self

    def lock(self, sender: str) -> _Lock:
        return _Lock(self.held, sender)

    async def fetch_tracker_and_update_session(self, sender: str, output: Any) -> Any:
        return make_tracker(sender=sender)

    async def trigger_intent(self, intent: str, entities: list[dict[str, Any]], output: Any, tracker: Any) -> None:
        self.triggered.append((tracker.sender_id, intent, entities, tracker.sender_id in self.held))
        action = self.rules.get(intent)
        if action is not None:
            outcome = await run(action, make_tracker(sender=tracker.sender_id, entities=entities, intent=intent))
            for text in outcome.texts:
                await output.send_text_message(tracker.sender_id, text)
