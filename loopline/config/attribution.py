"""The `attribution:` section: outcome labels and rules, QA scorecard, conversions, destinations.

Every field has a default, so a deployment file without the section still validates and gets
the stock labels, rules and scorecard with no conversions and no destinations. Credentials are
never written here: a destination names the environment variable that holds each one.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_NAME = r"^[A-Za-z0-9_.-]+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutcomeRule(_Strict):
    """A rule that names an outcome when all of its conditions hold.

    Of all the rules that hold, the one with the highest confidence wins (the first on a tie).
    """

    label: str
    answered: bool | None = None
    min_duration_s: float | None = Field(default=None, ge=0)
    max_duration_s: float | None = Field(default=None, ge=0)
    end_reasons: list[str] = Field(default_factory=list)
    # Any one of these, as whole words and case-insensitive, in what `speaker` said.
    phrases: list[str] = Field(default_factory=list)
    speaker: Literal["caller", "agent", "any"] = "any"
    confidence: float = Field(default=0.7, ge=0, le=1)


class ClassifierConfig(_Strict):
    # A model file written by `loopline train outcome`; none: the rules alone decide.
    model_path: str | None = None
    # The model's answer replaces the rules' only when it is at least this sure and surer.
    min_confidence: float = Field(default=0.6, ge=0, le=1)


class ConversionRule(_Strict):
    outcome: str
    name: str = Field(min_length=1, max_length=100)
    value: float = Field(default=0.0, ge=0)  # when the outcome carries no value
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    # Outcomes that no person confirmed make a conversion only when the classifier or the
    # rules are at least this sure.
    min_confidence: float = Field(default=0.0, ge=0, le=1)
    destinations: list[str] = Field(default_factory=list)  # empty: every destination


class _Destination(_Strict):
    name: str = Field(min_length=1, pattern=_NAME)
    enabled: bool = True
    url: str | None = None  # the endpoint; each kind has the platform's own as default
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_base_s: float = Field(default=2.0, gt=0)
    backoff_max_s: float = Field(default=3600.0, gt=0)
    batch_size: int | None = Field(default=None, ge=1)  # none: the platform's own limit


class GoogleAdsDestination(_Destination):
    kind: Literal["google_ads"]
    # datamanager: requests to the Data Manager API; csv: the offline-conversions upload file
    # POSTed to `url` (a scheduled-upload relay), also served at /v1/exports/{name}.csv.
    mode: Literal["datamanager", "csv"] = "datamanager"
    customer_id: str = Field(default="0", pattern=r"^[0-9-]+$")
    login_customer_id: str | None = Field(default=None, pattern=r"^[0-9-]+$")
    # Conversion name -> conversion action id (Data Manager's product destination id).
    conversion_actions: dict[str, str] = Field(default_factory=dict)
    timezone: str = "UTC"  # the CSV's `Parameters:TimeZone=` and its times
    access_token_env: str = "GOOGLE_ADS_ACCESS_TOKEN"
    # Upload conversions as calls (caller id) when the visitor left no click id.
    call_conversions: bool = True

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value


class MetaDestination(_Destination):
    kind: Literal["meta"]
    pixel_id: str = Field(pattern=r"^[0-9]+$")
    access_token_env: str = "META_CAPI_ACCESS_TOKEN"
    api_version: str = Field(default="v21.0", pattern=r"^v[0-9]+\.[0-9]+$")
    test_event_code: str | None = None
    event_names: dict[str, str] = Field(default_factory=dict)  # conversion name -> Meta event


class Ga4Destination(_Destination):
    kind: Literal["ga4"]
    measurement_id: str = Field(pattern=r"^G-[A-Z0-9]+$")
    api_secret_env: str = "GA4_API_SECRET"
    event_names: dict[str, str] = Field(default_factory=dict)


class WebhookDestination(_Destination):
    kind: Literal["webhook"]
    url: str = Field(min_length=8)
    secret_env: str = "LOOPLINE_WEBHOOK_SECRET"


Destination = Annotated[
    GoogleAdsDestination | MetaDestination | Ga4Destination | WebhookDestination,
    Field(discriminator="kind"),
]

QaKind = Literal[
    "greeting",
    "disclosure",
    "identity_before_account",
    "prohibited",
    "resolution",
    "hold_etiquette",
]


class QaItem(_Strict):
    """One scorecard item, scored from what the agent said."""

    id: str = Field(pattern=_NAME)
    title: str
    kind: QaKind
    phrases: list[str] = Field(min_length=1)
    # identity_before_account: phrases that reveal account details;
    # hold_etiquette: phrases that thank the caller after the hold.
    second_phrases: list[str] = Field(default_factory=list)
    # hold_etiquette: phrases that put the caller on hold.
    trigger_phrases: list[str] = Field(default_factory=list)
    within_s: float | None = Field(default=None, gt=0)  # from the agent's first words
    weight: float = Field(default=1.0, gt=0)


DEFAULT_LABELS = [
    "appointment_booked",
    "quote_requested",
    "sale",
    "support",
    "not_a_lead",
    "spam",
    "missed",
]


def _default_rules() -> list[OutcomeRule]:
    return [
        OutcomeRule(label="missed", answered=False, confidence=0.99),
        OutcomeRule(
            label="spam",
            phrases=["wrong number", "stop calling", "remove me from your list", "robocall"],
            confidence=0.8,
        ),
        OutcomeRule(label="spam", answered=True, max_duration_s=8, confidence=0.6),
        OutcomeRule(
            label="sale",
            phrases=[
                "payment went through",
                "your policy is active",
                "you're all signed up",
                "welcome aboard",
                "i'll take it",
                "let's go ahead with",
            ],
            confidence=0.75,
        ),
        OutcomeRule(
            label="appointment_booked",
            phrases=["booked you in", "your appointment is", "scheduled you for", "see you on"],
            confidence=0.75,
        ),
        OutcomeRule(
            label="quote_requested",
            phrases=["a quote", "how much would", "send you a quote", "price for"],
            confidence=0.6,
        ),
        OutcomeRule(
            label="support",
            phrases=["my claim", "my account", "my bill", "my policy", "not working"],
            speaker="caller",
            confidence=0.55,
        ),
    ]


def _default_qa() -> list[QaItem]:
    return [
        QaItem(
            id="greeting",
            title="Greeting",
            kind="greeting",
            phrases=[
                "thank you for calling",
                "thanks for calling",
                "good morning",
                "good afternoon",
                "good evening",
                "this is",
            ],
            within_s=15,
        ),
        QaItem(
            id="recording_disclosure",
            title="Recording disclosure",
            kind="disclosure",
            phrases=[
                "call may be recorded",
                "call is being recorded",
                "call is recorded",
                "recorded for quality",
            ],
            within_s=60,
        ),
        QaItem(
            id="identity_verified",
            title="Identity verified before account details",
            kind="identity_before_account",
            phrases=[
                "verify your",
                "date of birth",
                "confirm your",
                "security question",
                "last four digits",
            ],
            second_phrases=[
                "your balance",
                "your account number",
                "your policy number is",
                "card ending in",
                "amount due",
            ],
        ),
        QaItem(
            id="no_prohibited",
            title="No prohibited phrases",
            kind="prohibited",
            phrases=[
                "guaranteed approval",
                "shut up",
                "not my problem",
                "calm down",
                "that's not my job",
            ],
            weight=2.0,
        ),
        QaItem(
            id="resolution",
            title="Resolution offered",
            kind="resolution",
            phrases=[
                "anything else i can help",
                "you're all set",
                "i've updated",
                "i have updated",
                "i'll send you",
                "i can offer",
                "i've booked",
                "is there anything else",
            ],
        ),
        QaItem(
            id="hold_etiquette",
            title="Hold etiquette",
            kind="hold_etiquette",
            phrases=[
                "may i place you on hold",
                "is it okay if i put you on hold",
                "do you mind if i put you on hold",
                "can i put you on hold",
            ],
            trigger_phrases=["on hold", "hold for a moment", "hold please"],
            second_phrases=[
                "thank you for holding",
                "thanks for holding",
                "thank you for waiting",
                "thanks for waiting",
            ],
        ),
    ]


class AttributionConfig(_Strict):
    labels: list[str] = Field(default_factory=lambda: list(DEFAULT_LABELS), min_length=1)
    rules: list[OutcomeRule] = Field(default_factory=_default_rules)
    default_label: str = "not_a_lead"
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    conversions: list[ConversionRule] = Field(default_factory=list)
    destinations: list[Destination] = Field(default_factory=list)
    qa: list[QaItem] = Field(default_factory=_default_qa)
    # After a call ends, wait this long for its last transcript lines before classifying.
    settle_s: float = Field(default=2.0, ge=0, le=600)
    # A conversion from an outcome no person confirmed waits this long for the agent's
    # disposition, which replaces it.
    disposition_grace_s: float = Field(default=120.0, ge=0)
    timezone: str = "UTC"  # KPIs count days in this zone
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")

    @model_validator(mode="after")
    def _references(self) -> AttributionConfig:
        labels = set(self.labels)
        problems: list[str] = []
        if len(labels) != len(self.labels):
            problems.append("attribution.labels: duplicate label")
        if self.default_label not in labels:
            problems.append(f"attribution.default_label: unknown label {self.default_label!r}")
        for i, rule in enumerate(self.rules):
            if rule.label not in labels:
                problems.append(f"attribution.rules[{i}].label: unknown label {rule.label!r}")
        names = [d.name for d in self.destinations]
        if len(set(names)) != len(names):
            problems.append("attribution.destinations: duplicate destination name")
        for i, conv in enumerate(self.conversions):
            if conv.outcome not in labels:
                problems.append(
                    f"attribution.conversions[{i}].outcome: unknown label {conv.outcome!r}"
                )
            for dest in conv.destinations:
                if dest not in names:
                    problems.append(
                        f"attribution.conversions[{i}].destinations: unknown destination {dest!r}"
                    )
        qa_ids = [q.id for q in self.qa]
        if len(set(qa_ids)) != len(qa_ids):
            problems.append("attribution.qa: duplicate item id")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def destination(self, name: str) -> Destination | None:
        return next((d for d in self.destinations if d.name == name), None)
