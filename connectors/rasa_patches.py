"""The project's changes to Rasa's own behaviour (and to the in-memory MongoDB stand-in): one place,
applied by the project's start-up.

``apply()`` is called by ``connectors/rasa_server.py`` (the launcher behind ``make serve``,
``make run``, the whole-stack tests and ``make bench``) before Rasa starts, and by the
profiling script. Each patch names the package version and the exact source it replaces;
when the installed package differs, the patch is left out (it runs as installed, only
slower) with a warning, and ``tests/connectors/test_rasa_patches.py`` fails so that
someone looks at it. None of them changes what is computed, only how fast.

Patches:

- **Action-server responses validated by a validator built once.** Rasa 3.6's
  ``RemoteAction._validate_action_result`` calls ``jsonschema.validate(result, schema)``
  for every response of the action server. ``jsonschema.validate`` first checks the
  schema itself against the JSON Schema meta-schema (``check_schema``), every call:
  with Rasa's events schema and jsonschema 4.17 that is about 45 ms of CPU per custom
  action, two or more per customer message, most of the Rasa process's time under load.
  The replacement checks the schema once, keeps the validator (one per action class,
  since ``action_response_format_spec`` is a static method building constant data), and
  validates every response against it exactly as ``jsonschema.validate`` does
  (``best_match`` of ``iter_errors``): an invalid response still raises the same
  ``jsonschema.ValidationError`` with Rasa's added hint, and Rasa handles it as before.
- **Event classes looked up in a table.** ``Event.resolve_by_type`` (every event read from
  the tracker store or sent by the action server) walks all subclasses of ``Event``
  recursively, with ``inspect.isabstract`` on each, per event: about 70 µs each, so a
  conversation's cost grew with its length. The replacement keeps a table from type name
  to the class Rasa's own walk returns first, rebuilt once when a name is unknown.
- **The in-memory database finds a document by ``_id`` directly** (mongomock, used when
  ``MONGODB_URI`` is unset: ``make run``, the whole-stack tests, ``make bench``). mongomock
  answers every query, ``{"_id": ...}`` included, by testing every document of the
  collection; MongoDB uses its ``_id`` index. With delivery statuses (three documents per
  customer message) that made each message dearer than the one before. A filter naming
  one plain ``_id`` (a string, an integer or an ObjectId) now tests only the document
  stored under it, with the same filter; anything else is scanned as before.
- **The ``language`` and ``bank_moves_money`` slots are worked out in the Rasa process.** Their mapping is ``custom``
  (``domain/language.yml``), so Rasa 3.6's ``ActionExtractSlots._execute_validation_action``
  calls ``action_validate_slot_mappings`` on the action server after every customer message:
  a second HTTP round trip carrying the domain and the whole session as JSON, a tracker rebuilt
  from the session's events first (about 6 ms of the Rasa process's CPU per message, measured
  with ``scripts/profile_message.py``, and 2.7 of the action server's), only for
  ``banking.language.reply_language`` and what the deployment's bank connection can do. The
  project's action (``actions.support.ValidatePredefinedSlots``) extracts nothing but those two
  and validates nothing, so it answers with the slots Rasa extracted, as they are, plus
  ``language`` when it changes and ``bank_moves_money`` when it is not what the deployment can
  do; the replacement returns exactly that, computed here with the same function and, for the
  bank, the same settings (``Settings.moves_money``). A domain without both slots custom-mapped
  goes to the action server as installed.
  ``tests/connectors/test_rasa_patches.py`` fails if the action gains another
  ``extract_``/``validate_`` method, and checks that both give the same slots.
- **A tracker's dialogue states worked out once for all policies.** Each policy (memoization,
  rules twice, TED) asks the tracker for its states, and Rasa works them out from the start of
  the session every time, about 5 ms each for a session of 200 events. The answer is kept on
  the tracker for as long as its events are the same (its number of events and its last event
  object), per set of options, and every caller gets its own copy.
- **TED's prediction worked out once per dialogue state.** TED, trained without end-to-end
  stories, reads only the last ``max_history`` states (intent, entities, slots, previous
  action, active form) and is deterministic at prediction, so the network runs once per
  distinct state sequence (the latest 4,096 are kept); a TED trained on message text runs as
  installed. With both, the Rasa process's CPU per balance question fell from 41-53 ms to
  25-34 ms (``scripts/profile_message.py -n 40``, four runs alternating, 2 cores).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

RASA_VERSION = "3.6.21"
MONGOMOCK_VERSION = "4.3.0"


@dataclass(frozen=True)
class Source:
    """A function of Rasa's as this module was written against it."""

    owner: Any  # a class or a module
    attribute: str
    sha256: str  # of inspect.getsource() in RASA_VERSION

    @property
    def name(self) -> str:
        return f"{getattr(self.owner, '__name__', self.owner)}.{self.attribute}"


