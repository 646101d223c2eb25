#!/usr/bin/env python3
"""Times the Python reference of quivox's GE2E encoder (issue #11's speed comparison).

  time-resemblyzer.py [WAV] [--reps N]

Same pipeline as ../shared/tools/resemblyzer_ref.py (librosa resample to 16 kHz, preprocess_wav,
VoiceEncoder("cpu").embed_utterance) on one thread (torch.set_num_threads(1)); reports the model
load time and the median / best time of one call from the 8 kHz samples to the embedding, so it can
be compared with `cargo bench --bench embedding -- batch_7s_call` run in the same sitting. Needs
the venv of ../shared/tools (resemblyzer, librosa, torch); run it pinned to one core, e.g.
`taskset -c 0 python scripts/time-resemblyzer.py`.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "tools"))
from kaldi_mfcc_ref import read_wav_samples  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wav", nargs="?", default=os.path.join(HERE, "..", "audio-fixtures", "demo", "so1027-call.wav"))
    ap.add_argument("--reps", type=int, default=30)
    a = ap.parse_args()
    import librosa
    import torch
    from resemblyzer import VoiceEncoder, preprocess_wav

    torch.set_num_threads(1)
    sr, x = read_wav_samples(a.wav)
    x = x.astype(np.float32) / 32768.0
    t = time.perf_counter()
    enc = VoiceEncoder("cpu", verbose=False)
    load_ms = (time.perf_counter() - t) * 1000

    def call():
        y = librosa.resample(x, orig_sr=sr, target_sr=16000) if sr != 16000 else x
        return enc.embed_utterance(preprocess_wav(y))

    for _ in range(3):
        call()
    times = []
    for _ in range(a.reps):
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    print("%s (%.2f s): load %.1f ms; per call median %.1f ms, best %.1f ms (%d reps, 1 thread)"
          % (os.path.basename(a.wav), len(x) / sr, load_ms, statistics.median(times), min(times), a.reps))


if __name__ == "__main__":
    main()
