#!/usr/bin/env python3
"""Intermediate golden files for quivox's speaker-encoder tests, made with Resemblyzer's own functions.

  embedding_goldens.py encoder-input IN.wav MEL.npy EMB.npy
      The mel frames Resemblyzer's embed_utterance feeds its LSTM when called on IN.wav resampled
      to 16 kHz (librosa soxr_hq) without preprocess_wav: the waveform zero-padded to the end of the
      last partial window, resemblyzer.audio.wav_to_mel_spectrogram. Checks that
      VoiceEncoder.embed_utterance gives EMB.npy (written by resemblyzer_ref.py --no-preprocess).
  embedding_goldens.py energy-vad IN.wav EMB.npy
      resemblyzer_ref.py's pipeline with webrtcvad replaced by quivox's energy rule (transcribed
      below: 30 ms windows, speech above -44 dBFS, or above -52 dBFS right after speech, then
      Resemblyzer's own smoothing and dilation): isolates the VAD from the rest of the pipeline.
  embedding_goldens.py synthetic-mel MEL.npy
      wav_to_mel_spectrogram of synthetic_signal() below (1.0 s at 16 kHz), which the Rust test
      regenerates from the same formula.
"""
import os
import sys

import numpy as np

sys.path.insert(0, "/work/shared/tools")


def synthetic_signal():
    """1 s at 16 kHz: a 220 Hz tone with harmonics, a chirp 300 -> 3300 Hz and a 2.5 kHz burst."""
    t = np.arange(16000, dtype=np.float64) / 16000.0
    x = 0.2 * np.sin(2 * np.pi * 220.0 * t) + 0.05 * np.sin(2 * np.pi * 660.0 * t)
    x += 0.1 * np.sin(2 * np.pi * (300.0 * t + 1500.0 * t * t))
    x += np.where((t > 0.4) & (t < 0.6), 0.15 * np.sin(2 * np.pi * 2500.0 * t), 0.0)
    return x.astype(np.float32)


def energy_vad(wav_path, out_path):
    import librosa
    import torch
    from scipy.ndimage import binary_dilation
    from kaldi_mfcc_ref import read_wav_samples
    from resemblyzer import VoiceEncoder
    from resemblyzer.audio import normalize_volume

    torch.set_num_threads(1)
    sr, x = read_wav_samples(wav_path)
    y = librosa.resample(x.astype(np.float32) / 32768.0, orig_sr=sr, target_sr=16000)
    y = normalize_volume(y, -30, increase_only=True)
    y = y[:len(y) // 480 * 480]
    pcm = np.round(y * 32767).astype(np.int16).reshape(-1, 480).astype(np.float64)
    levels = 10 * np.log10(np.maximum(np.mean(pcm ** 2, axis=1) / 32767.0 ** 2, 1e-20))
    flags, speech = [], False
    for level in levels:
        speech = level > -44.0 or (speech and level > -52.0)
        flags.append(speech)
    flags = np.array(flags, dtype=float)
    padded = np.concatenate((np.zeros(3), flags, np.zeros(4)))
    smoothed = np.round(np.array([padded[j:j + 8].mean() for j in range(len(flags))])).astype(bool)
    mask = np.repeat(binary_dilation(smoothed, np.ones(7)), 480)
    emb = VoiceEncoder("cpu", verbose=False).embed_utterance(y[mask])
    np.save(out_path, emb.astype(np.float32))


def main():
    import librosa
    from resemblyzer import VoiceEncoder
    from resemblyzer.audio import wav_to_mel_spectrogram

    if sys.argv[1] == "synthetic-mel":
        np.save(sys.argv[2], np.ascontiguousarray(wav_to_mel_spectrogram(synthetic_signal()), dtype=np.float32))
        return
    if sys.argv[1] == "energy-vad":
        energy_vad(sys.argv[2], sys.argv[3])
        return
    if sys.argv[1] != "encoder-input":
        sys.exit(__doc__)
    import torch
    from kaldi_mfcc_ref import read_wav_samples

    torch.set_num_threads(1)
    sr, x = read_wav_samples(sys.argv[2])
    y = librosa.resample(x.astype(np.float32) / 32768.0, orig_sr=sr, target_sr=16000)
    wav_slices, _ = VoiceEncoder.compute_partial_slices(len(y), 1.3, 0.75)
    stop = wav_slices[-1].stop
    if stop >= len(y):
        y = np.pad(y, (0, stop - len(y)), "constant")
    mel = np.ascontiguousarray(wav_to_mel_spectrogram(y), dtype=np.float32)
    np.save(sys.argv[3], mel)
    emb = VoiceEncoder("cpu", verbose=False).embed_utterance(y)
    ref = np.load(sys.argv[4])
    if not np.allclose(emb, ref, atol=1e-6):
        sys.exit("embedding of the padded waveform differs from resemblyzer_ref.py's")
    print("%s: %d mel frames for the encoder" % (os.path.basename(sys.argv[2]), len(mel)))


if __name__ == "__main__":
    main()
