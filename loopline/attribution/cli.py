"""Command line for the attribution room: `loopline outbox`, `loopline spend import`,
`loopline train outcome` and `loopline eval outcome`. `register(sub)` adds them."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def register(sub: Any) -> None:
    """Add the attribution commands to the `loopline` subcommands (`sub`)."""
    outbox = sub.add_parser("outbox", help="conversion deliveries: list them, replay dead letters")
    outbox.add_argument("--config", default="config/loopline.yaml")
    actions = outbox.add_subparsers(dest="outbox_action")
    listing = actions.add_parser("list", help="show outbox rows (default: dead letters)")
    listing.add_argument(
        "--status", default="dead", help="pending|sending|delivered|dead|skipped|all"
    )
    listing.add_argument("--destination")
    listing.add_argument("--limit", type=int, default=50)
    replay = actions.add_parser("replay", help="put dead letters back in the queue")
    replay.add_argument("--id", type=int, action="append", dest="ids", help="an outbox row id")
    replay.add_argument("--destination")
    replay.add_argument("--all", action="store_true", help="every dead letter")
    for action in (listing, replay):
        # Accepted after the action too; the outbox's own --config holds the default.
        action.add_argument("--config", default=argparse.SUPPRESS)
    outbox.set_defaults(
        func=cmd_outbox, outbox_action="list", status="dead", destination=None, limit=50
    )

    spend = sub.add_parser("spend", help="ad spend by day, source and campaign")
    spend_actions = spend.add_subparsers(dest="spend_action", required=True)
    imports = spend_actions.add_parser("import", help="import a spend CSV")
    imports.add_argument("file")
    imports.add_argument("--config", default="config/loopline.yaml")
    imports.set_defaults(func=cmd_spend_import)

    for verb, helptext, func in (
        ("train", "train a model", cmd_train_outcome),
        ("eval", "evaluate a model", cmd_eval_outcome),
    ):
        parent = sub.choices.get(verb) or sub.add_parser(verb, help=helptext)
        kinds = _subparsers(parent, f"{verb}_kind")
        outcome = kinds.add_parser("outcome", help=f"{verb} the call-outcome transcript classifier")
        outcome.add_argument(
            "--data", required=True, help='JSON lines: {"text": ..., "label": ...}'
        )
        if verb == "train":
            outcome.add_argument("--out", required=True, help="where to write the model (JSON)")
            outcome.add_argument(
                "--holdout", type=float, default=0.2, help="share kept to evaluate"
            )
        else:
            outcome.add_argument("--model", required=True)
        outcome.set_defaults(func=func)


def _subparsers(parser: argparse.ArgumentParser, dest: str) -> Any:
    """The parser's subcommands, made if it has none yet (another room may own `train`)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest=dest, required=True)


