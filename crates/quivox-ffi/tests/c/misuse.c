/*
 * Misuse of the C API: NULL handles and pointers, zero lengths, wrong-size and misaligned
 * buffers, handles freed in any order or twice, handles of the wrong kind, invalid UTF-8, bad
 * numbers, unknown enum values. Every call must return the documented error status (and a
 * message), never crash; run under AddressSanitizer and UndefinedBehaviorSanitizer.
 *
 * Usage: misuse MODELS_FILE SCRATCH_DIR
 *   SCRATCH_DIR: an empty writable folder (stores and key files are made there).
 */
#define _POSIX_C_SOURCE 200112L /* setenv, unsetenv */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "quivox.h"

static int failures = 0;
static int checks = 0;

/* Checks a status and that a failure left a message naming the function. */
static void expect_status(quivox_status got, quivox_status expected, const char *call, int line) {
    checks++;
    char message[512] = "";
    if (got != QUIVOX_STATUS_OK) quivox_last_error(message, sizeof message, NULL);
    if (got != expected) {
        fprintf(stderr, "misuse.c:%d: %s returned %s, expected %s (%s)\n", line, call,
                quivox_status_name(got), quivox_status_name(expected), message);
        failures++;
    } else if (got != QUIVOX_STATUS_OK && strncmp(message, "quivox_", 7) != 0) {
        fprintf(stderr, "misuse.c:%d: %s: message '%s' does not name the function\n", line, call,
                message);
        failures++;
    } else if (got != QUIVOX_STATUS_OK) {
        printf("  %-30s %s\n", quivox_status_name(got), message);
    }
}

#define EXPECT_STATUS(call, expected) expect_status((call), (expected), #call, __LINE__)
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        checks++;                                                                                  \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "misuse.c:%d: check failed: %s\n", __LINE__, #cond);                  \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* The last error is per thread: a fresh thread has none. */
static int fresh_thread(void *arg) {
    size_t *len = arg;
    char message[64] = "x";
    if (quivox_last_error(message, sizeof message, len) != QUIVOX_STATUS_OK || message[0] != 0) {
        *len = 999;
    }
    return 0;
}

