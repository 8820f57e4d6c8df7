"""The journey before the call: web sessions, tracking numbers, pre-call intent."""

from loopline.journey.base import IntentScorer, JourneyLookup, NoIntent, NoJourney

__all__ = ["IntentScorer", "JourneyLookup", "NoIntent", "NoJourney"]
