"""Batched greedy and beam-search decoding in the graph (tf.while_loop), so exports contain them.

Both decoders take a built `Seq2SeqAttention` and padded source ids `[B, S]` and return padded
target ids `[B, L]` (each row ends with eos, then padding) and the model's log-probability of each
output (sum over the emitted tokens, eos included). A sentence with `n` source tokens may emit at
most `ceil(max_length_ratio * n) + max_length_offset` tokens; its last allowed token is eos.

Beam search follows GNMT (Wu et al. 2016): hypotheses are ranked by `log p / lp(length)` with
`lp(n) = ((5 + n) / 6) ** length_penalty` (0 disables it); finished hypotheses stay in the beam,
extended by padding at no cost, and the loop ends when no sentence's answer can change any more
(`_settled`: no live beam can overtake its best finished one), which returns exactly what running
until every beam has finished would. Each sentence leaves the batch once settled, so the decoder
only runs the beams of sentences still searching.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from shared.data.tokenizer import BOS_ID, EOS_ID, PAD_ID

NEG = -1e9


def max_lengths(source: tf.Tensor, ratio: float, offset: int) -> tf.Tensor:
    """Per-sentence output limits [B] from source ids [B, S] (padding 0 not counted)."""
    lengths = tf.reduce_sum(tf.cast(tf.not_equal(source, PAD_ID), tf.float32), axis=1)
    return tf.cast(tf.math.ceil(ratio * lengths), tf.int32) + offset


def _restrict(log_probs: tf.Tensor, finished: tf.Tensor, at_limit: tf.Tensor) -> tf.Tensor:
    """Finished rows may only emit padding (cost 0); rows at their limit may only emit eos."""
    vocab = tf.shape(log_probs)[-1]
    pad_only = tf.where(tf.equal(tf.range(vocab), PAD_ID), 0.0, NEG)
    eos_mask = tf.equal(tf.range(vocab), EOS_ID)
    eos_only = tf.where(eos_mask, log_probs, NEG)
    log_probs = tf.where(at_limit[..., None], eos_only, log_probs)
    return tf.where(finished[..., None], tf.broadcast_to(pad_only, tf.shape(log_probs)), log_probs)


def greedy_decode(
    model,
    source: tf.Tensor,
    max_length_ratio: float = 1.5,
    max_length_offset: int = 5,
    return_attention: bool = False,
):
    """Greedy decoding.

    Returns:
        (ids [B, L] int32, log-probabilities [B]) and, with `return_attention`, also the attention
        weights [B, L, S] of every emitted token.
    """
    source = tf.convert_to_tensor(source, tf.int32)
    memory, keys, mask, states = model.encode(source, training=False)
    batch = tf.shape(source)[0]
    limits = max_lengths(source, max_length_ratio, max_length_offset)
    steps = tf.reduce_max(limits)
    tokens_ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
    weights_ta = tf.TensorArray(memory.dtype, size=0, dynamic_size=True)

    def cond(t, *_):
        return t < steps

    def body(t, previous, states, finished, scores, tokens_ta, weights_ta):
        logits, states, weights = model.decode_step(previous, states, memory, keys, mask)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        log_probs = _restrict(log_probs, finished, t >= limits - 1)
        token = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
        scores += tf.gather(log_probs, token, batch_dims=1)
        finished = finished | tf.equal(token, EOS_ID)
        return (
            t + 1,
            token,
            states,
            finished,
            scores,
            tokens_ta.write(t, token),
            weights_ta.write(t, weights),
        )

    t, _, _, _, scores, tokens_ta, weights_ta = tf.while_loop(
        lambda t, p, s, finished, *_: cond(t) & ~tf.reduce_all(finished),
        body,
        (
            tf.constant(0),
            tf.fill([batch], BOS_ID),
            list(states),
            tf.zeros([batch], tf.bool),
            tf.zeros([batch], tf.float32),
            tokens_ta,
            weights_ta,
        ),
    )
    ids = tf.reshape(tf.transpose(tokens_ta.stack()), [batch, t])
    if not return_attention:
        return ids, scores
    weights = tf.transpose(weights_ta.stack(), (1, 0, 2))
    return ids, scores, tf.reshape(weights, [batch, t, tf.shape(source)[1]])


def _length_penalty(length: tf.Tensor, alpha: float) -> tf.Tensor:
    return tf.pow((5.0 + tf.cast(length, tf.float32)) / 6.0, alpha)


def _settled(scores, finished, lengths, limits, length_penalty: float) -> tf.Tensor:
    """[B] rows whose answer can no longer change: no live beam can overtake the best finished one.

    A live beam's log-probability only falls as it grows, and its penalty lp(n) grows with n up
    to the row's limit, so no extension can rank above `score / lp(limit)`. Once the best finished
    rank reaches that bound for every live beam, further steps cannot displace it from the beam or
    beat it at the end: stopping there returns what the full search returns.

    Args:
        scores, finished, lengths: [B, k] of the beams.
        limits: [B, k] each beam's output limit (its sentence's).
    """
    ranks = scores / _length_penalty(lengths, length_penalty)
    best_finished = tf.reduce_max(tf.where(finished, ranks, -np.inf), axis=1)
    bound = tf.reduce_max(
        tf.where(finished, -np.inf, scores / _length_penalty(limits, length_penalty)), axis=1
    )
    return best_finished >= bound


def _restricted_top(log_probs, finished, at_limit, width):
    """The `width` best (log-probability, token) of each row after `_restrict`, without it.

    Equal to `tf.math.top_k(_restrict(log_probs, finished, at_limit), width)` (ties included:
    top_k puts the lower token first) but it never writes a restricted [rows, V] copy: a
    restricted row holds one allowed token (padding at 0 if finished, else eos at its
    log-probability) followed by NEG at every other token, lowest token first.

    Args:
        log_probs: [rows, V] log-probabilities of the next token.
        finished, at_limit: [rows] booleans.
        width: how many to keep per row (<= V).

    Returns:
        (values [rows, width] float32, tokens [rows, width] int32)
    """
    values, tokens = tf.math.top_k(log_probs, width)
    rows = tf.shape(log_probs)[0]
    special = tf.where(finished, PAD_ID, EOS_ID)  # [rows]
    special_value = tf.where(finished, 0.0, log_probs[:, EOS_ID])
    rest = tf.range(width - 1)[None, :]
    rest = rest + tf.cast(rest >= special[:, None], tf.int32)  # the lowest other tokens
    forced_tokens = tf.concat([special[:, None], rest], axis=1)
    forced_values = tf.concat([special_value[:, None], tf.fill([rows, width - 1], NEG)], axis=1)
    forced = (finished | at_limit)[:, None]
    return tf.where(forced, forced_values, values), tf.where(forced, forced_tokens, tokens)


def _select(values, tokens, scores, finished, lengths, sequences, length_penalty: float):
    """One beam-search step from each beam's best next tokens.

    Ranks every (beam, token) extension by `log p / lp(length)` and keeps the best k. The length
    penalty of an extension depends on its beam only, so a beam's best tokens by log-probability
    are its best by rank: the k best of each beam hold the k best of all k * V extensions.

    Args:
        values, tokens: [B, k, w] the w best (restricted) log-probabilities and tokens of each beam.
        scores, finished, lengths: [B, k] of the beams.
        sequences: [B, k, t] tokens emitted so far.

    Returns:
        (beam [B, k] each survivor came from, token [B, k], scores, finished, lengths, sequences)
    """
    batch, k, width = tf.shape(values)[0], tf.shape(values)[1], tf.shape(values)[2]
    candidates = scores[..., None] + values  # [B, k, w]
    new_lengths = tf.where(finished, lengths, lengths + 1)[..., None]
    ranks = candidates / _length_penalty(new_lengths, length_penalty)
    _, flat = tf.math.top_k(tf.reshape(ranks, [batch, k * width]), k)  # [B, k]
    beam = flat // width
    token = tf.gather(tf.reshape(tokens, [batch, k * width]), flat, batch_dims=1)
    scores = tf.gather(tf.reshape(candidates, [batch, k * width]), flat, batch_dims=1)
    was_finished = tf.gather(finished, beam, batch_dims=1)
    lengths = tf.gather(lengths, beam, batch_dims=1) + tf.cast(~was_finished, tf.int32)
    finished = was_finished | tf.equal(token, EOS_ID)
    sequences = tf.concat([tf.gather(sequences, beam, batch_dims=1), token[..., None]], axis=2)
    return beam, token, scores, finished, lengths, sequences


def _best(sequences, scores, finished, lengths, length_penalty: float):
    """Each row's answer: its best-ranked finished beam (its best live one if none finished).

    A row that settled early may hold live beams: they rank no higher than the best finished.

    Returns:
        (ids [B, t], log-probability [B]) of the chosen beam.
    """
    ranks = scores / _length_penalty(lengths, length_penalty)
    ranks = tf.where(finished | ~tf.reduce_any(finished, axis=1, keepdims=True), ranks, NEG)
    best = tf.argmax(ranks, axis=1, output_type=tf.int32)
    return tf.gather(sequences, best, batch_dims=1), tf.gather(scores, best, batch_dims=1)


def beam_search(
    model,
    source: tf.Tensor,
    beam_size: int = 5,
    length_penalty: float = 0.0,
    max_length_ratio: float = 1.5,
    max_length_offset: int = 5,
):
    """Beam search.

    A sentence leaves the batch as soon as its answer is settled: its best hypothesis is written
    to the output and the decoder no longer runs its beams, so a batch costs what its sentences
    need rather than what its longest one needs.

    Returns:
        (ids [B, L] int32 of the best hypothesis, its log-probability [B]).
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    source = tf.convert_to_tensor(source, tf.int32)
    k = beam_size
    batch = tf.shape(source)[0]
    memory, keys, mask, states = model.encode(source, training=False)
    context = [tf.repeat(x, k, axis=0) for x in (memory, keys, mask)]
    states = [tf.repeat(s, k, axis=0) for s in states]
    limits = tf.repeat(max_lengths(source, max_length_ratio, max_length_offset)[:, None], k, 1)
    longest = tf.maximum(tf.reduce_max(limits), 0)  # an empty batch has no limit at all
    first = tf.concat([tf.zeros([1]), tf.fill([k - 1], NEG)], axis=0)  # only beam 0 is live

    def retire(done, rows, beams, out_ids, out_scores):
        """Writes the answers of the `done` [A] rows (batch positions `rows`) to the outputs."""
        ids, scores = _best(*beams, length_penalty)
        ids = tf.pad(ids, [[0, 0], [0, longest - tf.shape(ids)[1]]])
        at = tf.boolean_mask(rows, done)[:, None]
        out_ids = tf.tensor_scatter_nd_update(out_ids, at, tf.boolean_mask(ids, done))
        out_scores = tf.tensor_scatter_nd_update(out_scores, at, tf.boolean_mask(scores, done))
        return out_ids, out_scores

    def body(t, previous, states, context, limits, rows, beams, out_ids, out_scores):
        sequences, scores, finished, lengths = beams
        active = tf.shape(rows)[0]
        logits, states, _ = model.decode_step(previous, states, *context)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))  # [A * k, V]
        width = tf.minimum(k, tf.shape(log_probs)[-1])
        at_limit = tf.reshape(t >= limits - 1, [-1])
        values, tokens = _restricted_top(log_probs, tf.reshape(finished, [-1]), at_limit, width)
        beam, token, scores, finished, lengths, sequences = _select(
            tf.reshape(values, [active, k, width]),
            tf.reshape(tokens, [active, k, width]),
            scores,
            finished,
            lengths,
            sequences,
            length_penalty,
        )
        beam_rows = tf.reshape(beam + k * tf.range(active)[:, None], [-1])
        states = [tf.gather(s, beam_rows) for s in states]
        previous = tf.reshape(token, [-1])
        beams = (sequences, scores, finished, lengths)
        done = _settled(scores, finished, lengths, limits, length_penalty)

        def leave():
            answered_ids, answered_scores = retire(done, rows, beams, out_ids, out_scores)
            keep = ~done
            keep_rows = tf.reshape(tf.repeat(keep[:, None], k, axis=1), [-1])
            return (
                tf.boolean_mask(previous, keep_rows),
                [tf.boolean_mask(s, keep_rows) for s in states],
                [tf.boolean_mask(x, keep_rows) for x in context],
                tf.boolean_mask(limits, keep),
                tf.boolean_mask(rows, keep),
                tuple(tf.boolean_mask(x, keep) for x in beams),
                answered_ids,
                answered_scores,
            )

        def stay():
            return previous, states, context, limits, rows, beams, out_ids, out_scores

        return (t + 1, *tf.cond(tf.reduce_any(done), leave, stay))

    start = (
        tf.constant(0),
        tf.fill([batch * k], BOS_ID),
        states,
        context,
        limits,
        tf.range(batch),
        (
            tf.zeros([batch, k, 0], tf.int32),
            tf.tile(first[None], [batch, 1]),
            tf.zeros([batch, k], tf.bool),
            tf.zeros([batch, k], tf.int32),
        ),
        tf.zeros([batch, longest], tf.int32),
        tf.zeros([batch], tf.float32),
    )
    t, _, _, _, _, rows, beams, out_ids, out_scores = tf.while_loop(
        lambda t, previous, states, context, limits, rows, *_: (t < longest) & (tf.size(rows) > 0),
        body,
        start,
        shape_invariants=(
            tf.TensorShape([]),
            tf.TensorShape([None]),
            [tf.TensorShape([None, *s.shape[1:]]) for s in states],
            [tf.TensorShape([None, *x.shape[1:]]) for x in context],
            tf.TensorShape([None, k]),
            tf.TensorShape([None]),
            (
                tf.TensorShape([None, k, None]),
                tf.TensorShape([None, k]),
                tf.TensorShape([None, k]),
                tf.TensorShape([None, k]),
            ),
            tf.TensorShape([None, None]),
            tf.TensorShape([None]),
        ),
    )
    # rows still searching when the loop ran out of steps (only limits <= 0 leave any)
    out_ids, out_scores = retire(tf.ones_like(rows, tf.bool), rows, beams, out_ids, out_scores)
    return out_ids[:, :t], out_scores