static void on_decision(void *user_data, const quivox_decision *decision) {
    (void)decision;
    (*(int *)user_data)++;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODELS_FILE SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    const char *models = argv[1], *scratch = argv[2];
    const char bad_utf8[] = {'+', '4', (char)0xff, (char)0xfe, '1', 0};

    /* --- opening --- */
    quivox_engine_config config;
    quivox_engine *engine = (quivox_engine *)0x1; /* must be overwritten with NULL on failure */
    EXPECT_STATUS(quivox_engine_config_init(NULL), QUIVOX_STATUS_NULL_ARGUMENT);
    EXPECT_STATUS(quivox_engine_config_init(&config), QUIVOX_STATUS_OK);
    EXPECT_STATUS(quivox_engine_open(NULL, &engine), QUIVOX_STATUS_NULL_ARGUMENT);
    EXPECT(engine == NULL);
    EXPECT_STATUS(quivox_engine_open(&config, NULL), QUIVOX_STATUS_NULL_ARGUMENT);
    EXPECT_STATUS(quivox_engine_open(&config, &engine), QUIVOX_STATUS_NULL_ARGUMENT);
    config.models_path = bad_utf8;
    EXPECT_STATUS(quivox_engine_open(&config, &engine), QUIVOX_STATUS_INVALID_UTF8);
    config.models_path = "/nonexistent/models.qvx";
    EXPECT_STATUS(quivox_engine_open(&config, &engine), QUIVOX_STATUS_MODEL_ERROR);
    config.models_path = models;
    config.confidence = 1.5;
    EXPECT_STATUS(quivox_engine_open(&config, &engine), QUIVOX_STATUS_INVALID_ARGUMENT);
    config.confidence = 0.0;
    config.min_speech_ms = 9000; /* above the maximum (7000 by default) */
    EXPECT_STATUS(quivox_engine_open(&config, &engine), QUIVOX_STATUS_INVALID_ARGUMENT);
    EXPECT(engine == NULL);
    config.min_speech_ms = 0;

    /* --- the store key --- */
    char store_path[4096], key_a[4096], key_b[4096], key_bad[4096];
    snprintf(store_path, sizeof store_path, "%s/misuse.sqlite", scratch);
    snprintf(key_a, sizeof key_a, "%s/a.key", scratch);
    snprintf(key_b, sizeof key_b, "%s/b.key", scratch);
    snprintf(key_bad, sizeof key_bad, "%s/bad.key", scratch);
    const char *keys[3][2] = {
        {key_a, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"},
        {key_b, "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n"},
        {key_bad, "not a key\n"},
    };
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(keys[i][0], "w");
        if (!f || fputs(keys[i][1], f) < 0 || fclose(f) != 0) {
            fprintf(stderr, "cannot write %s\n", keys[i][0]);
            return 1;
        }
    }
    config.store_path = store_path;
    config.store_key_file = key_bad;
    EXPECT_STATUS(quivox_engine_open(&config, &engine), QUIVOX_STATUS_KEY_ERROR);
    config.store_key_file = "/nonexistent/store.key";
    EXPECT_STATUS(quivox_engine_open(&config, &engine), QUIVOX_STATUS_KEY_ERROR);
    config.store_key_file = key_a;
    EXPECT_STATUS(quivox_engine_open(&config, &engine), QUIVOX_STATUS_OK);
    EXPECT_STATUS(quivox_engine_free(engine), QUIVOX_STATUS_OK);
    /* The store was created under key A: key B is refused before anything is written. */
    config.store_key_file = key_b;
    EXPECT_STATUS(quivox_engine_open(&config, &engine), QUIVOX_STATUS_KEY_ERROR);
    EXPECT(engine == NULL);
    /* No key file: the key comes from QUIVOX_STORE_KEY. */
    config.store_key_file = NULL;
    unsetenv("QUIVOX_STORE_KEY");
    EXPECT_STATUS(quivox_engine_open(&config, &engine), QUIVOX_STATUS_KEY_ERROR);
    setenv("QUIVOX_STORE_KEY", keys[1][1], 1);
    EXPECT_STATUS(quivox_engine_open(&config, &engine), QUIVOX_STATUS_KEY_ERROR);
    setenv("QUIVOX_STORE_KEY", keys[0][1], 1);
    EXPECT_STATUS(quivox_engine_open(&config, &engine), QUIVOX_STATUS_OK);
    EXPECT_STATUS(quivox_engine_free(engine), QUIVOX_STATUS_OK);
    unsetenv("QUIVOX_STORE_KEY");
    config.store_path = "/nonexistent/dir/store.sqlite";
    config.store_key_file = key_a;
    EXPECT_STATUS(quivox_engine_open(&config, &engine), QUIVOX_STATUS_STORE_ERROR);
    config.store_path = NULL;
    config.store_key_file = NULL;

    EXPECT_STATUS(quivox_engine_open(&config, &engine), QUIVOX_STATUS_OK);
    EXPECT(engine != NULL);

    /* --- the last-error buffer --- */
    char small[4];
    size_t needed = 0;
    EXPECT_STATUS(quivox_engine_forget(NULL, "x"), QUIVOX_STATUS_INVALID_HANDLE);
    EXPECT(quivox_last_error(small, sizeof small, &needed) == QUIVOX_STATUS_BUFFER_TOO_SMALL);
    EXPECT(needed > 3 && strlen(small) == 3);
    EXPECT(quivox_last_error(small, 0, &needed) == QUIVOX_STATUS_BUFFER_TOO_SMALL);
    EXPECT(quivox_last_error(NULL, 16, NULL) == QUIVOX_STATUS_NULL_ARGUMENT);
    char *full = malloc(needed + 1);
    EXPECT(full && quivox_last_error(full, needed + 1, NULL) == QUIVOX_STATUS_OK &&
           strlen(full) == needed);
    free(full);
    size_t fresh_len = 12345;
    thrd_t t;
    EXPECT(thrd_create(&t, fresh_thread, &fresh_len) == thrd_success);
    thrd_join(t, NULL);
    EXPECT(fresh_len == 0);
    EXPECT(strcmp(quivox_status_name(QUIVOX_STATUS_INVALID_HANDLE), "QUIVOX_STATUS_INVALID_HANDLE") == 0);
    EXPECT(strcmp(quivox_status_name(999), "QUIVOX_STATUS_UNKNOWN") == 0);

    /* --- enrollment --- */
    uint8_t one_second[8000];
    for (size_t i = 0; i < sizeof one_second; i++) one_second[i] = (uint8_t)(i * 37u);
    quivox_recording rec = {QUIVOX_AUDIO_FORMAT_ULAW, one_second, sizeof one_second};
    const char *numbers[2] = {"+44 20 7946 0001", "call me maybe"};
    quivox_enrollment e = {.speaker_id = "cust-1", .consent_method = NULL};
    quivox_enroll_report report;
    EXPECT_STATUS(quivox_engine_enroll(NULL, &e, &rec, 1, &report), QUIVOX_STATUS_INVALID_HANDLE);
    EXPECT_STATUS(quivox_engine_enroll(engine, NULL, &rec, 1, &report), QUIVOX_STATUS_NULL_ARGUMENT);
    /* Consent is required. */
    EXPECT_STATUS(quivox_engine_enroll(engine, &e, &rec, 1, &report), QUIVOX_STATUS_NULL_ARGUMENT);
    e.consent_method = "written";
    EXPECT_STATUS(quivox_engine_enroll(engine, &e, NULL, 1, &report), QUIVOX_STATUS_NULL_ARGUMENT);
    EXPECT_STATUS(quivox_engine_enroll(engine, &e, &rec, 0, &report), QUIVOX_STATUS_INVALID_ARGUMENT);
    rec.len = 0;
    EXPECT_STATUS(quivox_engine_enroll(engine, &e, &rec, 1, &report), QUIVOX_STATUS_INVALID_ARGUMENT);
    rec.len = sizeof one_second;
    rec.format = 9;
    EXPECT_STATUS(quivox_engine_enroll(engine, &e, &rec, 1, &report), QUIVOX_STATUS_INVALID_ARGUMENT);
    /* PCM16 whose pointer is not 2-byte aligned (made through an integer: no misaligned access in C). */
    rec.format = QUIVOX_AUDIO_FORMAT_PCM16;
    rec.data = (const void *)((uintptr_t)one_second | 1u);
    rec.len = 100;
    EXPECT_STATUS(quivox_engine_enroll(engine, &e, &rec, 1, &report), QUIVOX_STATUS_INVALID_ARGUMENT);
    rec = (quivox_recording){QUIVOX_AUDIO_FORMAT_ULAW, one_second, sizeof one_second};
    e.speaker_id = NULL;
    EXPECT_STATUS(quivox_engine_enroll(engine, &e, &rec, 1, &report), QUIVOX_STATUS_NULL_ARGUMENT);
    e.speaker_id = "";
    EXPECT_STATUS(quivox_engine_enroll(engine, &e, &rec, 1, &report), QUIVOX_STATUS_INVALID_ARGUMENT);
    char long_id[400];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    e.speaker_id = long_id;
    EXPECT_STATUS(quivox_engine_enroll(engine, &e, &rec, 1, &report), QUIVOX_STATUS_INVALID_ARGUMENT);
    e.speaker_id = bad_utf8;
    EXPECT_STATUS(quivox_engine_enroll(engine, &e, &rec, 1, &report), QUIVOX_STATUS_INVALID_UTF8);
    e.speaker_id = "cust-1";
    e.display_name = bad_utf8;
    EXPECT_STATUS(quivox_engine_enroll(engine, &e, &rec, 1, &report), QUIVOX_STATUS_INVALID_UTF8);
    e.display_name = "Customer One";
    e.numbers = NULL;
    e.numbers_len = 1;
    EXPECT_STATUS(quivox_engine_enroll(engine, &e, &rec, 1, &report), QUIVOX_STATUS_NULL_ARGUMENT);
    e.numbers = numbers;
    e.numbers_len = 2;
    EXPECT_STATUS(quivox_engine_enroll(engine, &e, &rec, 1, &report), QUIVOX_STATUS_INVALID_NUMBER);
    numbers[1] = bad_utf8;
    EXPECT_STATUS(quivox_engine_enroll(engine, &e, &rec, 1, &report), QUIVOX_STATUS_INVALID_UTF8);
    e.numbers_len = 1;
    /* One second of noise: refused by the quality checks, nothing enrolled. */
    EXPECT_STATUS(quivox_engine_enroll(engine, &e, &rec, 1, &report), QUIVOX_STATUS_ENROLLMENT_REFUSED);
    size_t count = 99;
    EXPECT_STATUS(quivox_engine_speaker_count(engine, NULL), QUIVOX_STATUS_NULL_ARGUMENT);
    EXPECT_STATUS(quivox_engine_speaker_count(engine, &count), QUIVOX_STATUS_OK);
    EXPECT(count == 0);

    /* --- numbers and erasure --- */
    EXPECT_STATUS(quivox_engine_link_number(engine, "+1 555 0100", "nobody", NULL), QUIVOX_STATUS_UNKNOWN_SPEAKER);
    EXPECT_STATUS(quivox_engine_link_number(engine, bad_utf8, "nobody", NULL), QUIVOX_STATUS_INVALID_UTF8);
    EXPECT_STATUS(quivox_engine_link_number(engine, "(+1) 555-0100 ext", "nobody", NULL), QUIVOX_STATUS_INVALID_NUMBER);
    EXPECT_STATUS(quivox_engine_link_number(engine, NULL, "nobody", NULL), QUIVOX_STATUS_NULL_ARGUMENT);
    EXPECT_STATUS(quivox_engine_forget(engine, "nobody"), QUIVOX_STATUS_UNKNOWN_SPEAKER);
    EXPECT_STATUS(quivox_engine_forget(engine, NULL), QUIVOX_STATUS_NULL_ARGUMENT);

    /* --- verification --- */
    quivox_verification verification;
    EXPECT_STATUS(quivox_engine_verify(NULL, "nobody", &rec, 1, &verification), QUIVOX_STATUS_INVALID_HANDLE);
    EXPECT_STATUS(quivox_engine_verify(engine, "nobody", &rec, 1, &verification), QUIVOX_STATUS_UNKNOWN_SPEAKER);
    EXPECT_STATUS(quivox_engine_verify(engine, NULL, &rec, 1, &verification), QUIVOX_STATUS_NULL_ARGUMENT);
    EXPECT_STATUS(quivox_engine_verify(engine, bad_utf8, &rec, 1, &verification), QUIVOX_STATUS_INVALID_UTF8);
    EXPECT_STATUS(quivox_engine_verify(engine, "nobody", &rec, 1, NULL), QUIVOX_STATUS_NULL_ARGUMENT);
    EXPECT_STATUS(quivox_engine_verify(engine, "nobody", NULL, 1, &verification), QUIVOX_STATUS_NULL_ARGUMENT);
    EXPECT_STATUS(quivox_engine_verify(engine, "nobody", &rec, 0, &verification), QUIVOX_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(quivox_engine_unlink_number(engine, "+1 555 0100", "nobody"), QUIVOX_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(quivox_engine_unlink_number(engine, "+1 555 0100", NULL), QUIVOX_STATUS_NULL_ARGUMENT);
    EXPECT_STATUS(quivox_engine_reload(NULL), QUIVOX_STATUS_INVALID_HANDLE);
    EXPECT_STATUS(quivox_engine_reload(engine), QUIVOX_STATUS_OK);

    /* --- sessions --- */
    quivox_session *session = (quivox_session *)0x1;
    EXPECT_STATUS(quivox_engine_start_call(NULL, NULL, NULL, &session), QUIVOX_STATUS_INVALID_HANDLE);
    EXPECT(session == NULL);
    EXPECT_STATUS(quivox_engine_start_call(engine, NULL, NULL, NULL), QUIVOX_STATUS_NULL_ARGUMENT);
    EXPECT_STATUS(quivox_engine_start_call(engine, bad_utf8, NULL, &session), QUIVOX_STATUS_INVALID_UTF8);
    EXPECT_STATUS(quivox_engine_start_call(engine, "anonymous", NULL, &session), QUIVOX_STATUS_INVALID_NUMBER);
    EXPECT_STATUS(quivox_engine_start_call(engine, "+44 20 7946 0001", "c1", &session), QUIVOX_STATUS_OK);
    EXPECT(session != NULL);

    uint8_t frame[160];
    memset(frame, 0xff, sizeof frame); /* mu-law silence */
    int16_t pcm[160] = {0};
    quivox_decision d;
    bool has = true;
    EXPECT_STATUS(quivox_session_push_ulaw(NULL, frame, sizeof frame), QUIVOX_STATUS_INVALID_HANDLE);
    EXPECT_STATUS(quivox_session_push_ulaw(session, NULL, sizeof frame), QUIVOX_STATUS_NULL_ARGUMENT);
    EXPECT_STATUS(quivox_session_push_ulaw(session, frame, 0), QUIVOX_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(quivox_session_push_alaw(session, frame, 0), QUIVOX_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(quivox_session_push_pcm16(session, pcm, 0), QUIVOX_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(quivox_session_push_pcm16(session, (const int16_t *)((uintptr_t)frame | 1u), 10),
                  QUIVOX_STATUS_INVALID_ARGUMENT);
    /* A handle of the wrong kind. */
    EXPECT_STATUS(quivox_session_push_ulaw((quivox_session *)engine, frame, sizeof frame), QUIVOX_STATUS_INVALID_HANDLE);
    EXPECT_STATUS(quivox_engine_forget((quivox_engine *)session, "x"), QUIVOX_STATUS_INVALID_HANDLE);
    EXPECT_STATUS(quivox_session_poll(session, NULL, &has), QUIVOX_STATUS_NULL_ARGUMENT);
    EXPECT_STATUS(quivox_session_poll(session, &d, NULL), QUIVOX_STATUS_NULL_ARGUMENT);
    EXPECT_STATUS(quivox_session_set_callback(NULL, on_decision, NULL), QUIVOX_STATUS_INVALID_HANDLE);
    int callbacks = 0;
    EXPECT_STATUS(quivox_session_set_callback(session, on_decision, &callbacks), QUIVOX_STATUS_OK);
    EXPECT_STATUS(quivox_session_set_callback(session, NULL, NULL), QUIVOX_STATUS_OK);

    /* Freed-handle order: the engine goes first, its session keeps working. */
    EXPECT_STATUS(quivox_engine_free(engine), QUIVOX_STATUS_OK);
    EXPECT_STATUS(quivox_engine_free(engine), QUIVOX_STATUS_INVALID_HANDLE);
    quivox_session *other = (quivox_session *)0x1;
    EXPECT_STATUS(quivox_engine_start_call(engine, NULL, NULL, &other), QUIVOX_STATUS_INVALID_HANDLE);
    EXPECT(other == NULL);
    for (int i = 0; i < 100; i++) {
        EXPECT_STATUS(quivox_session_push_ulaw(session, frame, sizeof frame), QUIVOX_STATUS_OK);
        EXPECT_STATUS(quivox_session_push_pcm16(session, pcm, 160), QUIVOX_STATUS_OK);
    }
    EXPECT_STATUS(quivox_session_poll(session, &d, &has), QUIVOX_STATUS_OK);
    uint64_t call_ms = 0;
    EXPECT_STATUS(quivox_session_progress(session, &call_ms, NULL), QUIVOX_STATUS_OK);
    EXPECT(call_ms == 4000);
    EXPECT_STATUS(quivox_session_finish(session, NULL), QUIVOX_STATUS_NULL_ARGUMENT);
    EXPECT_STATUS(quivox_session_finish(session, &d), QUIVOX_STATUS_OK);
    /* Four seconds of silence, number withheld: never a voice decision. */
    EXPECT(d.is_final && d.kind == QUIVOX_DECISION_KIND_NEED_MORE_AUDIO &&
           d.reason == QUIVOX_SHORTFALL_NO_SPEECH && d.speaker_id[0] == 0);
    EXPECT_STATUS(quivox_session_finish(session, &d), QUIVOX_STATUS_SESSION_FINISHED);
    EXPECT_STATUS(quivox_session_push_ulaw(session, frame, sizeof frame), QUIVOX_STATUS_SESSION_FINISHED);
    EXPECT_STATUS(quivox_session_poll(session, &d, &has), QUIVOX_STATUS_SESSION_FINISHED);
    EXPECT_STATUS(quivox_session_free(session), QUIVOX_STATUS_OK);
    EXPECT_STATUS(quivox_session_free(session), QUIVOX_STATUS_INVALID_HANDLE);
    EXPECT_STATUS(quivox_session_push_ulaw(session, frame, sizeof frame), QUIVOX_STATUS_INVALID_HANDLE);
    EXPECT_STATUS(quivox_session_free(NULL), QUIVOX_STATUS_INVALID_HANDLE);
    EXPECT_STATUS(quivox_engine_free(NULL), QUIVOX_STATUS_INVALID_HANDLE);
    EXPECT(callbacks == 0);

    printf("misuse: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
