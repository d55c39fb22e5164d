"""Customer satisfaction: 👍/👎 asked after a completed money movement, counted once, never in a form."""

from __future__ import annotations

from actions.feedback import ActionRecordFeedback
from actions.payments import ActionConfirmPending, ActionPrepareFreeze, ActionPrepareTransfer
from checks.action_runner import DOMAIN, entity, make_tracker, reply_to_confirmation, run

TRANSFER_OUT = {"amount": "10000", "source_account": "checking", "destination_account": "0123456789", "bank": "GTBank"}


def rating(value: str, **slots: object) -> object:
    return make_tracker(f'/rate_experience{{"rating":"{value}"}}', "rate_experience", [entity("rating", value)],
                        slots=dict(slots))


async def test_a_done_transfer_asks_for_a_rating_with_thumbs_buttons(connected):
    prepared = await run(ActionPrepareTransfer(), make_tracker(slots=TRANSFER_OUT))

    done = await run(ActionConfirmPending(), reply_to_confirmation(prepared.slot("pending_op_id")))

    assert done.responses == ["utter_transfer_done", "utter_ask_feedback"]
    assert done.slot("feedback_requested") == "transfer"
    for variant in DOMAIN["responses"]["utter_ask_feedback"]:
        assert [(b["title"], b["payload"]) for b in variant["buttons"]] == [
            ("👍", '/rate_experience{{"rating":"good"}}'), ("👎", '/rate_experience{{"rating":"bad"}}')]


async def test_a_freeze_is_not_rated(connected):
    prepared = await run(ActionPrepareFreeze(), make_tracker(intent="freeze_account"))

    done = await run(ActionConfirmPending(), reply_to_confirmation(prepared.slot("pending_op_id")))

    assert "utter_ask_feedback" not in done.responses
    assert all(e.get("name") != "feedback_requested" for e in done.events)


async def test_the_first_rating_is_thanked_and_clears_the_request():
    first = await run(ActionRecordFeedback(), rating("good", feedback_requested="transfer"))

    assert first.responses == ["utter_feedback_thanks"]
    assert first.slot("feedback_requested") is None


async def test_a_second_tap_or_a_rating_nobody_asked_for_is_only_acknowledged():
    again = await run(ActionRecordFeedback(), rating("bad"))

    assert again.responses == ["utter_feedback_already"] and again.events == []


async def test_no_rating_is_taken_inside_a_form():
    tracker = make_tracker('/rate_experience{"rating":"good"}', "rate_experience", [entity("rating", "good")],
                           slots={"feedback_requested": "transfer"}, active_loop="transfer_form")

    outcome = await run(ActionRecordFeedback(), tracker)

    assert outcome.responses == ["utter_feedback_already"] and outcome.events == []


async def test_a_typed_thumb_with_a_skin_tone_is_counted_and_a_stray_word_is_not():
    toned = await run(ActionRecordFeedback(), rating("👍🏿", feedback_requested="transfer"))
    assert toned.responses == ["utter_feedback_thanks"]
    stray = await run(ActionRecordFeedback(), rating("yes", feedback_requested="transfer"))
    assert stray.responses == ["utter_feedback_already"]
