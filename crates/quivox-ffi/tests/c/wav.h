/*
 * Minimal WAV reader for the C tests: mono 8 kHz, 16-bit PCM (format 1), A-law (6) or mu-law (7).
 * Header-only; a gateway would get its audio from RTP instead.
 */
#ifndef QUIVOX_TEST_WAV_H
#define QUIVOX_TEST_WAV_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum wav_format { WAV_PCM16 = 1, WAV_ALAW = 6, WAV_ULAW = 7 };

struct wav {
    enum wav_format format;
    uint32_t sample_rate_hz;
    uint8_t *data;       /* the data chunk as stored (little-endian for PCM16) */
    size_t data_bytes;
    size_t samples;
};

static uint32_t wav_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t wav_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* Reads `path`; returns 0 on success, -1 with a message on stderr otherwise. */
static int wav_read(const char *path, struct wav *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return -1;
    }
    long size = ftell(f);
    rewind(f);
    if (size < 12) {
        fprintf(stderr, "%s: %ld bytes, too short for a WAV file\n", path, size);
        fclose(f);
        return -1;
    }
    uint8_t *bytes = malloc((size_t)size);
    if (!bytes || fread(bytes, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "%s: read failed\n", path);
        free(bytes);
        fclose(f);
        return -1;
    }
    fclose(f);
    if (memcmp(bytes, "RIFF", 4) != 0 || memcmp(bytes + 8, "WAVE", 4) != 0) {
        fprintf(stderr, "%s: not a RIFF/WAVE file\n", path);
        free(bytes);
        return -1;
    }
    int have_fmt = 0;
    size_t at = 12;
    while (at + 8 <= (size_t)size) {
        uint32_t chunk = wav_le32(bytes + at + 4);
        const uint8_t *body = bytes + at + 8;
        if (chunk > (size_t)size - at - 8) {
            fprintf(stderr, "%s: chunk of %u bytes runs past the end\n", path, (unsigned)chunk);
            break;
        }
        if (memcmp(bytes + at, "fmt ", 4) == 0 && chunk >= 16) {
            uint16_t tag = wav_le16(body), channels = wav_le16(body + 2), bits = wav_le16(body + 14);
            out->sample_rate_hz = wav_le32(body + 4);
            if (channels != 1 || !((tag == WAV_PCM16 && bits == 16) ||
                                   ((tag == WAV_ALAW || tag == WAV_ULAW) && bits == 8))) {
                fprintf(stderr, "%s: format %u, %u channels, %u bits: expected mono PCM16, A-law or mu-law\n",
                        path, tag, channels, bits);
                break;
            }
            out->format = (enum wav_format)tag;
            have_fmt = 1;
        } else if (memcmp(bytes + at, "data", 4) == 0 && have_fmt) {
            out->data = malloc(chunk ? chunk : 1);
            if (!out->data) break;
            memcpy(out->data, body, chunk);
            out->data_bytes = chunk;
            out->samples = out->format == WAV_PCM16 ? chunk / 2 : chunk;
            free(bytes);
            return 0;
        }
        at += 8 + chunk + (chunk & 1);
    }
    fprintf(stderr, "%s: no usable fmt/data chunks\n", path);
    free(bytes);
    return -1;
}

static void wav_free(struct wav *w) {
    free(w->data);
    w->data = NULL;
}

/* G.711 mu-law to 16-bit linear (ITU-T G.711), for the PCM16 push test. */
static int16_t ulaw_to_linear(uint8_t code) {
    code = (uint8_t)~code;
    int t = ((code & 0x0F) << 3) + 0x84;
    t <<= (code & 0x70) >> 4;
    return (int16_t)((code & 0x80) ? (0x84 - t) : (t - 0x84));
}

#endif
