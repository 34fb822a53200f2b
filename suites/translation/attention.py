"""Attention heat maps: which source subwords each emitted target subword attended to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from shared.data.tokenizer import EOS_ID, SentencePieceTokenizer
from suites.translation.decoding import greedy_decode
from suites.translation.serving import encode_source


@dataclass
class AttentionMap:
    """Greedy translation of one sentence with its attention weights."""

    source_pieces: list[str]  # source subwords incl. the final </s>
    target_pieces: list[str]  # emitted subwords incl. the final </s>
    weights: np.ndarray  # [len(target_pieces), len(source_pieces)], rows sum to 1
    translation: str  # detokenized output


def attention_map(
    model: keras.Model,
    source_tokenizer: SentencePieceTokenizer,
    target_tokenizer: SentencePieceTokenizer,
    sentence: str,
    max_length_ratio: float = 1.5,
    max_length_offset: int = 10,
) -> AttentionMap:
    """Translates `sentence` greedily and returns the attention of every output step."""
    source = encode_source(source_tokenizer, tf.constant([sentence]))
    ids, _, weights = greedy_decode(
        model, source, max_length_ratio, max_length_offset, return_attention=True
    )
    out = ids.numpy()[0].tolist()
    length = out.index(EOS_ID) + 1 if EOS_ID in out else len(out)
    src = source.numpy()[0].tolist()
    return AttentionMap(
        source_pieces=[source_tokenizer.id_to_piece(i) for i in src],
        target_pieces=[target_tokenizer.id_to_piece(i) for i in out[:length]],
        weights=weights.numpy()[0, :length, : len(src)],
        translation=target_tokenizer.detokenize(ids).numpy()[0].decode("utf-8"),
    )


def plot_attention(amap: AttentionMap, path: str | Path | None = None, ax=None):
    """Draws `amap` as a heat map (rows: target pieces, columns: source pieces).

    Args:
        amap: from `attention_map`.
        path: if given, the figure is saved there (PNG/SVG/PDF by suffix).
        ax: a matplotlib Axes to draw on (default: a new figure).

    Returns:
        The matplotlib Axes.
    """
    import matplotlib

    if ax is None and path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if ax is None:
        width = 1.5 + 0.45 * len(amap.source_pieces)
        height = 1.2 + 0.4 * len(amap.target_pieces)
        _, ax = plt.subplots(figsize=(width, height))
    ax.imshow(amap.weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(amap.source_pieces)), amap.source_pieces, rotation=60, ha="right")
    ax.set_yticks(range(len(amap.target_pieces)), amap.target_pieces)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    ax.set_title(amap.translation, fontsize=9)
    if path is not None:
        ax.figure.tight_layout()
        ax.figure.savefig(path, dpi=120)
    return ax