@dataclass(frozen=True)
class Patch:
    """One replaced function of Rasa: where it lives, the sources it relies on, and the replacement."""

    name: str
    owner: Any
    attribute: str
    sources: tuple[Source, ...]  # the replaced function first, then any it relies on
    replacement: Callable[..., Any]
    static: bool = False  # the attribute is a staticmethod
    package: str = "rasa"
    version: str = RASA_VERSION

    def installed_problems(self) -> list[str]:
        """Why the installed package is not the one this patch was written for; empty when it is."""
        from importlib.metadata import version

        problems = []
        installed = version(self.package)
        if installed != self.version:
            problems.append(f"{self.package} is {installed}, the patch was written for {self.version}")
        for source in self.sources:
            found = source_sha256(source.owner, source.attribute)
            if found != source.sha256:
                problems.append(f"{source.name} is not the source the patch was written for (sha256 {found[:12]}…)")
        return problems


def source_sha256(owner: Any, attribute: str) -> str:
    """sha256 of the source of Rasa's own ``owner.attribute`` (the original, also once patched)."""
    function = getattr(owner, attribute)
    function = getattr(function, "__rasa_original__", function)
    return hashlib.sha256(inspect.getsource(function).encode("utf-8")).hexdigest()


# ------------------------------------------------------------ action-server responses

_validators: dict[type[Any], Any] = {}
_validators_lock = threading.Lock()


def action_response_validator(action_class: type[Any]) -> Any:
    """The jsonschema validator of ``action_class.action_response_format_spec()``, its schema checked once."""
    validator = _validators.get(action_class)
    if validator is None:
        from jsonschema.validators import validator_for

        with _validators_lock:
            validator = _validators.get(action_class)
            if validator is None:
                schema = action_class.action_response_format_spec()
                cls = validator_for(schema)  # what jsonschema.validate picks
                cls.check_schema(schema)  # what jsonschema.validate did on every call
                validator = cls(schema)
                _validators[action_class] = validator
    return validator


