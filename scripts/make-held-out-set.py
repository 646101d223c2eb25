#!/usr/bin/env python3
"""Writes the background's held-out read-sentence speakers as a dev-style set that `quivox eval`
reads, to see how the calibration speakers themselves score.

The split is the recipes' (`quivox::recipe::gmm::split_background`): speakers with at least 15
files, sorted by id, every 5th one (indices 0, 5, 10, ...) held out from UBM, T, LDA and PLDA
training; those are the speakers the calibrations and the fusion are trained on. Read speakers
(median file over 1.5 s) enrol on their first files until 30 s of audio, as
`HeldOutDesignOptions::default()` does, and are tested on consecutive 7.000-s segments of the
concatenation of their other files (the recipe also cuts 3- and 5-s tests and channel copies;
this set keeps only the clean 7-s ones, what dev-read has). Every enrolled speaker against every
test; closed- and open-set lists with the whole gallery (no unknown speakers).

Standard library and sox only:

    python3 scripts/make-held-out-set.py ../shared/corpus/background /tmp/held-out
    quivox eval --system all --corpus /tmp/held-out --sets held-out-read
"""
import os
import subprocess
import sys
import wave

RATE = 8000
MIN_FILES, EVERY = 15, 5
ENROLL_SECONDS, TEST_SECONDS, WORD_MEDIAN_SECONDS = 30.0, 7.0, 1.5


def pcm(path):
    """16-bit mono PCM bytes of a background WAV (sox reads its G.711 files too)."""
    out = subprocess.run(
        ["sox", path, "-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-r", str(RATE), "-"],
        check=True,
        capture_output=True,
    )
    return out.stdout


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(data)


def main(background, out_root):
    by_speaker = {}
    with open(os.path.join(background, "utt2spk")) as f:
        for line in f:
            path, spk = line.split()
            by_speaker.setdefault(spk, []).append(path)
    eligible = sorted(s for s, files in by_speaker.items() if len(files) >= MIN_FILES)
    held = [s for i, s in enumerate(eligible) if i % EVERY == 0]
    out = os.path.join(out_root, "held-out-read")
    gallery, tests = [], []
    for spk in held:
        audio = [pcm(os.path.join(background, p)) for p in by_speaker[spk]]
        lengths = sorted(len(a) // 2 for a in audio)
        if lengths[len(lengths) // 2] <= WORD_MEDIAN_SECONDS * RATE:
            continue  # isolated-word speaker: dev has its own word set
        enrolled, n, k = [], 0, 0
        while k < len(audio) and n < ENROLL_SECONDS * RATE:
            rel = f"enroll/{spk}/{k:03d}.wav"
            write(os.path.join(out, rel), audio[k])
            enrolled.append(rel)
            n += len(audio[k]) // 2
            k += 1
        gallery.append((spk, enrolled))
        rest = b"".join(audio[k:])
        seg = int(TEST_SECONDS * RATE) * 2
        for j in range(len(rest) // seg):
            rel = f"test/{spk}/{spk}-t{j:02d}.wav"
            write(os.path.join(out, rel), rest[j * seg : (j + 1) * seg])
            tests.append((spk, rel))

    def lines(name, rows):
        with open(os.path.join(out, name), "w") as f:
            f.writelines(r + "\n" for r in rows)

    lines("enroll.lst", [spk + " " + " ".join(files) for spk, files in gallery])
    lines(
        "trials.txt",
        [
            f"{spk} {rel} {'target' if spk == t else 'nontarget'}"
            for spk, _ in gallery
            for t, rel in tests
        ],
    )
    for kind in ("closed", "open"):
        lines(f"ident_{kind}.txt", [f"{rel} {t}" for t, rel in tests])
        lines(f"ident_{kind}_models.txt", [spk for spk, _ in gallery])
    print(f"{out}: {len(gallery)} read speakers, {len(tests)} tests of {TEST_SECONDS} s")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    bg = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "shared", "corpus", "background")
    main(bg, sys.argv[2] if len(sys.argv) > 2 else "/tmp/held-out")
