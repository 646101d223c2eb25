/*
 * A miniature telephony gateway on libquivox: opens an engine, enrolls two speakers from WAV
 * recordings, then runs two calls at once on two threads, pushing 20-ms mu-law frames (160 bytes,
 * as an RTP stream delivers them), and checks who each caller is identified as. Then a caller
 * nobody enrolled, the same call pushed as 16-bit PCM in odd chunk sizes, and an erasure.
 *
 * Usage: gateway MODELS_FILE FIXTURES_DIR [STORE_DIR]
 *   FIXTURES_DIR holds <speaker>-enroll.wav and <speaker>-call.wav (audio-fixtures/demo);
 *   with STORE_DIR the engine keeps its enrollments in STORE_DIR/gateway.sqlite, encrypted under
 *   the key in STORE_DIR/store.key, and a second engine reopened on it must know both speakers.
 * Exit status 0 when every check passed.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "quivox.h"
#include "wav.h"

#define FRAME_BYTES 160 /* 20 ms at 8 kHz */

static atomic_int failures = 0;
static mtx_t print_lock;

static void fail_status(quivox_status status, const char *call, int line) {
    char message[1024];
    quivox_last_error(message, sizeof message, NULL);
    fprintf(stderr, "gateway.c:%d: %s returned %s: %s\n", line, call, quivox_status_name(status),
            message);
    exit(1);
}

#define CHECK(call)                                                                                \
    do {                                                                                           \
        quivox_status check_status_ = (call);                                                      \
        if (check_status_ != QUIVOX_STATUS_OK) fail_status(check_status_, #call, __LINE__);        \
    } while (0)

#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "gateway.c:%d: check failed: %s: ", __LINE__, #cond);                 \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static const char *kind_name(quivox_decision_kind kind) {
    switch (kind) {
    case QUIVOX_DECISION_KIND_NEED_MORE_AUDIO: return "NEED_MORE_AUDIO";
    case QUIVOX_DECISION_KIND_IDENTIFIED: return "IDENTIFIED";
    case QUIVOX_DECISION_KIND_UNKNOWN: return "UNKNOWN";
    case QUIVOX_DECISION_KIND_NUMBER_ONLY: return "NUMBER_ONLY";
    case QUIVOX_DECISION_KIND_MISMATCH: return "MISMATCH";
    default: return "OTHER";
    }
}

static void print_decision(const char *call, const quivox_decision *d) {
    mtx_lock(&print_lock);
    printf("  [%s] %s %6llu ms call / %6llu ms speech: %-15s speaker '%s' number says '%s' "
           "llr %.2f posterior %.4f\n",
           call, d->is_final ? "=>" : "..", (unsigned long long)d->call_ms,
           (unsigned long long)d->speech_ms, kind_name(d->kind), d->speaker_id,
           d->number_speaker_id, d->llr, d->posterior);
    fflush(stdout);
    mtx_unlock(&print_lock);
}

static struct wav load(const char *dir, const char *speaker, const char *what) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-%s.wav", dir, speaker, what);
    struct wav w;
    if (wav_read(path, &w) != 0) exit(1);
    if (w.sample_rate_hz != 8000 || w.format != WAV_ULAW) {
        fprintf(stderr, "%s: expected 8 kHz mu-law\n", path);
        exit(1);
    }
    return w;
}

struct call {
    quivox_engine *engine;
    const char *caller;        /* whose voice is on the line (file name) */
    const char *number;        /* calling number, NULL when withheld */
    int use_callback;          /* decisions through the callback instead of polling */
    int pcm_chunk;             /* > 0: push as 16-bit PCM in chunks of this many samples */
    struct wav audio;
    int decisions;             /* decisions seen during the call */
    quivox_decision final;
};

static void on_decision(void *user_data, const quivox_decision *decision) {
    struct call *c = user_data;
    c->decisions++;
    print_decision(c->caller, decision);
}

static int run_call(void *arg) {
    struct call *c = arg;
    quivox_session *session = NULL;
    CHECK(quivox_engine_start_call(c->engine, c->number, c->caller, &session));
    if (c->use_callback) CHECK(quivox_session_set_callback(session, on_decision, c));
    if (c->pcm_chunk > 0) {
        int16_t *pcm = malloc(c->audio.samples * sizeof *pcm);
        if (!pcm) exit(1);
        for (size_t i = 0; i < c->audio.samples; i++) pcm[i] = ulaw_to_linear(c->audio.data[i]);
        for (size_t at = 0; at < c->audio.samples; at += (size_t)c->pcm_chunk) {
            size_t n = c->audio.samples - at < (size_t)c->pcm_chunk ? c->audio.samples - at
                                                                    : (size_t)c->pcm_chunk;
            CHECK(quivox_session_push_pcm16(session, pcm + at, n));
        }
        free(pcm);
    } else {
        for (size_t at = 0; at < c->audio.samples; at += FRAME_BYTES) {
            size_t n = c->audio.samples - at < FRAME_BYTES ? c->audio.samples - at : FRAME_BYTES;
            CHECK(quivox_session_push_ulaw(session, c->audio.data + at, n));
            if (!c->use_callback) {
                quivox_decision d;
                bool has = false;
                for (;;) {
                    CHECK(quivox_session_poll(session, &d, &has));
                    if (!has) break;
                    c->decisions++;
                    print_decision(c->caller, &d);
                }
            }
        }
    }
    uint64_t call_ms = 0, speech_ms = 0;
    CHECK(quivox_session_progress(session, &call_ms, &speech_ms));
    CHECK(quivox_session_finish(session, &c->final));
    print_decision(c->caller, &c->final);
    EXPECT(c->final.is_final, "final decision flagged");
    EXPECT(call_ms == c->audio.samples / 8, "call audio %llu ms for %zu samples",
           (unsigned long long)call_ms, c->audio.samples);
    CHECK(quivox_session_free(session));
    return 0;
}