def validate_action_result(self: Any, result: dict[str, Any]) -> bool:
    """Rasa's ``RemoteAction._validate_action_result`` with the schema checked once, not per response."""
    from jsonschema.exceptions import best_match
    from rasa.shared.constants import DOCS_BASE_URL

    error = best_match(action_response_validator(type(self)).iter_errors(result))
    if error is not None:
        error.message += (  # Rasa's own words, as in the original
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error
    return True


# ------------------------------------------------------------ event classes by type name

_event_classes: dict[str, type] = {}  # replaced whole, never changed in place (readers take no lock)


def event_class_table(refresh: bool = False) -> dict[str, type]:
    """type name -> the first class of ``all_subclasses(Event)`` with that name: the one Rasa's loop returns."""
    global _event_classes
    if refresh or not _event_classes:
        from rasa.shared.core.events import Event
        from rasa.shared.utils.common import all_subclasses

        table: dict[str, type] = {}
        for cls in all_subclasses(Event):
            table.setdefault(cls.type_name, cls)
        _event_classes = table
    return _event_classes


def resolve_event_by_type(type_name: str, default: type | None = None) -> type | None:
    """Rasa's ``Event.resolve_by_type`` from a table instead of walking every Event subclass per event.

    An unknown name rebuilds the table once first (an Event subclass imported later is found too).
    """
    cls = event_class_table().get(type_name)
    if cls is None:
        cls = event_class_table(refresh=True).get(type_name)
    if cls is not None:
        return cls
    if type_name == "topic":
        return None  # Rasa's backwards compatibility with old TopicSet events
    if default is not None:
        return default
    raise ValueError(f"Unknown event name '{type_name}'.")


# ------------------------------------------------------------ the in-memory database

_NOT_ONE_ID = object()


def plain_id(filter: Any) -> Any:
    """The ``_id`` a query filter names by plain equality (str, int, ObjectId); else ``_NOT_ONE_ID``."""
    from bson import ObjectId

    if not isinstance(filter, dict) or "_id" not in filter:
        return _NOT_ONE_ID
    value = filter["_id"]
    if isinstance(value, (str, ObjectId)) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    return _NOT_ONE_ID


def iter_documents_by_id(self: Any, filter: Any) -> Any:
    """mongomock's ``Collection._iter_documents``, looking a plain ``_id`` up instead of testing every document."""
    from mongomock.filtering import filter_applies

    key = plain_id(filter)
    original = iter_documents_by_id.__rasa_original__  # type: ignore[attr-defined]
    if key is _NOT_ONE_ID:
        return original(self, filter)
    if self._store.is_empty:
        filter_applies(filter, {})  # mongomock validates the filter even when nothing can match
    try:
        document = self._store[key]
    except KeyError:
        return iter(())
    return (each for each in [document] if filter_applies(filter, each))


# ------------------------------------------------------------ the language slot

LOCAL_SLOTS = frozenset({"language", "bank_moves_money"})  # all that actions.support.ValidatePredefinedSlots extracts


def custom_slots(domain: Any) -> frozenset[str]:
    """Slots with a ``custom`` mapping naming no action: those ``action_validate_slot_mappings`` fills."""
    return frozenset(
        slot.name
        for slot in domain.slots
        if any(mapping.get("type") == "custom" and not mapping.get("action") for mapping in slot.mappings)
    )


@functools.cache
def deployment_moves_money() -> bool:
    """What the action server's ``banking().provider_moves_money`` says, from the same settings."""
    from banking.config import Settings

    return Settings.from_env(os.environ).moves_money


def moves_money_events(tracker: Any) -> list[Any]:
    """``SlotSet("bank_moves_money", ...)`` when the slot is not what the deployment can do, else nothing."""
    from rasa.shared.core.events import SlotSet

    moves_money = deployment_moves_money()
    return [] if tracker.get_slot("bank_moves_money") == moves_money else [SlotSet("bank_moves_money", moves_money)]


def language_events(tracker: Any, slot_events: list[Any]) -> list[Any]:
    """``SlotSet("language", ...)`` when the latest message changes the reply language, else nothing."""
    from rasa.shared.core.events import SlotSet

    from banking.language import reply_language

    current = tracker.get_slot("language")
    for event in slot_events:
        if event.key == "language":
            current = event.value
    message = tracker.latest_message
    intent = (message.intent or {}).get("name") if message is not None else None
    asked = next(tracker.get_latest_entity_values("language"), None)
    language = reply_language(intent, str(asked) if asked is not None else None,
                              (message.text if message is not None else None) or "", current)
    return [SlotSet("language", language)] if language is not None else []


async def execute_validation_action(
    self: Any, extraction_events: list[Any], output_channel: Any, nlg: Any, tracker: Any, domain: Any
) -> list[Any]:
    """Rasa's ``ActionExtractSlots._execute_validation_action`` with the project's own slots worked out here.

    What the project's ``action_validate_slot_mappings`` would answer: every extracted slot as it
    is, plus the language when it changes and ``bank_moves_money`` when it is not the deployment's.
    A domain without those slots custom-mapped goes to the action server.
    """
    from rasa.shared.core.constants import ACTION_VALIDATE_SLOT_MAPPINGS
    from rasa.shared.core.events import SlotSet

    original = execute_validation_action.__rasa_original__  # type: ignore[attr-defined]
    if ACTION_VALIDATE_SLOT_MAPPINGS not in domain.user_actions or not LOCAL_SLOTS <= custom_slots(domain):
        return await original(self, extraction_events, output_channel, nlg, tracker, domain)
    slot_events = [event for event in extraction_events if isinstance(event, SlotSet)]
    return slot_events + language_events(tracker, slot_events) + moves_money_events(tracker)


# ------------------------------------------------------------ dialogue states

_STATES_CACHE = "_project_past_states"  # attribute on the tracker: {options: (domain, length, last event, states)}


def _copy_states(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy callers may change: every state and sub-state is a new dict; the values are strings,
    numbers and tuples, which nobody changes in place."""
    return [{key: dict(sub_state) for key, sub_state in state.items()} for state in states]


def _options_key(omit_unset_slots: bool, ignore_rule_only_turns: bool,
                 rule_only_data: dict[str, Any] | None) -> tuple[Any, ...]:
    rule_only = tuple(sorted((name, tuple(values)) for name, values in (rule_only_data or {}).items()))
    return bool(omit_unset_slots), bool(ignore_rule_only_turns), rule_only


def past_states(self: Any, domain: Any, omit_unset_slots: bool = False, ignore_rule_only_turns: bool = False,
                rule_only_data: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rasa's ``DialogueStateTracker.past_states``, worked out once per tracker, domain and events.

    Every policy asks the tracker it is given for its states, and Rasa works them out from the
    first event of the session each time. The answer is kept on the tracker under its options,
    its domain, its number of events and its last event (the same object), and each caller gets
    its own copy; a tracker that gained, lost or replaced an event is worked out again.
    Trackers of other classes (training's) are left as they are.
    """
    original = past_states.__rasa_original__  # type: ignore[attr-defined]
    from rasa.shared.core.trackers import DialogueStateTracker

    if type(self) is not DialogueStateTracker:
        return original(self, domain, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
    key = _options_key(omit_unset_slots, ignore_rule_only_turns, rule_only_data)
    events = self.events
    length = len(events)
    last = events[-1] if length else None
    cache: dict[tuple[Any, ...], tuple[Any, int, Any, list[dict[str, Any]]]] = self.__dict__.setdefault(
        _STATES_CACHE, {})
    kept = cache.get(key)
    if kept is not None and kept[0] is domain and kept[1] == length and kept[2] is last:
        return _copy_states(kept[3])
    states = original(self, domain, omit_unset_slots, ignore_rule_only_turns, rule_only_data)
    cache[key] = (domain, length, last, _copy_states(states))
    return states


# ------------------------------------------------------------ TED's predictions

TED_PREDICTIONS_KEPT = 4096  # per policy; a dialogue state is a few hundred bytes, a prediction one float per action
_TED_CACHE = "_project_predictions"  # attribute on the policy: OrderedDict {frozen states: PolicyPrediction}


def _copy_prediction(prediction: Any) -> Any:
    """A prediction the ensemble may change (it zeroes a rejected action's probability in place)."""
    kept = copy.copy(prediction)
    kept.probabilities = list(prediction.probabilities)
    kept.events = list(prediction.events)
    kept.optional_events = list(prediction.optional_events)
    kept.diagnostic_data = dict(prediction.diagnostic_data)
    if prediction.action_metadata:
        kept.action_metadata = dict(prediction.action_metadata)
    return kept


def ted_predict_action_probabilities(self: Any, tracker: Any, domain: Any, rule_only_data: dict[str, Any] | None = None,
                                     precomputations: Any = None, **kwargs: Any) -> Any:
    """Rasa's ``TEDPolicy.predict_action_probabilities``, run once per dialogue state seen.

    TED, as trained here (no end-to-end stories), reads nothing of a tracker but the last
    ``max_history`` dialogue states its featurizer builds (intents, entities, slots, previous
    actions, the active form), and its network has no randomness at prediction. So the same
    states always give the same prediction, and most customers pass through the same few
    hundred. The prediction for each is kept (the last ``TED_PREDICTIONS_KEPT``), under exactly
    the states TED would featurise; a policy trained on message text (end to end), a state
    carrying text, or a model not loaded is run as installed.
    """
    from rasa.core.policies.policy import SupportedData
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.nlu.constants import ACTION_TEXT, TEXT

    original = ted_predict_action_probabilities.__rasa_original__  # type: ignore[attr-defined]
    if self.model is None or self.only_e2e or TEXT in self.fake_features:
        return original(self, tracker, domain, rule_only_data, precomputations, **kwargs)
    ml_data = self.supported_data() == SupportedData.ML_DATA
    states = self.featurizer.prediction_states(
        [tracker], domain, use_text_for_last_user_input=False, ignore_rule_only_turns=ml_data,
        rule_only_data=rule_only_data, ignore_action_unlikely_intent=ml_data,
    )[0]
    if any(TEXT in sub_state or ACTION_TEXT in sub_state for state in states for sub_state in state.values()):
        return original(self, tracker, domain, rule_only_data, precomputations, **kwargs)
    key = (id(domain), tuple(DialogueStateTracker.freeze_current_state(state) for state in states))
    kept: OrderedDict[Any, Any] = self.__dict__.setdefault(_TED_CACHE, OrderedDict())
    prediction = kept.get(key)
    if prediction is not None:
        kept.move_to_end(key)
        return _copy_prediction(prediction)
    prediction = original(self, tracker, domain, rule_only_data, precomputations, **kwargs)
    kept[key] = _copy_prediction(prediction)
    if len(kept) > TED_PREDICTIONS_KEPT:
        kept.popitem(last=False)
    return prediction


def _patches() -> list[Patch]:
    from mongomock.collection import Collection
    from rasa.core.actions.action import ActionExtractSlots, RemoteAction
    from rasa.core.featurizers.tracker_featurizers import MaxHistoryTrackerFeaturizer
    from rasa.core.policies.policy import Policy
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import Event
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.utils import common

    return [
        Patch(
            name="action responses validated by a validator built once",
            owner=RemoteAction,
            attribute="_validate_action_result",
            sources=(
                Source(RemoteAction, "_validate_action_result",
                       "f8cdb4be6812396167ced74161b2ccd65c5ea676ad86d7d359d8c322d9d8dc42"),
                Source(RemoteAction, "action_response_format_spec",
                       "091b74aa3738d1262cf3c028386aaf9dd4f0d5c1374b62392411d70a79104a46"),
            ),
            replacement=validate_action_result,
        ),
        Patch(
            name="event classes looked up by type name in a table",
            owner=Event,
            attribute="resolve_by_type",
            sources=(
                Source(Event, "resolve_by_type", "b5cf570fa7f286c7059ec73d8880528d03a78b28cf4e80285a46079c0fa65968"),
                Source(common, "all_subclasses", "28c2e6df9c15daea296f630b83d0b2391636581164056082458a32647d6761d1"),
            ),
            replacement=resolve_event_by_type,
            static=True,
        ),
        Patch(
            name="in-memory database documents found by _id directly",
            owner=Collection,
            attribute="_iter_documents",
            sources=(Source(Collection, "_iter_documents",
                            "aed52162ed03559fddca97d867234e671021be276d71a137e5c23562af35b284"),),
            replacement=iter_documents_by_id,
            package="mongomock",
            version=MONGOMOCK_VERSION,
        ),
        Patch(
            name="the language and bank_moves_money slots worked out in the Rasa process",
            owner=ActionExtractSlots,
            attribute="_execute_validation_action",
            sources=(Source(ActionExtractSlots, "_execute_validation_action",
                            "3f1249f61cf252e0dec3895a635d20822a110269c6f37c58ac501700a6a311f9"),),
            replacement=execute_validation_action,
        ),
        Patch(
            name="a tracker's dialogue states worked out once for all policies",
            owner=DialogueStateTracker,
            attribute="past_states",
            sources=(
                Source(DialogueStateTracker, "past_states",
                       "5463eefb5c69d27f82cdc7eca84e23b4b82851e9a5ff575bd02447d4d987103b"),
                Source(Domain, "states_for_tracker_history",
                       "035111ce73ac90ba50e143abf556f924af07d9f452893f5a96a62895d44df8b7"),
                Source(DialogueStateTracker, "generate_all_prior_trackers",
                       "a1f6954347b52649a7b1054741338997d2369197d91acb2eab7f6b11d3855ed1"),
            ),
            replacement=past_states,
        ),
        Patch(
            name="TED's prediction worked out once per dialogue state",
            owner=TEDPolicy,
            attribute="predict_action_probabilities",
            sources=(
                Source(TEDPolicy, "predict_action_probabilities",
                       "4a5d484262f5d132b3d598f7a192cdd6774c8cfe9b5d8db1ddaea89f736ff9f6"),
                Source(TEDPolicy, "_featurize_tracker",
                       "f2c6208ee741cc2d96c4d67f2532eacdfe093ab1e0f138daef060220a2dfe8b4"),
                Source(Policy, "_featurize_for_prediction",
                       "6de9aeb8fa531c414c4ebc0c01da90a41ff7528c619fbf91fd9f82a74dde8e02"),
                Source(MaxHistoryTrackerFeaturizer, "prediction_states",
                       "451caf09a389e8719ad4ee38eb97dfd10b4743cd3928f1f9569779394fd3462e"),
            ),
            replacement=ted_predict_action_probabilities,
        ),
    ]


# ------------------------------------------------------------ applying

_applied: list[str] = []
_apply_lock = threading.Lock()


def apply() -> list[str]:
    """Install every patch that matches the installed Rasa (once); the names of those in force."""
    with _apply_lock:
        if _applied:
            return list(_applied)
        for patch in _patches():
            problems = patch.installed_problems()
            if problems:
                logger.warning("Rasa patch %r left out, Rasa runs as installed: %s", patch.name, "; ".join(problems))
                continue
            original = getattr(patch.owner, patch.attribute)
            original = getattr(original, "__rasa_original__", original)  # never wrap a wrapper
            patch.replacement.__rasa_original__ = original  # type: ignore[attr-defined]
            replacement = _wrapped(patch.replacement, original)
            setattr(patch.owner, patch.attribute, staticmethod(replacement) if patch.static else replacement)
            _applied.append(patch.name)
        return list(_applied)


def applied() -> list[str]:
    """The names of the patches in force in this process."""
    return list(_applied)


def _wrapped(replacement: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    def patched(*args: Any, **kwargs: Any) -> Any:
        return replacement(*args, **kwargs)

    patched.__name__ = original.__name__
    patched.__qualname__ = original.__qualname__
    patched.__doc__ = replacement.__doc__
    patched.__rasa_original__ = original  # type: ignore[attr-defined]
    patched.__wrapped_patch__ = replacement  # type: ignore[attr-defined]
    return patched
