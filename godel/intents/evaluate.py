"""Measure the rule-based parser against a labelled corpus.

``python -m godel.intents.evaluate [CORPUS] [--json]`` prints precision and
recall per intent, complexity accuracy and requirement match rates, so a
change to the vocabulary can be judged by numbers rather than by examples.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from godel.errors import ValidationError
from godel.intents.parser import parse_text
from godel.intents.schema import Complexity, IntentKind

DEFAULT_CORPUS = Path("tests/data/intent_corpus.yaml")
_REPO_CORPUS = Path(__file__).resolve().parents[2] / DEFAULT_CORPUS


def default_corpus_path() -> Path:
    """The corpus relative to the working directory, else to the source checkout."""
    return DEFAULT_CORPUS if DEFAULT_CORPUS.exists() else _REPO_CORPUS


def load_corpus(path: Path) -> list[dict[str, Any]]:
    """Read and check the corpus so a bad label fails loudly, not as a miss."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValidationError(f"cannot read corpus {path}: {exc}", field="corpus") from exc
    if not isinstance(data, list):
        raise ValidationError(f"corpus {path} must be a list of entries", field="corpus")
    for number, entry in enumerate(data, start=1):
        _check_entry(entry, number)
    return data


def _check_entry(entry: object, number: int) -> None:
    if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
        raise ValidationError(f"corpus entry {number} needs a text", field="corpus")
    if entry.get("intent") not in {k.value for k in IntentKind}:
        raise ValidationError(f"corpus entry {number}: unknown intent {entry.get('intent')!r}", field="corpus")
    if entry.get("complexity", "medium") not in {c.value for c in Complexity}:
        raise ValidationError(f"corpus entry {number}: unknown complexity", field="corpus")
    if not isinstance(entry.get("requirements", []), list):
        raise ValidationError(f"corpus entry {number}: requirements must be a list", field="corpus")


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _per_label(pairs: Sequence[tuple[str, str]], labels: Iterable[str]) -> dict[str, dict[str, float]]:
    """Precision, recall and support per label from (expected, predicted) pairs."""
    table: dict[str, dict[str, float]] = {}
    for label in labels:
        hits = sum(1 for want, got in pairs if want == label and got == label)
        predicted = sum(1 for _, got in pairs if got == label)
        support = sum(1 for want, _ in pairs if want == label)
        table[label] = {
            "precision": _ratio(hits, predicted),
            "recall": _ratio(hits, support),
            "support": support,
        }
    return table


def _requirement_scores(pairs: Sequence[tuple[set[str], set[str]]]) -> dict[str, float]:
    """Exact set match rate, mean Jaccard overlap ("partial"), micro precision/recall."""
    exact = sum(1 for want, got in pairs if want == got)
    overlap = sum(len(want & got) / len(want | got) if want | got else 1.0 for want, got in pairs)
    true_pos = sum(len(want & got) for want, got in pairs)
    return {
        "exact": _ratio(exact, len(pairs)),
        "partial": round(overlap / len(pairs), 4) if pairs else 0.0,
        "precision": _ratio(true_pos, sum(len(got) for _, got in pairs)),
        "recall": _ratio(true_pos, sum(len(want) for want, _ in pairs)),
    }


def evaluate(entries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Run the parser over labelled entries and score every field it produces."""
    intents: list[tuple[str, str]] = []
    sizes: list[tuple[str, str]] = []
    requirements: list[tuple[set[str], set[str]]] = []
    mistakes: list[dict[str, str]] = []
    for entry in entries:
        parsed = parse_text(entry["text"])
        intents.append((entry["intent"], parsed.intent.value))
        sizes.append((entry.get("complexity", "medium"), parsed.complexity.value))
        requirements.append((set(entry.get("requirements") or []), set(parsed.requirements)))
        if parsed.intent.value != entry["intent"]:
            mistakes.append({"text": entry["text"], "expected": entry["intent"], "got": parsed.intent.value})
    return {
        "total": len(intents),
        "intent_accuracy": _ratio(sum(w == g for w, g in intents), len(intents)),
        "intents": _per_label(intents, [k.value for k in IntentKind]),
        "complexity_accuracy": _ratio(sum(w == g for w, g in sizes), len(sizes)),
        "complexity": _per_label(sizes, [c.value for c in Complexity]),
        "requirements": _requirement_scores(requirements),
        "mistakes": mistakes,
    }


def format_report(report: Mapping[str, Any]) -> str:
    """Plain-text table of an ``evaluate`` result."""
    lines = [f"{'intent':<22}{'precision':>10}{'recall':>10}{'support':>9}"]
    for label, row in report["intents"].items():
        lines.append(f"{label:<22}{row['precision']:>10.2f}{row['recall']:>10.2f}{row['support']:>9}")
    lines.append("")
    lines.append(f"{'complexity':<22}{'precision':>10}{'recall':>10}{'support':>9}")
    for label, row in report["complexity"].items():
        lines.append(f"{label:<22}{row['precision']:>10.2f}{row['recall']:>10.2f}{row['support']:>9}")
    req = report["requirements"]
    lines += [
        "",
        f"requirements: exact {req['exact']:.2f}  partial {req['partial']:.2f}  "
        f"precision {req['precision']:.2f}  recall {req['recall']:.2f}",
        f"complexity accuracy: {report['complexity_accuracy']:.2%}",
        f"intent accuracy: {report['intent_accuracy']:.2%} of {report['total']}",
    ]
    for miss in report["mistakes"]:
        lines.append(f"  miss: {miss['expected']} -> {miss['got']}: {miss['text'][:80]}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m godel.intents.evaluate", description=__doc__)
    parser.add_argument("corpus", nargs="?", type=Path, help="labelled YAML corpus")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        report = evaluate(load_corpus(args.corpus or default_corpus_path()))
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