static void enroll(quivox_engine *engine, const char *dir, const char *speaker, const char *name,
                   const char *number) {
    struct wav w = load(dir, speaker, "enroll");
    quivox_recording recording = {QUIVOX_AUDIO_FORMAT_ULAW, w.data, w.samples};
    const char *numbers[1] = {number};
    quivox_enrollment e = {
        .speaker_id = speaker,
        .display_name = name,
        .external_id = NULL,
        .numbers = number ? numbers : NULL,
        .numbers_len = number ? 1 : 0,
        .consent_method = "ivr-recorded",
        .consent_reference = "gateway test",
        .consent_given_at = 0,
        .keep_audio = false,
    };
    quivox_enroll_report report;
    CHECK(quivox_engine_enroll(engine, &e, &recording, 1, &report));
    printf("enrolled %s (%s): %.1f s of audio, %llu ms of speech, new speaker: %s\n", speaker, name,
           (double)w.samples / 8000.0, (unsigned long long)report.total_speech_ms,
           report.new_speaker ? "yes" : "no");
    EXPECT(report.new_speaker && report.model_revision == 1, "%s is new", speaker);
    EXPECT(report.total_speech_ms >= 10000, "%s: %llu ms of speech", speaker,
           (unsigned long long)report.total_speech_ms);
    wav_free(&w);
}

static void expect_identified(const struct call *c, const char *speaker) {
    EXPECT(c->final.kind == QUIVOX_DECISION_KIND_IDENTIFIED, "call of %s: final %s, expected IDENTIFIED",
           c->caller, kind_name(c->final.kind));
    EXPECT(strcmp(c->final.speaker_id, speaker) == 0, "call of %s: identified '%s', expected '%s'",
           c->caller, c->final.speaker_id, speaker);
    EXPECT(c->final.posterior >= 0.99 && c->final.posterior <= 1.0, "posterior %f",
           c->final.posterior);
}

