"""Synthetic call transcripts with outcome labels, written for these tests (no outside data):
each label has its own openings, middles and closings, shuffled with shared small talk, so a
classifier has to find the words that matter."""

from __future__ import annotations

import random

SMALL_TALK = [
    "thanks for calling harbor home insurance this is ana how can i help",
    "sure let me pull that up for you",
    "can i get your name please",
    "okay one moment while i check",
    "the weather has been terrible this week",
    "alright i see your details here",
    "is this the best number to reach you",
    "great thank you",
]

PHRASES = {
    "sale": [
        "i'd like to go ahead and buy the policy today",
        "let's do the premium plan with the lower deductible",
        "i can take your card details now for the first month",
        "your coverage starts tomorrow morning",
        "you'll get the policy documents by email",
        "i'm ready to sign up",
    ],
    "quote_requested": [
        "how much would it cost to insure a three bedroom house",
        "can you give me an estimate for renters coverage",
        "i'm comparing prices from a few companies",
        "what would the monthly premium be",
        "could you email me the numbers so i can think about it",
        "i just want to know the price for now",
    ],
    "appointment_booked": [
        "can someone come out to inspect the roof",
        "does thursday at two work for the adjuster visit",
        "i'd like to schedule a meeting with an agent",
        "we'll send a reminder the day before",
        "the inspector will call when they're on the way",
        "what times do you have available next week",
    ],
    "support": [
        "i need help with an existing claim",
        "my payment didn't go through last month",
        "how do i update the address on my policy",
        "i can't log in to the online account",
        "i want to add my new car to the policy",
        "when will my claim be processed",
    ],
    "not_a_lead": [
        "i'm calling from a marketing company about your advertising",
        "are you hiring right now",
        "i think i dialed the wrong business",
        "do you sell car parts",
        "i'm looking for the hardware store next door",
        "is this the dentist's office",
    ],
}


def examples(per_label: int, seed: int = 1) -> list[tuple[str, str]]:
    """`per_label` transcripts per label, in a fixed shuffled order."""
    rand = random.Random(seed)
    out: list[tuple[str, str]] = []
    for label, phrases in PHRASES.items():
        for _ in range(per_label):
            said = rand.sample(phrases, 2) + rand.sample(SMALL_TALK, 3)
            rand.shuffle(said)
            out.append((". ".join(said), label))
    rand.shuffle(out)
    return out


def long_transcript(minutes: int = 10, seed: int = 3) -> list[tuple[str, str]]:
    """(speaker, text) lines for a call of about `minutes` minutes (~150 words a minute)."""
    rand = random.Random(seed)
    pool = SMALL_TALK + [p for phrases in PHRASES.values() for p in phrases]
    lines: list[tuple[str, str]] = [("agent", "thank you for calling this call may be recorded")]
    words = 0
    while words < minutes * 150:
        text = rand.choice(pool)
        lines.append((rand.choice(["agent", "caller"]), text))
        words += len(text.split())
    lines.append(("agent", "is there anything else i can help with"))
    return lines
