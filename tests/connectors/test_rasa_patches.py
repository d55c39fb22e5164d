"""The project's changes to Rasa (connectors/rasa_patches.py): written for the installed Rasa, applied by
the launcher, and as strict as Rasa itself: an invalid action-server response is still refused."""

from __future__ import annotations

import inspect
import logging
import os
import sys
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import mongomock
import pytest
from aiohttp import web
from bson import ObjectId
from mongomock import filtering
from mongomock.collection import Collection
from pymongo.errors import DuplicateKeyError
from rasa.core.actions.action import ActionExtractSlots, RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    Event,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

import connectors.rasa_server as rasa_server
from actions import runtime
from banking.factory import service_from_env
from connectors import rasa_patches
from sandbox import fake_mono, fake_plaid

VALID_RESPONSES = [
    {},
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "bank", "value": "GTBank"}], "responses": [{"text": "Hi"}]},
    {"events": [{"event": "action", "name": "action_listen"}, {"event": "followup", "name": "utter_greet"}]},
    {"events": [{"event": "active_loop", "name": None}, {"event": "session_started"}]},
]
INVALID_RESPONSES = [
    {"events": "not a list"},
    {"events": [{"event": "slot"}]},  # a slot event without its name
    {"events": [{"event": "no_such_event"}]},
    {"events": [{"event": "slot", "name": 5, "value": 1}]},
    {"responses": [1, 2]},
    {"events": [{"event": "user", "text": 42}]},
    [],
]


def restore_afterwards(monkeypatch: pytest.MonkeyPatch) -> None:
    """monkeypatch puts every patched function back after the test."""
    monkeypatch.setattr(RemoteAction, "_validate_action_result", RemoteAction.__dict__["_validate_action_result"])
    monkeypatch.setattr(Event, "resolve_by_type", Event.__dict__["resolve_by_type"])
    monkeypatch.setattr(Collection, "_iter_documents", Collection.__dict__["_iter_documents"])
    monkeypatch.setattr(ActionExtractSlots, "_execute_validation_action",
                        ActionExtractSlots.__dict__["_execute_validation_action"])
    monkeypatch.setattr(DialogueStateTracker, "past_states", DialogueStateTracker.__dict__["past_states"])
    monkeypatch.setattr(TEDPolicy, "predict_action_probabilities", TEDPolicy.__dict__["predict_action_probabilities"])
    monkeypatch.setattr(rasa_patches, "_applied", [])


PATCHES = 6


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The patches applied for this test only."""
    restore_afterwards(monkeypatch)
    assert len(rasa_patches.apply()) == PATCHES
    yield


def remote_action() -> RemoteAction:
    return RemoteAction("action_check_balance", EndpointConfig("http://127.0.0.1:1/webhook"))


def test_the_installed_rasa_is_the_one_the_patches_were_written_for() -> None:
    """Fails when Rasa (or a function a patch replaces or relies on) changes: look at the patch again."""
    for patch in rasa_patches._patches():
        assert patch.installed_problems() == [], patch.name


def test_rasa_validates_with_jsonschema_validate_rechecking_the_schema_every_call() -> None:
    """What the first patch replaces: the original validates every response with jsonschema.validate."""
    original = RemoteAction.__dict__["_validate_action_result"]
    original = getattr(original, "__rasa_original__", original)
    source = inspect.getsource(original)
    assert "from jsonschema import validate" in source
    assert "validate(result, self.action_response_format_spec())" in source
    assert RemoteAction.action_response_format_spec() == RemoteAction.action_response_format_spec()  # constant


def test_the_launcher_applies_the_patches_before_rasa_starts(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Any) -> None:
    credentials = tmp_path / "credentials.yml"
    credentials.write_text("connectors.whatsapp.WhatsAppInput:\n", encoding="utf-8")
    seen: dict[str, Any] = {}
    restore_afterwards(monkeypatch)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.delenv("RASA_API_ENABLED", raising=False)
    monkeypatch.delenv("ENVIRONMENT", raising=False)

    def fake_rasa_main() -> None:
        seen["argv"] = list(sys.argv)
        seen["applied"] = rasa_patches.applied()
        seen["validator"] = RemoteAction._validate_action_result

    import rasa.__main__

    monkeypatch.setattr(rasa.__main__, "main", fake_rasa_main)
    rasa_server.main(["--credentials", str(credentials), "--model", "m.tar.gz"])
    assert seen["argv"][:2] == ["rasa", "run"]
    assert len(seen["applied"]) == PATCHES
    assert getattr(seen["validator"], "__wrapped_patch__", None) is rasa_patches.validate_action_result


@pytest.mark.usefixtures("patched")
@pytest.mark.parametrize("response", VALID_RESPONSES)
def test_a_valid_action_response_passes(response: dict[str, Any]) -> None:
    assert remote_action()._validate_action_result(response) is True


@pytest.mark.usefixtures("patched")
@pytest.mark.parametrize("response", INVALID_RESPONSES)
def test_an_invalid_action_response_is_refused_with_rasas_error(response: Any) -> None:
    """The same jsonschema error jsonschema.validate gives, with Rasa's own hint added."""
    with pytest.raises(jsonschema.ValidationError) as raised:
        remote_action()._validate_action_result(response)
    with pytest.raises(jsonschema.ValidationError) as expected:
        jsonschema.validate(response, RemoteAction.action_response_format_spec())
    assert raised.value.message.startswith(expected.value.message)
    assert list(raised.value.absolute_path) == list(expected.value.absolute_path)
    assert "Failed to validate Action server response from API" in raised.value.message