static quivox_engine *open_engine(const char *models, const char *store_path, const char *key_file) {
    quivox_engine_config config;
    CHECK(quivox_engine_config_init(&config));
    config.models_path = models;
    config.store_path = store_path;
    config.store_key_file = key_file;
    config.operator_name = "gateway-test";
    quivox_engine *engine = NULL;
    CHECK(quivox_engine_open(&config, &engine));
    return engine;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODELS_FILE FIXTURES_DIR [STORE_DIR]\n", argv[0]);
        return 2;
    }
    const char *models = argv[1], *fixtures = argv[2], *store_dir = argc > 3 ? argv[3] : NULL;
    if (quivox_abi_version() != QUIVOX_ABI_VERSION) {
        fprintf(stderr, "libquivox ABI %u, header ABI %u\n", quivox_abi_version(), QUIVOX_ABI_VERSION);
        return 1;
    }
    printf("libquivox %s (ABI %u)\n", quivox_version(), quivox_abi_version());
    mtx_init(&print_lock, mtx_plain);

    char store_path[4096], key_path[4096];
    if (store_dir) {
        snprintf(store_path, sizeof store_path, "%s/gateway.sqlite", store_dir);
        snprintf(key_path, sizeof key_path, "%s/store.key", store_dir);
    }
    quivox_engine *engine =
        open_engine(models, store_dir ? store_path : NULL, store_dir ? key_path : NULL);

    enroll(engine, fixtures, "so0457", "Alex Martin", "+44 20 7946 0001");
    enroll(engine, fixtures, "so1027", "Sam Martin", "+44 20 7946 0001");
    size_t count = 0;
    CHECK(quivox_engine_speaker_count(engine, &count));
    EXPECT(count == 2, "%zu speakers enrolled", count);
    bool linked = false;
    CHECK(quivox_engine_link_number(engine, "+33 1 23 45 67 89", "so1027", &linked));
    EXPECT(linked, "first link is new");
    CHECK(quivox_engine_link_number(engine, "+33 (1) 23.45.67.89", "so1027", &linked));
    EXPECT(!linked, "the same number written differently is the same link");
    CHECK(quivox_engine_unlink_number(engine, "+33123456789", "so1027"));

    if (store_dir) {
        /* What a gateway restart does: a second engine on the same store sees both speakers. */
        quivox_engine *reopened = open_engine(models, store_path, key_path);
        CHECK(quivox_engine_speaker_count(reopened, &count));
        EXPECT(count == 2, "%zu speakers after reopening the store", count);
        CHECK(quivox_engine_free(reopened));
    }

    /* Two calls at once from the household's number, one voice each: decisions of the first are
     * polled, those of the second come through the callback. */
    const char *household = "+44 20 7946 0001";
    struct call calls[2] = {
        {.engine = engine, .caller = "so0457", .number = household, .use_callback = 0},
        {.engine = engine, .caller = "so1027", .number = household, .use_callback = 1},
    };
    for (int i = 0; i < 2; i++) calls[i].audio = load(fixtures, calls[i].caller, "call");
    printf("two calls on two threads, 20-ms mu-law frames:\n");
    thrd_t threads[2];
    for (int i = 0; i < 2; i++) {
        if (thrd_create(&threads[i], run_call, &calls[i]) != thrd_success) return 1;
    }
    for (int i = 0; i < 2; i++) thrd_join(threads[i], NULL);
    expect_identified(&calls[0], "so0457");
    expect_identified(&calls[1], "so1027");
    for (int i = 0; i < 2; i++) {
        EXPECT(calls[i].decisions >= 1, "call of %s: %d decisions during the call", calls[i].caller,
               calls[i].decisions);
    }

    /* The same voice as 16-bit PCM in chunks of 37 samples: decisions do not depend on chunking. */
    printf("the so0457 call again, as 16-bit PCM in 37-sample chunks:\n");
    struct call pcm = {.engine = engine, .caller = "so0457", .number = household, .pcm_chunk = 37,
                       .audio = calls[0].audio};
    run_call(&pcm);
    expect_identified(&pcm, "so0457");
    EXPECT(pcm.final.speech_ms == calls[0].final.speech_ms, "speech %llu vs %llu ms",
           (unsigned long long)pcm.final.speech_ms, (unsigned long long)calls[0].final.speech_ms);
    EXPECT(pcm.final.llr == calls[0].final.llr, "LLR %f vs %f", pcm.final.llr, calls[0].final.llr);

    /* A caller nobody enrolled, number withheld: never identified as an enrolled speaker. */
    printf("a caller nobody enrolled:\n");
    struct call stranger = {.engine = engine, .caller = "so9614", .number = NULL};
    stranger.audio = load(fixtures, "so9614", "call");
    run_call(&stranger);
    EXPECT(stranger.final.kind != QUIVOX_DECISION_KIND_IDENTIFIED, "stranger identified as '%s'",
           stranger.final.speaker_id);
    wav_free(&stranger.audio);

    /* Verification (batch): the claim "this is so1027" is accepted on so1027's call and rejected
     * on so0457's, with a positive LLR for the true claim and a lower, negative one for the false. */
    quivox_recording own = {QUIVOX_AUDIO_FORMAT_ULAW, calls[1].audio.data, calls[1].audio.samples};
    quivox_recording other = {QUIVOX_AUDIO_FORMAT_ULAW, calls[0].audio.data, calls[0].audio.samples};
    quivox_verification v_true, v_false;
    CHECK(quivox_engine_verify(engine, "so1027", &own, 1, &v_true));
    CHECK(quivox_engine_verify(engine, "so1027", &other, 1, &v_false));
    printf("verify so1027 on so1027's call: llr %.2f posterior %.4f %s, %llu ms of speech\n",
           v_true.llr, v_true.posterior, v_true.accepted ? "accepted" : "rejected",
           (unsigned long long)v_true.net_speech_ms);
    printf("verify so1027 on so0457's call: llr %.2f posterior %.4f %s\n", v_false.llr,
           v_false.posterior, v_false.accepted ? "accepted" : "rejected");
    EXPECT(v_true.accepted && v_true.llr > 0.0 && v_true.net_speech_ms > 3000, "true claim: llr %f",
           v_true.llr);
    EXPECT(!v_false.accepted && v_false.llr < 0.0 && v_false.llr < v_true.llr, "false claim: llr %f",
           v_false.llr);

    /* Erasure: after forgetting so1027 their voice is no longer identified as so1027, and the
     * household number no longer names them. */
    CHECK(quivox_engine_forget(engine, "so1027"));
    CHECK(quivox_engine_speaker_count(engine, &count));
    EXPECT(count == 1, "%zu speakers after forgetting one", count);
    printf("the so1027 call after forgetting so1027:\n");
    struct call forgotten = {.engine = engine, .caller = "so1027", .number = household,
                             .audio = calls[1].audio};
    run_call(&forgotten);
    EXPECT(strcmp(forgotten.final.speaker_id, "so1027") != 0 &&
               strcmp(forgotten.final.number_speaker_id, "so1027") != 0,
           "forgotten speaker still named");

    for (int i = 0; i < 2; i++) wav_free(&calls[i].audio);
    CHECK(quivox_engine_free(engine));
    mtx_destroy(&print_lock);
    if (failures) {
        printf("gateway: %d checks failed\n", (int)failures);
        return 1;
    }
    printf("gateway: all checks passed\n");
    return 0;
}
