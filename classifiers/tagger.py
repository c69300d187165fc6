"""The tagger: sentiment, emotions, needs and touchpoint from one encoder pass per text."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.config import TaggerConfig
from classifiers.inputs import decode, is_emoji_only, language_flag
from classifiers.labels import GOEMOTIONS_LABELS, NEED_LABELS, SENTIMENT_LABELS, cx_emotions
from classifiers.registry import registry
from classifiers.schemas import TagResult

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
TAGGER_NAME = "voc-tagger"
TASKS = ("sentiment", "emotions", "needs")


def read_heads_meta(heads_dir: Path) -> dict[str, Any]:
    """heads.json of a weights folder, with a clear error when it is missing."""
    path = heads_dir / "heads.json"
    if not path.exists():
        raise FileNotFoundError(
            f"no heads.json in {heads_dir}; train heads with `python -m classifiers.training.train all "
            f"--out {heads_dir}` or leave TaggerConfig.heads_dir unset to use the shipped ones"
        )
    return json.loads(path.read_text())


def with_examples(specs: tuple, examples: dict[str, list[str]] | None) -> tuple:
    """The taxonomy with more example phrases per touchpoint: an adapted version's corrected
    items (`classifiers.training.adapt`); touchpoints it does not name are left as they are."""
    if not examples:
        return specs
    from dataclasses import replace

    return tuple(replace(s, examples=(*s.examples, *examples.get(s.name, ()))) for s in specs)


def _empty_result(flags: list[str], embedding: np.ndarray | None) -> TagResult:
    return TagResult(
        sentiment="neutral",
        sentiment_score=0.0,
        sentiment_probs={"negative": 0.0, "neutral": 1.0, "positive": 0.0},
        emotions=dict.fromkeys(GOEMOTIONS_LABELS, 0.0),
        emotion_labels=["neutral"],
        cx_emotions=["neutral"],
        needs=[],
        need_scores=dict.fromkeys(NEED_LABELS, 0.0),
        touchpoint="unknown",
        touchpoint_confidence=0.0,
        flags=flags,
        embedding=embedding,
    )


class Tagger:
    """Loads the encoder and heads once; `tag` takes a list and returns one result per text."""

    name = TAGGER_NAME

    def __init__(self, config: TaggerConfig | None = None) -> None:
        import torch
        from safetensors.torch import load_file

        from classifiers.custom import load_custom_head
        from classifiers.encoder import DEFAULT_ENCODER_NAME, Encoder

        self.config = config = config or TaggerConfig()
        heads_dir = Path(config.heads_dir) if config.heads_dir else WEIGHTS_DIR
        meta = read_heads_meta(heads_dir)
        self.meta = meta
        encoder_name = config.encoder or DEFAULT_ENCODER_NAME
        if meta.get("encoder") != encoder_name:
            raise ValueError(
                f"the heads in {heads_dir} were trained on encoder {meta.get('encoder')!r}, not "
                f"{encoder_name!r}; train heads for it with `python -m classifiers.training.train all "
                f"--encoder {encoder_name} --out DIR` and set TaggerConfig.heads_dir=DIR"
            )
        adapter_dir = None
        if meta.get("adapter") and config.use_adapter:
            adapter_dir = heads_dir / meta["adapter"]
        self.encoder = Encoder(
            config.encoder, device=config.device, max_length=config.max_length,
            adapter_dir=adapter_dir, dtype=config.dtype,
        )  # fmt: skip
        self.device = self.encoder.device
        tensors = load_file(str(heads_dir / "heads.safetensors"))
        from classifiers.heads import HeadSpec

        self.heads = {}
        self.needs_model = None  # the hybrid needs head (needs.v3+), outside the torch heads
        self.need_labels: list[str] = []
        self.need_thresholds = np.zeros(0, np.float32)
        self.head_versions: dict[str, str] = {}
        for task in TASKS:
            spec = HeadSpec.from_json(task, meta["heads"][task])
            self.head_versions[task] = spec.registry_name
            if spec.kind == "hybrid":  # needs.v3+: its own files, in the same folder
                self.needs_model = registry.get(spec.registry_name)(spec, heads_dir)
                continue
            head = registry.get(spec.registry_name)(spec, tensors, self.encoder.dim)
            self.heads[task] = head.to(self.device)
        if "needs" in self.heads:
            self.need_labels = list(self.heads["needs"].labels)
            self.need_thresholds = self.heads["needs"].thresholds.numpy()
        elif self.needs_model is not None:
            self.need_labels = list(self.needs_model.labels)
            self.need_thresholds = np.array(
                [self.needs_model.thresholds.get(label, 0.5) for label in self.need_labels],
                np.float32,
            )
        self.version = meta["version"]
        self.touchpoint_registry_name = meta["touchpoint"]["registry"]
        self.touchpoint_threshold = (
            config.touchpoint_threshold
            if config.touchpoint_threshold is not None
            else float(meta["touchpoint"]["threshold"])
        )
        self.encoder_version = encoder_name + (
            f"+{self.encoder.adapter}" if self.encoder.adapter else ""
        )
        # stored embeddings are keyed by this: a tuned encoder's vectors are not the base's
        self.encoder_name = self.encoder_version
        self.custom_heads = [load_custom_head(name, self, heads_dir) for name in config.custom_heads]
        self.model_versions: dict[str, str] = {
            "tagger": f"{TAGGER_NAME}.{self.version}",
            "encoder": self.encoder_version,
            **self.head_versions,
            "touchpoint": self.touchpoint_registry_name,
            **{f"custom:{c.name}": c.version for c in self.custom_heads},
        }
        self._touchpoints = None
        self._lock = threading.Lock()
        self._torch = torch

    @property
    def touchpoints(self):
        """Touchpoint prototypes for the configured taxonomy, embedded on first use."""
        if self._touchpoints is None:
            with self._lock:
                if self._touchpoints is None:
                    factory = registry.get(self.touchpoint_registry_name)
                    self._touchpoints = factory(
                        with_examples(self.config.touchpoints, self.meta.get("touchpoint_examples")),
                        self.embed, self.touchpoint_threshold,
                    )
        return self._touchpoints

    def embed(self, texts: Sequence[str | bytes]) -> np.ndarray:
        """(n, dim) L2-normalised sentence embeddings; empty texts give zero vectors."""
        decoded = [decode(t)[0] for t in texts]
        out = np.zeros((len(decoded), self.encoder.dim), dtype=np.float32)
        keep = [i for i, t in enumerate(decoded) if t.strip()]
        if keep:
            emb, _ = self.encoder.encode([decoded[i] for i in keep], self.config.batch_size)
            out[keep] = emb
        return out

    def _forward(self, ids: list[list[int]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One encoder pass + every head, batched by length; returns embeddings and probs."""
        torch = self._torch
        n = len(ids)
        emb = np.zeros((n, self.encoder.dim), dtype=np.float32)
        probs = {task: np.zeros((n, len(h.labels)), np.float32) for task, h in self.heads.items()}
        custom = {c.name: np.zeros((n, len(c.head.labels)), np.float32) for c in self.custom_heads}
        order = sorted(range(n), key=lambda i: len(ids[i]))
        bs = self.config.batch_size
        with torch.inference_mode():
            for start in range(0, n, bs):
                chunk = order[start : start + bs]
                batch, mask = self.encoder.pad([ids[i] for i in chunk])
                pooled = self.encoder.forward_pooled(batch, mask)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                emb[chunk] = pooled.cpu().numpy()
                for task, head in self.heads.items():
                    probs[task][chunk] = head.probabilities(pooled).cpu().numpy()
                for c in self.custom_heads:
                    custom[c.name][chunk] = c.head.probabilities(pooled).cpu().numpy()
        return emb, {**probs, **{f"custom:{k}": v for k, v in custom.items()}}

    def head_probabilities(self, texts: Sequence[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(embeddings, probabilities of every torch head) for non-empty texts, one encoder pass
        each: what calibration and evaluation read without the per-item result objects."""
        ids, _ = self.encoder.tokenize(list(texts))
        return self._forward(ids)

    def _needs(self, texts: list[str], emb: np.ndarray, emotions: np.ndarray | None,
               sentiment: np.ndarray | None) -> np.ndarray:  # fmt: skip
        """The hybrid needs head on what the encoder pass produced, plus the texts."""
        from classifiers.needs import stack

        assert self.needs_model is not None
        if not texts:
            return np.zeros((0, len(self.need_labels)), np.float32)
        assert emotions is not None and sentiment is not None
        return self.needs_model.probabilities(texts, stack(emb, emotions, sentiment))

    def tag(
        self,
        texts: Sequence[str | bytes],
        *,
        audiences: Sequence[str | None] | None = None,
        return_embeddings: bool = False,
        languages: Sequence[str | None] | None = None,
    ) -> list[TagResult]:
        """Tags for every text, in order; never drops or fails on a single bad item."""
        n = len(texts)
        for arg, values in (("audiences", audiences), ("languages", languages)):
            if values is not None and len(values) != n:
                raise ValueError(
                    f"{arg} has {len(values)} entries for {n} texts; pass one per text"
                )
        decoded, flags = [], []
        for raw in texts:
            text, f = decode(raw)
            decoded.append(text)
            flags.append(f)
        live = [i for i, t in enumerate(decoded) if t.strip()]
        for i in range(n):
            if not decoded[i].strip():
                flags[i].append("empty")
                continue
            if is_emoji_only(decoded[i]):
                flags[i].append("emoji_only")
            lang = language_flag(decoded[i], languages[i] if languages is not None else None)
            if lang:
                flags[i].append(lang)

        ids, truncated = self.encoder.tokenize([decoded[i] for i in live]) if live else ([], [])
        emb, probs = self._forward(ids) if live else (np.zeros((0, self.encoder.dim)), {})
        if self.needs_model is not None:
            probs["needs"] = self._needs(
                [decoded[i] for i in live], emb, probs.get("emotions"), probs.get("sentiment")
            )
        touch = self.touchpoints.assign(
            emb, [audiences[i] for i in live] if audiences is not None else None
        )

        results: list[TagResult] = []
        slot = {i: k for k, i in enumerate(live)}
        emo_head = self.heads["emotions"]
        emo_thr = emo_head.thresholds.numpy()
        need_labels, need_thr = self.need_labels, self.need_thresholds
        for i in range(n):
            if i not in slot:
                zero = np.zeros(self.encoder.dim, np.float32) if return_embeddings else None
                results.append(_empty_result(flags[i], zero))
                continue
            k = slot[i]
            if truncated[k]:
                flags[i].append("truncated")
            sp = probs["sentiment"][k]
            sentiment_probs = dict(zip(SENTIMENT_LABELS, map(float, sp), strict=True))
            ep = probs["emotions"][k]
            emotion_labels = [emo_head.labels[j] for j in np.flatnonzero(ep >= emo_thr)]
            if len(emotion_labels) > 1 and "neutral" in emotion_labels:
                emotion_labels.remove("neutral")
            emotion_labels = emotion_labels or ["neutral"]
            np_ = probs["needs"][k]
            touchpoint, confidence = touch[k]
            result = TagResult(
                sentiment=SENTIMENT_LABELS[int(sp.argmax())],
                sentiment_score=float(sentiment_probs["positive"] - sentiment_probs["negative"]),
                sentiment_probs=sentiment_probs,
                emotions={label: float(p) for label, p in zip(emo_head.labels, ep, strict=True)},
                emotion_labels=emotion_labels,
                cx_emotions=cx_emotions(emotion_labels),
                needs=[need_labels[j] for j in np.flatnonzero(np_ >= need_thr)],
                need_scores=dict(zip(need_labels, map(float, np_), strict=True)),
                touchpoint=touchpoint,
                touchpoint_confidence=round(confidence, 4),
                flags=flags[i],
                embedding=emb[k].copy() if return_embeddings else None,
            )
            for c in self.custom_heads:
                row = probs[f"custom:{c.name}"][k]
                result.custom[c.name] = c.decide(row)
                result.custom_scores[c.name] = dict(zip(c.head.labels, map(float, row), strict=True))
            results.append(result)
        return results


_CACHE: dict[tuple, Tagger] = {}
_CACHE_LOCK = threading.Lock()


def load_tagger(config: TaggerConfig | None = None) -> Tagger:
    """A Tagger for `config`, loaded once per distinct config and reused."""
    config = config or TaggerConfig()
    key = config.cache_key()
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = Tagger(config)
        return _CACHE[key]