def test_the_schema_is_checked_once_not_per_response(patched: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rasa_patches.action_response_validator(RemoteAction)  # built (possibly by an earlier test)
    checks: list[Any] = []
    monkeypatch.setattr(jsonschema.Draft202012Validator, "check_schema",
                        classmethod(lambda cls, schema: checks.append(schema)))
    for _ in range(5):
        remote_action()._validate_action_result(VALID_RESPONSES[2])
    assert checks == []


async def test_an_action_server_answering_nonsense_still_fails_the_action(patched: None, unused_tcp_port: int) -> None:
    """Through RemoteAction.run over real HTTP: Rasa refuses the invalid events as it does unpatched."""

    async def webhook(_: web.Request) -> web.Response:
        return web.json_response({"events": [{"event": "slot", "value": "no name"}], "responses": []})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    try:
        domain = Domain.from_dict({"actions": ["action_check_balance"]})
        action = RemoteAction("action_check_balance", EndpointConfig(f"http://127.0.0.1:{unused_tcp_port}/webhook"))
        tracker = DialogueStateTracker.from_events("someone", [ActionExecuted("action_listen"), UserUttered("hi")])
        with pytest.raises(jsonschema.ValidationError, match="Failed to validate Action server response"):
            await action.run(CollectingOutputChannel(), TemplatedNaturalLanguageGenerator(domain.responses),
                             tracker, domain)
    finally:
        await runner.cleanup()


@pytest.mark.usefixtures("patched")
def test_event_classes_resolve_as_rasa_resolves_them() -> None:
    original = Event.__dict__["resolve_by_type"].__func__.__rasa_original__
    from rasa.shared.utils.common import all_subclasses

    names = {cls.type_name for cls in all_subclasses(Event)}
    assert {"user", "bot", "slot", "action", "session_started", "active_loop"} <= names
    for name in names:
        assert Event.resolve_by_type(name) is original(name)
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("nonsense", default=SlotSet) is SlotSet
    with pytest.raises(ValueError, match="Unknown event name 'nonsense'"):
        Event.resolve_by_type("nonsense")
    assert Event.from_parameters({"event": "slot", "name": "bank", "value": "GTBank"}) == SlotSet("bank", "GTBank")


@pytest.mark.usefixtures("patched")
def test_an_event_class_defined_later_is_found() -> None:
    rasa_patches.event_class_table()  # built before the class exists

    class LateEvent(SlotSet):
        type_name = "late_event_for_the_test"

    assert Event.resolve_by_type("late_event_for_the_test") is LateEvent


def test_a_patch_for_another_rasa_is_left_out_with_a_warning(monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    real = rasa_patches._patches()
    changed = [rasa_patches.Patch(p.name, p.owner, p.attribute,
                                  (rasa_patches.Source(p.owner, p.attribute, "0" * 64),), p.replacement, p.static,
                                  p.package, p.version)
               for p in real]
    restore_afterwards(monkeypatch)
    monkeypatch.setattr(rasa_patches, "_patches", lambda: changed)
    before = RemoteAction.__dict__["_validate_action_result"]
    with caplog.at_level(logging.WARNING, logger="connectors.rasa_patches"):
        assert rasa_patches.apply() == []
    assert RemoteAction.__dict__["_validate_action_result"] is before
    assert "left out" in caplog.text and "Rasa runs as installed" in caplog.text


def run_queries(collection: Any) -> list[Any]:
    """The same reads and writes, answered by whichever mongomock is installed."""
    oid = ObjectId("5f0c0ffee0ddba11c0ffee00")
    collection.insert_many([{"_id": f"k{i}", "n": i, "tags": ["a"] if i % 2 else []} for i in range(50)]
                           + [{"_id": 7, "n": 7}, {"_id": oid, "n": -1}])
    answers: list[Any] = [
        collection.find_one({"_id": "k3"}), collection.find_one({"_id": "nope"}), collection.find_one({"_id": 7}),
        collection.find_one({"_id": oid}), collection.find_one({"_id": "k3", "n": 3}),
        collection.find_one({"_id": "k3", "n": 4}), collection.find_one({"_id": "k3"}, {"n": 1}),
        sorted(d["_id"] for d in collection.find({"_id": {"$in": ["k1", "k2", "zz"]}})),
        collection.count_documents({"_id": "k5"}), collection.count_documents({"_id": "k5", "tags": "a"}),
        collection.find_one({"_id": True}), collection.find_one({"_id": 7.0}),
    ]
    result = collection.update_one({"_id": "k4", "n": 4}, {"$set": {"n": 40}})
    answers.append((result.matched_count, result.modified_count, collection.find_one({"_id": "k4"})))
    result = collection.update_one({"_id": "k4", "n": 4}, {"$set": {"n": 41}})  # a failed compare-and-set
    answers.append((result.matched_count, collection.find_one({"_id": "k4"})["n"]))
    result = collection.update_one({"_id": "new"}, {"$setOnInsert": {"n": 1}}, upsert=True)
    answers.append((result.matched_count, result.upserted_id, collection.find_one({"_id": "new"})))
    result = collection.update_one({"_id": "new"}, {"$setOnInsert": {"n": 2}}, upsert=True)
    answers.append((result.matched_count, collection.find_one({"_id": "new"})))
    answers.append(collection.find_one({"_id": "k9"}, {"tags": {"$slice": [0, 1]}}))
    answers.append(collection.delete_one({"_id": "k9"}).deleted_count)
    answers.append(collection.find_one({"_id": "k9"}))
    with pytest.raises(DuplicateKeyError):
        collection.insert_one({"_id": "k1"})
    answers.append(collection.count_documents({}))
    return answers


def test_the_in_memory_database_answers_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = run_queries(mongomock.MongoClient().db.before)
    restore_afterwards(monkeypatch)
    rasa_patches.apply()
    assert run_queries(mongomock.MongoClient().db.after) == expected


def test_a_document_is_found_by_id_without_testing_the_others(patched: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    collection = mongomock.MongoClient().db.statuses
    collection.insert_many([{"_id": f"m{i}:sent"} for i in range(2000)])
    tested: list[Any] = []
    real = filtering.filter_applies
    def counting(filter: Any, document: Any) -> bool:
        tested.append(document)
        return real(filter, document)

    monkeypatch.setattr("mongomock.filtering.filter_applies", counting)
    monkeypatch.setattr("mongomock.collection.filter_applies", counting)  # mongomock's own scan
    collection.update_one({"_id": "m1999:delivered"}, {"$setOnInsert": {"at": 1}}, upsert=True)
    assert collection.find_one({"_id": "m5:sent"}) == {"_id": "m5:sent"}
    assert len(tested) <= 2


# ------------------------------------------------------------ the language slot

DOMAIN_DIR = Path(__file__).resolve().parents[2] / "domain"
LANGUAGE_CASES = [
    # text, intent, entities, language before, slots Rasa extracted
    ("wetin remain for my acct", "check_balance", [], "english", []),
    ("what is my balance please", "check_balance", [], "english", []),
    ("what is my balance please", "check_balance", [], "pidgin", []),
    ("yes", "affirm", [], "pidgin", []),
    ("switch language", "change_language", [], "english", []),
    ("switch language", "change_language", [], "pidgin", []),
    ("abeg talk english", "change_language", [{"entity": "language", "value": "english"}], "pidgin", []),
    ("abeg yarn me for pidgin", "change_language", [{"entity": "language", "value": "pidgin"}], "english", []),
    ("what is pidgin for thank you", "out_of_scope", [{"entity": "language", "value": "pidgin"}], "english", []),
    ("abeg send 5k give tunde", "transfer_money", [{"entity": "amount", "value": "5000"}], "english",
     [SlotSet("amount", "5000")]),
    ("kjhgf", "nlu_fallback", [], "pidgin", []),
]


# Deployments as their settings name them; Rasa's process and the action server read the same ones.
PLAID = {"BANK_PROVIDER": "plaid", "PLAID_CLIENT_ID": fake_plaid.CLIENT_ID, "PLAID_SECRET": fake_plaid.SECRET,
         "PLAID_ENV": "sandbox", "PLAID_WEBHOOK_URL": "https://bank.example/webhooks/whatsapp/bank/plaid"}
MONO = {"BANK_PROVIDER": "mono", "MONO_SECRET_KEY": fake_mono.SECRET_KEY,
        "MONO_WEBHOOK_SECRET": fake_mono.WEBHOOK_SECRET, "BANK_LINK_REDIRECT_URL": "https://bank.example/done"}
DEPLOYMENTS = {"sandbox": {"BANK_PROVIDER": "sandbox"}, "plaid": PLAID, "mono": MONO,
               "mono with DirectPay": {**MONO, "MONO_DIRECTPAY": "on"}}


@pytest.fixture(params=list(DEPLOYMENTS))
def deployment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[bool]:
    """Both processes' environment for one deployment, the action server's banking service built from it;
    whether its bank connection moves money."""
    for name in ("BANK_PROVIDER", "MONO_DIRECTPAY", *PLAID, *MONO):
        monkeypatch.delenv(name, raising=False)
    for name, value in DEPLOYMENTS[request.param].items():
        monkeypatch.setenv(name, value)
    rasa_patches.deployment_moves_money.cache_clear()
    with warnings.catch_warnings():  # the development salt, key and in-memory database are said aloud
        warnings.simplefilter("ignore")
        service = service_from_env(os.environ)
    runtime.use_service(service)
    yield service.provider_moves_money
    runtime.use_service(None)
    rasa_patches.deployment_moves_money.cache_clear()


@pytest.fixture(scope="module")
def project_domain() -> Domain:
    with warnings.catch_warnings():  # pykwalify, checking the domain files' schema, on Python 3.10
        warnings.filterwarnings("ignore", "the load_module", DeprecationWarning)
        return Domain.load(str(DOMAIN_DIR))


def language_tracker(domain: Domain, text: str, intent: str, entities: list[dict[str, Any]],
                     language: str, moves_money: bool | None = None) -> DialogueStateTracker:
    before = [SlotSet("bank_moves_money", moves_money)] if moves_money is not None else []
    return DialogueStateTracker.from_events(
        "someone",
        [*before, SlotSet("language", language), ActionExecuted("action_listen"),
         UserUttered(text, {"name": intent, "confidence": 0.9}, entities)],
        slots=domain.slots,
    )


async def answered_by_the_action_server(domain: Domain, tracker: DialogueStateTracker,
                                        extracted: list[Any]) -> list[Any]:
    """Rasa as installed, its call to action_validate_slot_mappings answered by the project's own action."""
    from rasa.shared.core.trackers import EventVerbosity
    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher

    from actions.support import ValidatePredefinedSlots

    async def run_custom_action(self: Any, name: str, output: Any, nlg: Any, sent: DialogueStateTracker,
                                sent_domain: Domain) -> list[Any]:
        assert name == "action_validate_slot_mappings"
        sdk_tracker = Tracker.from_dict(sent.current_state(EventVerbosity.ALL))
        events = await ValidatePredefinedSlots().run(CollectingDispatcher(), sdk_tracker, sent_domain.as_dict())
        return [Event.from_parameters(event) for event in events]

    original = ActionExtractSlots.__dict__["_execute_validation_action"]
    original = getattr(original, "__rasa_original__", original)
    action = ActionExtractSlots(None)
    action._run_custom_action = run_custom_action.__get__(action)  # type: ignore[method-assign]
    return await original(action, extracted, CollectingOutputChannel(), None, tracker, domain)


def slots_after(tracker: DialogueStateTracker, events: list[Any]) -> dict[str, Any]:
    changed = tracker.copy()
    for event in events:
        changed.update(event)
    return changed.current_slot_values()


@pytest.mark.parametrize(("text", "intent", "entities", "language", "extracted"), LANGUAGE_CASES)
@pytest.mark.parametrize("moves_money_before", [None, True, False])
async def test_the_language_and_bank_slots_are_set_as_the_action_server_sets_them(
    patched: None, project_domain: Domain, monkeypatch: pytest.MonkeyPatch, deployment: bool,
    text: str, intent: str, entities: list[dict[str, Any]], language: str, extracted: list[Any],
    moves_money_before: bool | None,
) -> None:
    tracker = language_tracker(project_domain, text, intent, entities, language, moves_money_before)
    expected = await answered_by_the_action_server(project_domain, tracker, list(extracted))

    async def no_call(*_: Any) -> list[Any]:
        raise AssertionError("the action server was called")

    monkeypatch.setattr(ActionExtractSlots, "_run_custom_action", no_call)
    action = ActionExtractSlots(EndpointConfig("http://127.0.0.1:1/webhook"))
    events = await action._execute_validation_action(list(extracted), CollectingOutputChannel(), None, tracker,
                                                     project_domain)
    assert slots_after(tracker, events) == slots_after(tracker, expected)
    assert {(e.key, e.value) for e in events} == {(e.key, e.value) for e in expected}
    assert slots_after(tracker, events)["bank_moves_money"] is deployment  # the menus match the deployment
    assert (("bank_moves_money", deployment) in {(e.key, e.value) for e in events}) == (
        tracker.get_slot("bank_moves_money") is not deployment)  # said only when it changes


async def test_a_domain_whose_language_is_not_custom_mapped_still_asks_the_action_server(
    patched: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    domain = Domain.from_dict({
        "actions": ["action_validate_slot_mappings"],
        "entities": ["language"],
        "slots": {"language": {"type": "text", "mappings": [{"type": "from_entity", "entity": "language"}]},
                  "mood": {"type": "text", "mappings": [{"type": "custom"}]}},
    })
    calls: list[str] = []

    async def run_custom_action(self: Any, name: str, *_: Any) -> list[Any]:
        calls.append(name)
        return [SlotSet("mood", "happy")]

    monkeypatch.setattr(ActionExtractSlots, "_run_custom_action", run_custom_action)
    tracker = DialogueStateTracker.from_events("someone", [UserUttered("hi", {"name": "greet"})], slots=domain.slots)
    events = await ActionExtractSlots(None)._execute_validation_action([], CollectingOutputChannel(), None, tracker,
                                                                       domain)
    assert calls == ["action_validate_slot_mappings"]
    assert events == [SlotSet("mood", "happy")]


def test_the_action_server_action_only_extracts_the_slots_rasa_works_out_itself() -> None:
    """What lets Rasa work them out itself: the action validates nothing and extracts only those."""
    from rasa_sdk.forms import ValidationAction

    from actions.support import ValidatePredefinedSlots

    own = {name for name in vars(ValidatePredefinedSlots) if not name.startswith("_")}
    assert own == {"name", "extract_language", "extract_bank_moves_money"}
    assert {f"extract_{slot}" for slot in rasa_patches.LOCAL_SLOTS} == own - {"name"}
    assert not any(name.startswith(("extract_", "validate_")) for name in vars(ValidationAction))


# ------------------------------------------------------------ dialogue states


def transfer_conversation() -> list[Event]:
    """A session with what changes dialogue states: a form, turns only rules know, a message taken back."""
    def said(text: str, intent: str, entities: list[dict[str, Any]] | None = None) -> list[Event]:
        return [ActionExecuted("action_listen"),
                UserUttered(text, {"name": intent, "confidence": 0.97}, entities or [])]

    return [
        ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"),
        *said("hi", "greet")[1:],
        ActionExecuted("utter_greet", hide_rule_turn=True), BotUttered("Hi"),
        *said("what is my balance", "check_balance"),
        ActionExecuted("action_check_balance"), BotUttered("₦5,000"),
        *said("send 2500 to savings", "transfer_money",
              [{"entity": "amount", "value": "2500", "start": 5, "end": 9}]),
        SlotSet("amount", "2500"), ActionExecuted("transfer_form"), ActiveLoop("transfer_form"),
        SlotSet("requested_slot", "source_account"), BotUttered("From which account?"),
        *said("asdfgh", "nlu_fallback"), UserUtteranceReverted(),
        *said("checking", "inform", [{"entity": "account_type", "value": "checking", "start": 0, "end": 8}]),
        ActionExecuted("transfer_form"), SlotSet("source_account", "checking"), SlotSet("requested_slot", None),
        ActiveLoop(None), ActionExecuted("action_prepare_transfer", hide_rule_turn=True),
        *said("yes", "affirm"), ActionExecuted("action_confirm_pending", hide_rule_turn=True),
    ]


STATE_OPTIONS = [
    {},
    {"omit_unset_slots": True},
    {"ignore_rule_only_turns": True, "rule_only_data": {"slots": ["requested_slot"], "loops": []}},
    {"ignore_rule_only_turns": True, "rule_only_data": {"slots": [], "loops": ["transfer_form"]}},
]


@pytest.mark.parametrize("options", STATE_OPTIONS)
def test_each_prefix_of_a_conversation_has_the_states_rasa_works_out(
    patched: None, project_domain: Domain, options: dict[str, Any]
) -> None:
    rasas_own = rasa_patches.past_states.__rasa_original__  # type: ignore[attr-defined]
    events = transfer_conversation()
    tracker = DialogueStateTracker("someone", project_domain.slots)
    for event in events:
        tracker.update(event)
        expected = rasas_own(tracker, project_domain, **options)
        assert tracker.past_states(project_domain, **options) == expected
        assert tracker.past_states(project_domain, **options) == expected  # the kept answer too


def test_the_policies_of_one_prediction_share_one_working_out(
    patched: None, project_domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    worked_out: list[int] = []
    rasas_own = Domain.states_for_tracker_history

    def counted(self: Domain, tracker: DialogueStateTracker, *args: Any, **kwargs: Any) -> Any:
        worked_out.append(len(tracker.events))
        return rasas_own(self, tracker, *args, **kwargs)

    monkeypatch.setattr(Domain, "states_for_tracker_history", counted)
    tracker = DialogueStateTracker.from_events("someone", transfer_conversation(), slots=project_domain.slots)
    rule_only = {"slots": ["requested_slot"], "loops": []}
    for _policy in ("memoization", "ted", "rule with text", "rule"):
        tracker.past_states(project_domain)
        tracker.past_states(project_domain, ignore_rule_only_turns=True, rule_only_data=dict(rule_only))
    assert len(worked_out) == 2  # once per set of options, not once per policy

    tracker.update(ActionExecuted("action_listen"))
    tracker.past_states(project_domain)
    assert len(worked_out) == 3  # a new event: worked out again


def test_a_caller_changing_its_states_does_not_change_the_next_callers(patched: None, project_domain: Domain) -> None:
    tracker = DialogueStateTracker.from_events("someone", transfer_conversation(), slots=project_domain.slots)
    first = tracker.past_states(project_domain)
    expected = rasa_patches.past_states.__rasa_original__(tracker, project_domain)  # type: ignore[attr-defined]
    for state in first:  # as the featurizer does when it drops the text of a message with an intent
        state.pop("prev_action", None)
        for sub_state in state.values():
            sub_state.clear()
    assert tracker.past_states(project_domain) == expected


def test_a_tracker_with_an_event_replaced_is_worked_out_again(patched: None, project_domain: Domain) -> None:
    events = transfer_conversation()
    tracker = DialogueStateTracker.from_events("someone", events, slots=project_domain.slots)
    before = tracker.past_states(project_domain)
    tracker.events.pop()
    tracker.events.append(ActionExecuted("action_cancel_pending"))  # same length, another last event
    after = tracker.past_states(project_domain)
    assert after != before
    assert after == rasa_patches.past_states.__rasa_original__(tracker, project_domain)  # type: ignore[attr-defined]


# ------------------------------------------------------------ TED's predictions

TED_DOMAIN = """
intents: [greet, check_balance, transfer_money, goodbye]
entities: [account_type]
slots:
  account_type:
    type: categorical
    values: [savings, checking]
    mappings: [{type: from_entity, entity: account_type}]
responses:
  utter_greet: [{text: Hi}]
  utter_goodbye: [{text: Bye}]
actions: [action_check_balance, action_prepare_transfer]
"""
TED_STORIES = """
version: "3.1"
stories:
- story: balance after a greeting
  steps:
  - intent: greet
  - action: utter_greet
  - intent: check_balance
  - action: action_check_balance
- story: a transfer from savings
  steps:
  - intent: transfer_money
    entities: [{account_type: savings}]
  - slot_was_set: [{account_type: savings}]
  - action: action_prepare_transfer
  - intent: goodbye
  - action: utter_goodbye
"""


@pytest.fixture(scope="module")
def trained_ted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Domain]:
    """A TED policy trained for one epoch on two stories (its predictions need not be good, only TED's)."""
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.core.generator import TrainingDataGenerator
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
    from rasa.shared.core.training_data.structures import StoryGraph

    with warnings.catch_warnings():  # what Rasa, TensorFlow and NumPy say while a model is first trained
        warnings.simplefilter("ignore")
        domain = Domain.from_yaml(TED_DOMAIN)
        steps = YAMLStoryReader(domain).read_from_string(TED_STORIES)
        trackers = TrainingDataGenerator(StoryGraph(steps), domain, augmentation_factor=0).generate()
        policy = TEDPolicy.create({**TEDPolicy.get_default_config(), "epochs": 1, "random_seed": 42, "max_history": 3,
                                   "constrain_similarities": True, "evaluate_every_number_of_epochs": -1},
                                  LocalModelStorage(tmp_path_factory.mktemp("ted")), Resource("ted"),
                                  ExecutionContext(GraphSchema({}), "test"))
        policy.train(trackers, domain)
    return policy, domain


def ted_conversations(domain: Domain) -> list[DialogueStateTracker]:
    def said(intent: str, entities: list[dict[str, Any]] | None = None) -> list[Event]:
        return [ActionExecuted("action_listen"),
                UserUttered(intent, {"name": intent, "confidence": 0.9}, entities or [])]

    savings = [{"entity": "account_type", "value": "savings", "start": 0, "end": 7}]
    conversations = [
        said("greet"),
        [*said("greet"), ActionExecuted("utter_greet"), *said("check_balance")],
        [*said("transfer_money", savings), SlotSet("account_type", "savings")],
        [*said("transfer_money", savings), SlotSet("account_type", "savings"),
         ActionExecuted("action_prepare_transfer")],
        [*said("goodbye"), ActionExecuted("utter_goodbye"), *said("greet"), ActionExecuted("utter_greet")],
        # more than max_history turns ago, the same last three states as the second
        [*said("goodbye"), ActionExecuted("utter_goodbye"), *said("goodbye"), ActionExecuted("utter_goodbye"),
         *said("greet"), ActionExecuted("utter_greet"), *said("check_balance")],
    ]
    return [DialogueStateTracker.from_events(f"customer {n}", events, slots=domain.slots)
            for n, events in enumerate(conversations)]


def count_inferences(policy: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    runs: list[int] = []
    run_inference = policy.model.run_inference

    def counted(*args: Any, **kwargs: Any) -> Any:
        runs.append(1)
        return run_inference(*args, **kwargs)

    monkeypatch.setattr(policy.model, "run_inference", counted)
    monkeypatch.setitem(policy.__dict__, rasa_patches._TED_CACHE, OrderedDict())
    return runs


def test_ted_predicts_what_it_predicts_as_installed(patched: None, trained_ted: tuple[Any, Domain],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    policy, domain = trained_ted
    count_inferences(policy, monkeypatch)
    rasas_own = rasa_patches.ted_predict_action_probabilities.__rasa_original__  # type: ignore[attr-defined]
    for _round in range(2):  # worked out, then kept
        for tracker in ted_conversations(domain):
            expected = rasas_own(policy, tracker, domain)
            prediction = policy.predict_action_probabilities(tracker, domain)
            assert prediction.probabilities == expected.probabilities
            assert (prediction.policy_name, prediction.policy_priority, prediction.is_end_to_end_prediction) == (
                expected.policy_name, expected.policy_priority, expected.is_end_to_end_prediction)


def test_a_dialogue_state_seen_before_is_not_run_through_the_network_again(
    patched: None, trained_ted: tuple[Any, Domain], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy, domain = trained_ted
    runs = count_inferences(policy, monkeypatch)
    conversations = ted_conversations(domain)
    for tracker in conversations:
        policy.predict_action_probabilities(tracker, domain)
    assert len(runs) == len(conversations) - 1  # the last one ends in the second one's states
    for tracker in conversations:
        policy.predict_action_probabilities(tracker, domain)
    assert len(runs) == len(conversations) - 1


def test_the_ensemble_changing_a_prediction_does_not_change_the_kept_one(
    patched: None, trained_ted: tuple[Any, Domain], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy, domain = trained_ted
    count_inferences(policy, monkeypatch)
    tracker = ted_conversations(domain)[1]
    first = policy.predict_action_probabilities(tracker, domain)
    expected = list(first.probabilities)
    first.probabilities[first.max_confidence_index] = 0.0  # as the ensemble rejects an action
    assert policy.predict_action_probabilities(tracker, domain).probabilities == expected


def test_only_the_latest_predictions_are_kept(patched: None, trained_ted: tuple[Any, Domain],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    policy, domain = trained_ted
    runs = count_inferences(policy, monkeypatch)
    monkeypatch.setattr(rasa_patches, "TED_PREDICTIONS_KEPT", 2)
    first, second, third = ted_conversations(domain)[:3]
    for tracker in (first, second, third, third, second, first):
        policy.predict_action_probabilities(tracker, domain)
    assert len(policy.__dict__[rasa_patches._TED_CACHE]) == 2
    assert len(runs) == 4  # the first was let go for the third, so it ran again


def test_a_ted_trained_on_message_text_runs_as_installed(patched: None, trained_ted: tuple[Any, Domain],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.core.policies.policy import PolicyPrediction
    from rasa.shared.nlu.constants import TEXT

    policy, domain = trained_ted
    count_inferences(policy, monkeypatch)
    monkeypatch.setattr(policy, "fake_features", {**policy.fake_features, TEXT: []})  # as end-to-end stories leave it
    runs: list[int] = []

    def rasas_own(*_: Any, **__: Any) -> PolicyPrediction:  # TED itself would read the message's text here
        runs.append(1)
        return PolicyPrediction([0.5, 0.5], "TEDPolicy")

    monkeypatch.setattr(rasa_patches.ted_predict_action_probabilities, "__rasa_original__", rasas_own)
    tracker = ted_conversations(domain)[0]
    policy.predict_action_probabilities(tracker, domain)
    policy.predict_action_probabilities(tracker, domain)
    assert len(runs) == 2
    assert not policy.__dict__[rasa_patches._TED_CACHE]
