"""The `speech` task: character CTC recognition on log-mel features (see suites/speech/*)."""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from pathlib import Path

from shared.data.sources import resolve_under
from shared.task import Task, register_task
from suites.speech import data as speech_data
from suites.speech.cache import build_cache, cache_path, iter_features
from suites.speech.data import DataConfig
from suites.speech.features import FeatureStats
from suites.speech.model import ModelConfig
from suites.speech.readers import Screen
from suites.speech.text import CharVocab

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


@register_task
class SpeechTask(Task):
    """Speech -> characters with a Bidirectional(PeepholeLSTM) stack and CTC."""

    name = "speech"
    DataConfig = DataConfig
    ModelConfig = ModelConfig

    def __init__(self, config, run_dir):
        super().__init__(config, run_dir)
        self.vocab = CharVocab(config.data.alphabet)
        cache = config.data.cache_dir
        # Absolute: cache keys hash audio paths, which must not depend on the working directory.
        self.cache_dir = (Path(cache) if cache else self.run_dir / "cache").absolute()
        self.caches: dict[str, tuple[Path, dict]] = {}

    @property
    def stride(self) -> int:
        m = self.config.model
        return m.stride if m.frontend != "none" else 1

    # -- data -------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Reads and splits the corpus, caches features per split, computes train statistics.

        Writes `artifacts/feature_stats.json` (once), `artifacts/data_summary.json` and, when
        inputs were skipped (`data.bad_input: skip`), `artifacts/skipped.tsv` (source, reason);
        for an evaluation-only corpus (no train split) the last two get an `_eval` suffix.
        """
        cfg = self.config.data
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        screen = Screen(cfg.bad_input)
        splits = speech_data.make_splits(cfg, self.config.seed, self.cache_dir, screen)
        screen.finish("transcripts")  # fail fast before computing features
        audio_screen = Screen(cfg.bad_input)
        for split in SPLITS:
            utts = splits.get(split) or []
            if not utts:
                continue
            path = cache_path(self.cache_dir / "features", split, utts, cfg.features)
            meta = build_cache(
                path, utts, cfg.features, audio_screen, cfg.min_seconds, cfg.silence_threshold
            )
            self.caches[split] = (path, meta)
        audio_screen.finish("audio")
        skipped = screen.problems + audio_screen.problems
        train_meta = self.caches["train"][1] if "train" in self.caches else None
        infeasible = [
            (i, "too short for its transcript under CTC (dropped from training)")
            for i, f, t in zip(
                *(train_meta[k] for k in ("ids", "frames", "transcripts")), strict=True
            )
            if not speech_data.ctc_feasible(f, t, self.stride)
        ] if train_meta else []  # fmt: skip
        # An evaluation-only corpus (no train split) must not overwrite the training reports.
        suffix = "" if train_meta else "_eval"
        if infeasible:
            log.warning("%d training utterances are too short for CTC", len(infeasible))
        if skipped or infeasible:
            Screen("skip", skipped + infeasible).write(self.artifacts_dir / f"skipped{suffix}.tsv")
        stats_file = self.artifacts_dir / "feature_stats.json"
        if not stats_file.exists():
            if "train" not in self.caches:
                raise ValueError(
                    "no training utterances: check data.source/data_dir and data.*_speakers"
                )
            train_path = self.caches["train"][0]
            FeatureStats.from_frames(iter_features(train_path, cfg.features.dim)).save(stats_file)
        texts_file = self.artifacts_dir / "train_texts.json"
        if train_meta and not texts_file.exists():  # the in-domain text of the "lm" decoder
            texts_file.write_text(json.dumps(sorted(set(train_meta["transcripts"])), indent=0))
        words_file = self.artifacts_dir / "train_words.json"
        if train_meta and not words_file.exists():  # the vocabulary of word_correction
            counts = Counter(w for t in train_meta["transcripts"] for w in t.split())
            words_file.write_text(json.dumps(dict(counts.most_common())))
        summary = {
            split: {
                "utterances": meta["count"],
                "speakers": sorted(set(meta["speakers"])),
                "hours": sum(meta["frames"])
                * cfg.features.hop_length
                / cfg.features.sample_rate
                / 3600,
            }
            for split, (_, meta) in self.caches.items()
        }
        summary["skipped"] = len(skipped)
        summary["ctc_infeasible_train"] = len(infeasible)
        summary_file = self.artifacts_dir / f"data_summary{suffix}.json"
        summary_file.write_text(json.dumps(summary, indent=2))

    def _split(self, split: str) -> tuple[Path, dict]:
        if not self.caches:
            self.prepare()
        if split not in self.caches:
            raise ValueError(
                f"split {split!r} is empty (have {sorted(self.caches)}); hold data out with "
                f"data.{split}_speakers or data.{split}_fraction"
            )
        return self.caches[split]

    def datasets(self, global_batch_size: int):
        path, meta = self._split("train")
        cfg = self.config.data
        train = speech_data.batches(
            path, meta, cfg, global_batch_size, self.stride, self.config.seed
        )
        val = None
        if "validation" in self.caches:
            vpath, vmeta = self.caches["validation"]
            val = speech_data.batches(vpath, vmeta, cfg, global_batch_size, self.stride)
        return train, val

    # -- model ------------------------------------------------------------------------------
    def build_model(self):
        from suites.speech.model import build_model

        stats = FeatureStats.load(self.artifacts_dir / "feature_stats.json")
        return build_model(
            self.config.model, self.config.data.features.dim, self.vocab.num_classes,
            mean=stats.mean, variance=[s * s for s in stats.std], seed=self.config.seed,
            features_config=self.config.data.features,
        )  # fmt: skip

    def custom_objects(self):
        from suites.speech import layers, model

        return {
            "CTCModel": model.CTCModel,
            "SpecAugment": layers.SpecAugment,
            "FrameStack": layers.FrameStack,
            "SequenceMask": layers.SequenceMask,
            "ZeroPadding": layers.ZeroPadding,
            "UtteranceMeanNorm": layers.UtteranceMeanNorm,
            "VTLP": layers.VTLP,
            "Cepstra": layers.Cepstra,
        }

    # -- after training ---------------------------------------------------------------------
    def warp_search(self):
        """The test-time VTLN of `model.test_warps` (None when off)."""
        from suites.speech.warps import WarpSearch

        m = self.config.model
        if not m.test_warps:
            return None
        return WarpSearch(m.test_warps, self.config.data.features, m.vtlp_boundary)

    def _split_outputs(self, model, split: str):
        """Runs `model` over a cached split: yields (ids, references, outputs) per batch."""
        import tensorflow as tf

        from suites.speech.cache import read_cache

        path, _ = self._split(split)
        dim = self.config.data.features.dim
        ds = read_cache(path, dim).padded_batch(
            32,
            padded_shapes={"id": [], "transcript": [], "features": [None, dim], "num_frames": []},
        )
        search = self.warp_search()
        for batch in ds:
            lengths = tf.cast(batch["num_frames"], tf.int32)
            if search:
                out = search(model, batch["features"], lengths)
            else:
                inputs = {"features": batch["features"], "feature_lengths": lengths}
                out = model(inputs, training=False)
            ids = [x.decode() for x in batch["id"].numpy()]
            yield ids, [x.decode() for x in batch["transcript"].numpy()], out

    def transcribe_split(
        self, model, split: str, beam_width: int, lexicon: list[str] = (), log_probs=None
    ):
        """Transcripts of a cached split: (ids, refs, greedy, beam[, lexicon-constrained]).

        The lexicon list is returned (as a fifth item) only when `lexicon` is given. A list passed
        as `log_probs` receives each utterance's log-softmax outputs `[T', classes]` (for the
        "lm" decoder) from the same forward pass.
        """
        from suites.speech.decoding import ctc_decode, lexicon_decode, sparse_to_lists

        lex_ids = [self.vocab.encode(self.vocab.normalize(w)) for w in lexicon]
        ids, refs, greedy, beam, constrained = [], [], [], [], []
        for batch_ids, batch_refs, out in self._split_outputs(model, split):
            n = len(batch_ids)
            for width, sink in ((0, greedy), (beam_width, beam)):
                decoded = ctc_decode(out["logits"], out["logit_lengths"], width)
                sink.extend(self.vocab.decode(x) for x in sparse_to_lists(decoded, n))
            if lex_ids:
                best = lexicon_decode(out["logits"], out["logit_lengths"], lex_ids).numpy()
                constrained.extend(self.vocab.decode(lex_ids[j]) for j in best)
            if log_probs is not None:
                log_probs.extend(_log_softmax_per_utterance(out))
            ids.extend(batch_ids)
            refs.extend(batch_refs)
        if lex_ids:
            return ids, refs, greedy, beam, constrained
        return ids, refs, greedy, beam

    def split_log_probs(self, model, split: str) -> tuple[list[str], list[str], list]:
        """(ids, references, log-softmax outputs `[T', classes]` per utterance) of a split."""
        ids, refs, outs = [], [], []
        for batch_ids, batch_refs, out in self._split_outputs(model, split):
            outs.extend(_log_softmax_per_utterance(out))
            ids.extend(batch_ids)
            refs.extend(batch_refs)
        return ids, refs, outs

    def language_model(self):
        """The character n-gram LM of `model.lm_order` (training transcripts + `lm_texts`)."""
        from suites.speech.charlm import CharNgramLM, read_lm_texts

        m, root = self.config.model, self.config.data.data_dir
        texts = json.loads((self.artifacts_dir / "train_texts.json").read_text())
        paths = [resolve_under(p, root) for p in m.lm_texts]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"model.lm_texts: {', '.join(missing)} not found (relative entries are taken under "
                "data.data_dir; pass absolute paths or --set model.lm_order=0 to skip the LM)"
            )
        return CharNgramLM(texts + read_lm_texts(paths, self.vocab.alphabet), self.vocab.alphabet,
                           m.lm_order)  # fmt: skip

    def lm_decode(self, log_probs: list, lm, weight: float, bonus: float) -> list[str]:
        """Prefix beam search with `lm` over per-utterance log-probabilities."""
        from suites.speech.lmdecode import prefix_beam_search

        width = self.config.model.beam_width
        alphabet = self.vocab.alphabet
        return [prefix_beam_search(x, alphabet, lm, weight, bonus, width) for x in log_probs]

    def evaluate(self, model, split: str) -> dict[str, float]:
        from shared.metrics import speech as sm

        _, meta = self._split(split)
        m = self.config.model
        log_probs = [] if m.lm_order else None
        ids, refs, greedy, beam, *lex = self.transcribe_split(
            model, split, m.beam_width, m.lexicon, log_probs=log_probs
        )
        results = {}
        decoders = [("greedy", greedy), ("beam", beam)] + [("lexicon", h) for h in lex]
        if m.word_correction:
            from suites.speech.wordfix import WordCorrector

            counts = json.loads((self.artifacts_dir / "train_words.json").read_text())
            fix = WordCorrector(w for w, n in counts.items() for _ in range(n))
            decoders.append(("vocab", [fix(h) for h in beam]))
        if m.lm_order:
            lm_hyps = self.lm_decode(log_probs, self.language_model(), m.lm_weight, m.lm_bonus)
            decoders.append(("lm", lm_hyps))
        for name, hyps in decoders:
            results[f"cer_{name}"] = sm.cer(refs, hyps)
            results[f"wer_{name}"] = sm.wer(refs, hyps)
            results[f"accuracy_{name}"] = sm.sentence_accuracy(refs, hyps)
        speaker_of = dict(zip(meta["ids"], meta["speakers"], strict=True))
        if len(set(speaker_of.values())) <= 20:  # per-speaker figures for small speaker sets
            for name, hyps in decoders:
                by_speaker = defaultdict(list)
                for i, r, h in zip(ids, refs, hyps, strict=True):
                    by_speaker[speaker_of.get(i, "")].append((r, h))
                for spk, pairs in sorted(by_speaker.items()):
                    r, h = zip(*pairs, strict=True)
                    results[f"accuracy_{name}/{spk}"] = sm.sentence_accuracy(r, h)
                    results[f"cer_{name}/{spk}"] = sm.cer(r, h)
        eval_dir = self.run_dir / "eval"
        eval_dir.mkdir(parents=True, exist_ok=True)
        header = "\t".join(["id", "speaker", "reference"] + [name for name, _ in decoders])
        rows = [header] + [
            "\t".join([i, speaker_of.get(i, ""), r, *hyps])
            for i, r, *hyps in zip(ids, refs, *(h for _, h in decoders), strict=True)
        ]
        (eval_dir / f"hypotheses_{split}.tsv").write_text("\n".join(rows) + "\n")
        return results

    def export(self, model, out_dir: Path) -> None:
        from suites.speech.serving import export_server

        m = self.config.model
        lexicon = [self.vocab.normalize(w) for w in m.lexicon] if m.export_lexicon else None
        export_server(
            model, self.config.data.features, self.vocab.alphabet, out_dir,
            m.export_beam_width, lexicon, self.warp_search(),
        )  # fmt: skip

    @classmethod
    def predict(cls, export_dir: Path, inputs: list[str]) -> list[str]:
        import tensorflow as tf

        from suites.speech.audio import AudioError, load_audio
        from suites.speech.serving import pad_batch, read_sample_rate

        rate = read_sample_rate(export_dir)
        serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
        lines = []
        for path in inputs:
            try:
                wave = load_audio(path, rate, silence_threshold=-1.0)
            except AudioError as err:
                lines.append(f"{path}\t<error: {err.reason}>")
                continue
            batch, lengths = pad_batch([wave])
            out = serve(waveform=tf.constant(batch), waveform_length=tf.constant(lengths))
            lines.append(f"{path}\t{out['transcript'].numpy()[0].decode('utf-8')}")
        return lines


def _log_softmax_per_utterance(out) -> list:
    """The model outputs of one batch as log-probabilities `[T', classes]`, one per utterance."""
    import numpy as np
    import tensorflow as tf

    lp = tf.nn.log_softmax(tf.cast(out["logits"], tf.float32)).numpy()
    return [x[:n] for x, n in zip(lp, np.asarray(out["logit_lengths"]), strict=True)]