def _run(body: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(body())


def _store_for(config: str) -> tuple[Any, Any] | None:
    from loopline.config.settings import ConfigError, load_settings

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        print(f"{exc.source}: configuration refused", file=sys.stderr)
        for line in exc.errors:
            print(f"  {line}", file=sys.stderr)
        return None
    from loopline.attribution.store import AttributionStore

    return settings, AttributionStore(settings.records_url)


def cmd_outbox(args: argparse.Namespace) -> int:
    found = _store_for(args.config)
    if found is None:
        return 2
    settings, store = found
    from loopline.domain.clock import SystemClock
    from loopline.records import migrate

    async def body() -> int:
        await migrate(settings.records_url)
        await store.start()
        try:
            if args.outbox_action == "replay":
                if not (args.ids or args.destination or args.all):
                    print(
                        "say which: --id N (repeatable), --destination NAME or --all",
                        file=sys.stderr,
                    )
                    return 2
                count = await store.replay(
                    now=SystemClock().now(), row_ids=args.ids, destination=args.destination
                )
                print(f"replayed {count} dead letter(s); a running node sends them within seconds")
                return 0
            counts = await store.counts()
            for dest, by_status in sorted(counts.items()):
                summary = ", ".join(f"{k} {v}" for k, v in sorted(by_status.items()))
                print(f"{dest}: {summary}")
            status = None if args.status == "all" else args.status
            entries = await store.entries(
                status=status, destination=args.destination, limit=args.limit
            )
            for e in entries:
                money = f"{e.value:.2f} {e.currency}"
                print(
                    f"#{e.row_id}\t{e.destination}\t{e.status}\t{e.name}\t{money}"
                    f"\tcall {e.call_id}\ttries {e.attempts}\t{e.last_error or ''}"
                )
            if not entries:
                print(f"no {args.status} rows")
            return 0
        finally:
            await store.close()

    return _run(body)


def cmd_spend_import(args: argparse.Namespace) -> int:
    from loopline.attribution.spend import SpendError, parse_csv

    try:
        lines = parse_csv(Path(args.file).read_text(encoding="utf-8-sig"))
    except OSError as exc:
        print(f"{args.file}: cannot read it: {exc.strerror}", file=sys.stderr)
        return 2
    except SpendError as exc:
        print(f"{args.file}: refused ({len(exc.problems)} problem(s)):", file=sys.stderr)
        for problem in exc.problems[:20]:
            print(f"  {problem}", file=sys.stderr)
        return 2
    found = _store_for(args.config)
    if found is None:
        return 2
    settings, store = found
    from loopline.domain.clock import SystemClock
    from loopline.records import migrate

    async def body() -> int:
        await migrate(settings.records_url)
        await store.start()
        try:
            count = await store.upsert_spend([line.row() for line in lines], SystemClock().now())
        finally:
            await store.close()
        total = sum(line.cost for line in lines)
        print(f"imported {count} spend row(s), {total:.2f} in all")
        return 0

    return _run(body)


def read_examples(path: str) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    labels: list[str] = []
    for n, raw in enumerate(Path(path).read_text().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
            text, label = item["text"], item["label"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f'{path}:{n}: not a {{"text", "label"}} line') from None
        if not isinstance(text, str) or not isinstance(label, str):
            raise ValueError(f"{path}:{n}: text and label must be strings")
        texts.append(text)
        labels.append(label)
    return texts, labels


def split_holdout(
    texts: list[str], labels: list[str], share: float
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Every k-th example of each label held out (deterministic, stratified)."""
    if share <= 0:
        return texts, labels, [], []
    step = max(2, round(1 / share))
    seen: dict[str, int] = {}
    train_t, train_l, test_t, test_l = [], [], [], []
    for text, label in zip(texts, labels, strict=True):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] % step == 0:
            test_t.append(text)
            test_l.append(label)
        else:
            train_t.append(text)
            train_l.append(label)
    return train_t, train_l, test_t, test_l


def _print_evaluation(evaluation: Any) -> None:
    e = evaluation
    print(f"accuracy {e.accuracy:.3f}   macro-F1 {e.macro_f1:.3f}   n={e.n}")
    for label, m in sorted(evaluation.per_label.items()):
        print(
            f"  {label:<22} precision {m['precision']:.2f}  recall {m['recall']:.2f}"
            f"  F1 {m['f1']:.2f}  support {int(m['support'])}"
        )


def cmd_train_outcome(args: argparse.Namespace) -> int:
    from loopline.attribution.classifier import evaluate, train

    try:
        texts, labels = read_examples(args.data)
        train_t, train_l, test_t, test_l = split_holdout(texts, labels, args.holdout)
        model = train(train_t, train_l)
    except (OSError, ValueError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if test_t:
        print(f"held out {len(test_t)} of {len(texts)} examples:")
        _print_evaluation(evaluate(model, test_t, test_l))
        model = train(texts, labels)  # the kept model learns from every example
    model.save(args.out)
    print(f"wrote {args.out}: {len(model.labels)} labels, {len(model.vocabulary)} features")
    print("use it: attribution.classifier.model_path in the deployment file")
    return 0


def cmd_eval_outcome(args: argparse.Namespace) -> int:
    from loopline.attribution.classifier import OutcomeModel, evaluate

    try:
        model = OutcomeModel.load(args.model)
        texts, labels = read_examples(args.data)
    except (OSError, ValueError, KeyError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    _print_evaluation(evaluate(model, texts, labels))
    return 0
