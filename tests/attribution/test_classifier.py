"""The trainable transcript classifier: it learns a team's outcomes from labelled calls,
round-trips through its file, and `loopline train outcome` / `eval outcome` drive it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopline.attribution.classifier import OutcomeModel, evaluate, tokens, train
from loopline.attribution.cli import split_holdout
from loopline.cli import main
from tests.attribution.corpus import examples


def test_tokens_are_words_and_word_pairs() -> None:
    assert tokens("I’ll take it!") == ["i'll", "take", "it", "i'll take", "take it"]


def test_it_learns_outcomes_from_sixty_calls_each() -> None:
    data = examples(75)
    texts, labels = [t for t, _ in data], [lab for _, lab in data]
    train_t, train_l, test_t, test_l = split_holdout(texts, labels, 0.2)
    model = train(train_t, train_l)
    result = evaluate(model, test_t, test_l)
    assert result.n == 75  # 15 held out of each of 5 labels
    assert result.accuracy >= 0.9 and result.macro_f1 >= 0.9
    guess = model.predict("how much would it be to insure my house, just the price for now")
    assert guess.label == "quote_requested" and guess.ranked[0][1] == guess.confidence


def test_the_model_file_round_trips(tmp_path: Path) -> None:
    data = examples(20, seed=5)
    model = train([t for t, _ in data], [lab for _, lab in data])
    path = tmp_path / "outcome.json"
    model.save(path)
    again = OutcomeModel.load(path)
    text = "i'd like to go ahead and buy the policy today"
    assert again.predict(text).label == model.predict(text).label == "sale"
    assert abs(again.predict(text).confidence - model.predict(text).confidence) < 1e-3


@pytest.mark.parametrize(
    ("texts", "labels"),
    [([], []), (["a"], ["x"]), (["a", "b"], ["x", "x"]), (["a"], ["x", "y"])],
)
def test_training_refuses_what_it_cannot_learn_from(texts: list[str], labels: list[str]) -> None:
    with pytest.raises(ValueError):
        train(texts, labels)


def test_cli_trains_and_evaluates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "calls.jsonl"
    data.write_text("\n".join(json.dumps({"text": t, "label": lab}) for t, lab in examples(50)))
    model = tmp_path / "model.json"
    assert main(["train", "outcome", "--data", str(data), "--out", str(model)]) == 0
    out = capsys.readouterr().out
    assert "held out 50 of 250" in out and f"wrote {model}" in out
    assert main(["eval", "outcome", "--data", str(data), "--model", str(model)]) == 0
    accuracy = float(capsys.readouterr().out.split()[1])
    assert accuracy >= 0.95
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x"}\n')
    assert main(["train", "outcome", "--data", str(bad), "--out", str(model)]) == 2
