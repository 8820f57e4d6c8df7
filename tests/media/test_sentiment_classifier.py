"""The trainable sentiment classifier on MiniLM embeddings, beside the VADER baseline, with the
committed sample of human-rated tweets and review snippets (tests/fixtures/sentiment)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from loopline.cli import main
from loopline.media.engine import MediaSettings, sentiment_factory
from loopline.media.sentiment import SentimentModelMissing, TrainedSentiment, VaderScorer
from loopline.text.classifier import SoftmaxTextModel, load_examples, metrics

DATA = Path(__file__).parents[1] / "fixtures" / "sentiment"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sentiment") / "model.npz"
    assert main(["train", "sentiment", "--data", str(DATA / "train.jsonl"), "--out", str(out)]) == 0
    return out


def test_the_trained_model_beats_chance_on_held_out_lines_and_vader_stays_the_baseline(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert (
        main(["eval", "sentiment", "--model", str(trained), "--data", str(DATA / "test.jsonl")])
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    # Three balanced labels: chance is 0.33. Measured 0.50 (300 training lines) and VADER 0.61
    # (its lexicon was validated on these very ratings).
    assert report["model"]["accuracy"] >= 0.42
    assert report["vader"]["accuracy"] >= 0.5
    assert report["model"]["n"] == 150


def test_scores_are_positive_minus_negative_and_labels_the_likeliest(trained: Path) -> None:
    scorer = TrainedSentiment(trained)
    texts = ["I love this, thank you so much!", "This is awful, I want a refund now.", ""]
    judged = scorer.judge(texts)
    # Three hundred tweets and reviews make a weak judge of speech: the order holds, and the
    # complaint is negative.
    assert judged[0][1] > 0 > judged[1][1]
    assert judged[1][0] == "negative"
    assert judged[2] == ("neutral", 0.0)
    assert all(-1.0 <= score <= 1.0 for _, score in judged)


def test_config_chooses_the_scorer(trained: Path) -> None:
    assert isinstance(sentiment_factory(MediaSettings())(), VaderScorer)
    chosen = sentiment_factory(MediaSettings(sentiment="classifier", sentiment_model=str(trained)))
    assert isinstance(chosen(), TrainedSentiment)


def test_a_missing_or_foreign_model_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SentimentModelMissing, match="loopline train sentiment"):
        TrainedSentiment(tmp_path / "none.npz")
    foreign = tmp_path / "intent.npz"
    SoftmaxTextModel(
        ["billing", "sales"], np.zeros((384, 2), np.float32), np.zeros(2, np.float32)
    ).save(foreign)
    with pytest.raises(SentimentModelMissing, match="not a sentiment model"):
        TrainedSentiment(foreign)


def test_training_refuses_labels_that_are_not_sentiment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "intents.jsonl"
    data.write_text('{"text": "pay my bill", "label": "billing"}\n{"text": "hi", "label": "x"}\n')
    assert main(["train", "sentiment", "--data", str(data), "--out", str(tmp_path / "m.npz")]) == 2
    assert "labels must be" in capsys.readouterr().err
    assert not (tmp_path / "m.npz").exists()


def test_vader_judges_like_its_score() -> None:
    texts, labels = load_examples(DATA / "test.jsonl")
    vader = VaderScorer()
    judged = vader.judge(texts[:20])
    assert [s for _, s in judged] == [vader.score(t) for t in texts[:20]]
    assert metrics(labels[:20], [label for label, _ in judged])["n"] == 20
