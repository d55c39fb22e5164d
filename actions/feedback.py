"""Customer satisfaction: ask for 👍/👎 after a completed money movement, count the first answer.

The analytics event broker sees the rating (the ``rating`` entity of ``rate_experience``)
and which response followed it: ``utter_feedback_thanks`` marks a counted rating,
``utter_feedback_already`` one that is not (a second tap, or nothing was asked).
"""

from __future__ import annotations

from typing import Any, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from banking.catalog import canonical_rating

RATED_TASKS = frozenset({"transfer", "bill", "airtime"})
RATINGS = frozenset({"good", "bad"})


def ask_for_feedback(dispatcher: CollectingDispatcher, tracker: Tracker, receipt: Any) -> List[EventType]:
    """After a money movement that was done (not scheduled), outside any form: the 👍/👎 question."""
    kind = getattr(receipt, "kind", None)
    if kind not in RATED_TASKS or getattr(receipt, "effective_at", None) is not None or tracker.active_loop_name:
        return []
    dispatcher.utter_message(response="utter_ask_feedback")
    return [SlotSet("feedback_requested", kind)]


class ActionRecordFeedback(Action):
    """Thanks for the first rating of a completed task; any other tap is only acknowledged."""

    def name(self) -> str:
        return "action_record_feedback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        raw = next(tracker.get_latest_entity_values("rating"), None)
        rating = canonical_rating(str(raw)) if raw is not None else None
        if tracker.active_loop_name or not tracker.get_slot("feedback_requested") or rating not in RATINGS:
            dispatcher.utter_message(response="utter_feedback_already")
            return []
        dispatcher.utter_message(response="utter_feedback_thanks")
        return [SlotSet("feedback_requested", None)]