def sequence_log_prob(model, source: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """The model's log-probability [B] of padded target ids [B, L] (ending in eos) given sources.

    Used to compare decoders: it scores any output by teacher forcing, independently of search.
    """
    target = tf.convert_to_tensor(target, tf.int32)
    batch = tf.shape(target)[0]
    target_in = tf.concat([tf.fill([batch, 1], BOS_ID), target[:, :-1]], axis=1)
    logits = model({"source": source, "target_in": target_in}, training=False)
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
    picked = tf.gather(log_probs, target, batch_dims=2)
    return tf.reduce_sum(tf.where(tf.not_equal(target, PAD_ID), picked, 0.0), axis=1)


def compiled_decoders(model, config) -> dict[str, Any]:
    """Graph-compiled decoders {"greedy", "beam"}: padded source ids -> (ids, scores).

    Args:
        model: the trained `Seq2SeqAttention`.
        config: the `model` config section (beam size, length penalty, output limits).
    """
    m = config
    spec = [tf.TensorSpec([None, None], tf.int32)]
    greedy = tf.function(
        lambda s: greedy_decode(model, s, m.max_length_ratio, m.max_length_offset),
        input_signature=spec,
    )
    beam = tf.function(
        lambda s: beam_search(
            model, s, m.beam_size, m.length_penalty, m.max_length_ratio, m.max_length_offset
        ),
        input_signature=spec,
    )
    return {"greedy": greedy, "beam": beam}


def translate_texts(texts: list[str], decoder, source_sp, target_sp, batch_size: int) -> list[str]:
    """Translates raw strings with a compiled decoder, in batches of similar length.

    Tokenization and detokenization run in Python (`sentencepiece`), the decoder in the graph,
    so this path shares no SentencePiece op with an export loaded in the same process.

    Args:
        texts: raw source sentences (surrounding whitespace is stripped; an empty one gets an
            empty translation, as from the export).
        decoder: from `compiled_decoders`.
        source_sp, target_sp: `sentencepiece.SentencePieceProcessor`s of the two sides.
        batch_size: sentences per decoder call.
    """
    stripped = [text.strip() for text in texts]
    ids = source_sp.encode(stripped)
    order = sorted((i for i, text in enumerate(stripped) if text), key=lambda i: len(ids[i]))
    outputs: list[str] = [""] * len(texts)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        source = np.zeros((len(chunk), max(len(ids[i]) for i in chunk) + 1), np.int32)
        for row, i in enumerate(chunk):
            source[row, : len(ids[i]) + 1] = [*ids[i], EOS_ID]
        hypotheses, _ = decoder(tf.constant(source))
        for i, row in zip(chunk, hypotheses.numpy().tolist(), strict=True):
            row = row[: row.index(EOS_ID)] if EOS_ID in row else row
            outputs[i] = target_sp.decode([t for t in row if t not in (PAD_ID, BOS_ID)])
    return outputs
