"""benchmarks/peer_speech.py on two short synthetic clips laid out like FSDD and speechocean762.

The clips are spoken by the first installed engine of suites.speech.engines. Checked: the table's
CER/WER/utt_acc agree with jiwer on the hypotheses written to --out, the digit grammar hears the
two digits, the held-out speakers come from the config's data.test_speakers, and an export's
row gets each clip resampled to the export's own rate (a stand-in SavedModel answers the number
of samples it was given). Skips without pocketsphinx.
"""

from __future__ import annotations

import csv

import jiwer
import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pocketsphinx", reason="pocketsphinx is not installed")

from benchmarks import peer_speech  # noqa: E402
from shared.errors import DataError, UsageError  # noqa: E402
from suites.speech import engines  # noqa: E402

VOICES = {"flite": "flite:slt", "festival": "festival:ked", "espeak": "espeak:en-us"}
CLIPS = [("7_synth_0", "seven"), ("3_synth_0", "three")]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """FSDD-style recordings/ (8 kHz) and a speechocean762-style train/ (16 kHz) of two clips."""
    ready = [v for e, v in VOICES.items() if engines.available_engines()[e] is None]
    if not ready:
        pytest.skip("no speech engine to make the clips with")
    root = tmp_path_factory.mktemp("peer")
    (root / "fsdd" / "recordings").mkdir(parents=True)
    (root / "so" / "train").mkdir(parents=True)
    (root / "so" / "audio").mkdir()
    lengths = {}
    for uid, word in CLIPS:
        fsdd_wave = engines.speak(word, ready[0], 8000)
        sf.write(root / "fsdd" / "recordings" / f"{uid}.wav", fsdd_wave, 8000)
        sf.write(root / "so" / "audio" / f"{uid}.wav", engines.speak(word, ready[0], 16000), 16000)
        lengths[uid] = fsdd_wave.size
    kaldi = {
        "text": [f"{uid}\t{word.upper()}" for uid, word in CLIPS] + ["9_other_0\tNINE"],
        "wav.scp": [f"{uid}\taudio/{uid}.wav" for uid, _ in CLIPS] + ["9_other_0\taudio/x.wav"],
        "utt2spk": [f"{uid} 0042" for uid, _ in CLIPS] + ["9_other_0 0001"],
    }
    for name, lines in kaldi.items():
        (root / "so" / "train" / name).write_text("\n".join(lines) + "\n")
    (root / "so.yaml").write_text("task: speech\ndata:\n  test_speakers: ['0042']\n")
    return root, lengths


def _stand_in_export(folder, rate):
    """A SavedModel with the speech export's signature that answers each waveform's length."""
    import tensorflow as tf

    class Export(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None], tf.float32, name="waveform"),
                tf.TensorSpec([None], tf.int32, name="waveform_length"),
            ]
        )
        def serve(self, waveform, waveform_length):
            return {"transcript": tf.strings.as_string(waveform_length)}

    module = Export()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve})
    (folder / "assets").mkdir(exist_ok=True)
    (folder / "assets" / "sample_rate.txt").write_text(f"{rate}\n")
    return folder


def test_peer_table_matches_jiwer_and_hears_the_digits(corpora, tmp_path):
    root, lengths = corpora
    export = _stand_in_export(tmp_path / "export", 4000)
    out = tmp_path / "hyps.tsv"
    rows = peer_speech.main([
        "--fsdd", str(root / "fsdd"), "--fsdd-speakers", "synth",
        "--speechocean762", str(root / "so"), "--speechocean-config", str(root / "so.yaml"),
        "--export", f"fsdd:synth={export}", "--out", str(out),
    ])  # fmt: skip
    systems = {(r["set"], r["system"]) for r in rows}
    assert systems == {
        ("fsdd:synth", "pocketsphinx"), ("fsdd:synth", "pocketsphinx+digits"),
        ("fsdd:synth", "ours"), ("speechocean762", "pocketsphinx"),
    }  # fmt: skip
    with out.open() as f:
        written = list(csv.DictReader(f, delimiter="\t"))
    assert len(written) == 2 * len(rows)
    for row in rows:
        mine = [w for w in written if (w["set"], w["system"]) == (row["set"], row["system"])]
        refs, hyps = [w["reference"] for w in mine], [w["hypothesis"] for w in mine]
        assert sorted(refs) == ["seven", "three"]
        assert row["wer"] == pytest.approx(100 * jiwer.wer(refs, hyps))
        assert row["cer"] == pytest.approx(100 * jiwer.cer(refs, hyps))
        assert row["utt_acc"] == pytest.approx(100 * np.mean([r == h for r, h in zip(refs, hyps)]))
    digits = [w for w in written if w["system"] == "pocketsphinx+digits"]
    assert all(w["hypothesis"] == w["reference"] for w in digits)
    ours = {w["uid"]: w["hypothesis"] for w in written if w["system"] == "ours"}
    assert set(ours) == set(lengths)
    for uid, n in lengths.items():  # each 8 kHz clip reaches the 4 kHz export at half length
        assert abs(int(ours[uid]) - n / 2) <= 1


def test_readers_and_options_refuse_what_they_cannot_use(corpora, tmp_path):
    root, _ = corpora
    with pytest.raises(DataError, match="no clips of speaker 'nobody'"):
        peer_speech.fsdd_clips(root / "fsdd", "nobody")
    with pytest.raises(DataError, match=r"no utterances of speakers \['9999'\]"):
        peer_speech.speechocean_clips(root / "so", ["9999"])
    clips = peer_speech.speechocean_clips(root / "so", ["0042"])
    assert [(c.uid, c.reference) for c in clips] == sorted(CLIPS)
    with pytest.raises(UsageError, match="say which test set"):
        peer_speech._exports([str(tmp_path)], ["fsdd:a", "fsdd:b"])
    with pytest.raises(UsageError, match="no test set 'fsdd:c'"):
        peer_speech._exports([f"fsdd:c={tmp_path}"], ["fsdd:a"])
    with pytest.raises(UsageError, match="give --fsdd and/or --speechocean762"):
        peer_speech.main([])
