"""The journey's command-line verbs: `simulate-call --to`, `train intent`, `eval intent`.

`register(sub)` adds them to the `loopline` parser; each imports what it needs only when run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import sys
from collections.abc import Mapping


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's webhook signature: HMAC-SHA1 over the URL and the sorted form pairs."""
    payload = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


async def place_call(
    base_url: str, auth_token: str, to: str, caller: str, call_sid: str | None = None
) -> tuple[int, str]:
    """Post a signed inbound-call webhook to a node, as Twilio would; (status, TwiML)."""
    import httpx

    url = base_url.rstrip("/") + "/twilio/voice"
    params = {
        "CallSid": call_sid or "CA" + secrets.token_hex(16),
        "AccountSid": os.environ.get("TWILIO_ACCOUNT_SID", "AC" + "0" * 32),
        "From": caller,
        "To": to,
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    headers = {"X-Twilio-Signature": twilio_signature(auth_token, url, params)}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(url, data=params, headers=headers)
    return response.status_code, response.text


def cmd_simulate_call(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("TWILIO_AUTH_TOKEN")
    if not token:
        print("simulate-call: set TWILIO_AUTH_TOKEN (the node's) or pass --token", file=sys.stderr)
        return 2
    status, body = asyncio.run(place_call(args.url, token, args.to, args.caller))
    print(body)
    return 0 if status == 200 else 1


def cmd_train_intent(args: argparse.Namespace) -> int:
    from loopline.journey.classifier import load_examples, train_and_save
    from loopline.text.finetune import TuneSettings

    texts, labels = load_examples(args.data)
    tune = TuneSettings()
    if args.epochs is not None:
        tune.epochs = args.epochs
    if args.layers is not None:
        tune.layers = args.layers
    report = train_and_save(
        texts, labels, args.out, embed_c=args.embed_c, text_c=args.text_c, tune=tune
    )
    print(json.dumps(report, indent=2))
    return 0


def cmd_eval_intent(args: argparse.Namespace) -> int:
    from loopline.journey.classifier import evaluate_file

    print(json.dumps(evaluate_file(args.model, args.data), indent=2))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    if "simulate-call" not in sub.choices:
        sim = sub.add_parser("simulate-call", help="place a signed simulated inbound call")
        sim.add_argument("--to", required=True, help="the dialed number (E.164)")
        sim.add_argument("--from", dest="caller", default="+14085550177")
        sim.add_argument("--url", default="http://127.0.0.1:8080", help="the node's base URL")
        sim.add_argument("--token", help="the node's TWILIO_AUTH_TOKEN (default: environment)")
        sim.set_defaults(func=cmd_simulate_call)

    train = sub.choices.get("train") or sub.add_parser("train", help="train a model")
    train_sub = _subparsers(train, "model")
    intent = train_sub.add_parser("intent", help="train the intent text classifier")
    intent.add_argument("--data", required=True, help='JSON lines {"text": ..., "label": ...}')
    intent.add_argument("--out", required=True, help="the model file to write (.npz)")
    intent.add_argument(
        "--embed-c", type=float, help="the embeddings' inverse regularisation (default: by CV)"
    )
    intent.add_argument(
        "--text-c", type=float, help="the n-grams' inverse regularisation (default: by CV)"
    )
    intent.add_argument(
        "--epochs",
        type=int,
        help="epochs of fine-tuning the encoder's top layers (default 3; 0: keep it frozen)",
    )
    intent.add_argument(
        "--layers",
        type=int,
        choices=(1, 2, 3, 4),
        help="how many of the encoder's top layers learn (default 1)",
    )
    intent.set_defaults(func=cmd_train_intent)

    ev = sub.choices.get("eval") or sub.add_parser("eval", help="evaluate a model")
    eval_sub = _subparsers(ev, "model")
    ev_intent = eval_sub.add_parser("intent", help="accuracy and F1 of an intent model")
    ev_intent.add_argument("--model", required=True)
    ev_intent.add_argument("--data", required=True)
    ev_intent.set_defaults(func=cmd_eval_intent)


def _subparsers(
    parser: argparse.ArgumentParser, dest: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """The parser's subcommands, reusing them when another room already added its own
    (`train sentiment` beside `train intent`): argparse allows one subparsers action."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest=dest, required=True)
