#!/usr/bin/env python3
"""Builds audio-fixtures/demo/ from ../shared/corpus/dev-read (speechocean762, CC BY 4.0).

For each demo speaker: one enrollment WAV = that speaker's enroll.lst clips concatenated
(raw G.711 mu-law bytes, lossless), and the speaker's first 7-s test segment copied as is.
One held-out speaker (not enrolled) provides an "unknown caller" test.
Stdlib only. Usage: python3 scripts/make-demo-fixtures.py [CORPUS_DIR]
"""
import os
import shutil
import struct
import sys

ENROLLED = ["so0457", "so1027", "so2061", "so2740"]
UNKNOWN = "so9614"  # left out of the dev-read open-set gallery by the corpus builder


def read_ulaw_payload(path):
    data = open(path, "rb").read()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", path
    pos, fmt_tag, payload = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt_tag, channels, rate = struct.unpack("<HHI", body[:8])
            assert (fmt_tag, channels, rate) == (7, 1, 8000), (path, fmt_tag, channels, rate)
        elif cid == b"data":
            payload = body
        pos += 8 + size + (size & 1)
    assert payload is not None, path
    return payload


def write_ulaw_wav(path, payload):
    fmt = struct.pack("<HHIIHHH", 7, 1, 8000, 8000, 1, 8, 0)
    fact = struct.pack("<I", len(payload))
    pad = b"\0" if len(payload) & 1 else b""
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<I", 4) + fact
    body += b"data" + struct.pack("<I", len(payload)) + payload + pad
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    corpus = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "shared", "corpus")
    dev = os.path.join(corpus, "dev-read")
    out = os.path.join(here, "..", "audio-fixtures", "demo")
    os.makedirs(out, exist_ok=True)
    lists = {line.split()[0]: line.split()[1:] for line in open(os.path.join(dev, "enroll.lst")) if line.strip()}
    for spk in ENROLLED:
        payload = b"".join(read_ulaw_payload(os.path.join(dev, rel)) for rel in lists[spk])
        write_ulaw_wav(os.path.join(out, f"{spk}-enroll.wav"), payload)
        print(f"{spk}-enroll.wav {len(payload) / 8000:.1f} s from {len(lists[spk])} clips")
    for spk in ENROLLED + [UNKNOWN]:
        shutil.copyfile(os.path.join(dev, "test", spk, f"{spk}-t00.wav"), os.path.join(out, f"{spk}-call.wav"))
        print(f"{spk}-call.wav (dev-read/test/{spk}/{spk}-t00.wav)")


if __name__ == "__main__":
    main()
