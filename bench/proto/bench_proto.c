/*
 * otaup-bench-proto: encode and decode throughput of the command protocol
 * codec and its on-the-wire overhead, for payloads of 64 B .. 4 KiB.
 *
 * The reference is a bare zlib crc32() over the same frame bytes: the CRC
 * is the only work a decoder cannot avoid, so "ratio to crc32" says how
 * close the codec comes to the bound. Every figure is the best of several
 * timed rounds of at least `seconds / rounds` each.
 *
 *   otaup-bench-proto [seconds-per-measurement (default 0.5)]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "otaup/otaup.h"
#include "otaup/proto.h"

#define STREAM_BYTES (8u << 20) /* frames decoded per round */
#define ROUNDS 9

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile uint32_t g_sink;

/*
 * Times every fn[i](arg) for about secs / ROUNDS per round, the rounds
 * interleaved (so that load from other processes hits all alike); best of
 * ROUNDS, in seconds per call.
 */
static void best_times(void (*const *fn)(void *), size_t nfn, void *arg, double secs, double *best)
{
    int r;
    size_t i;
    for (i = 0; i < nfn; i++) {
        best[i] = 1e30;
    }
    for (r = 0; r < ROUNDS; r++) {
        for (i = 0; i < nfn; i++) {
            double t0 = now(), t;
            long n = 0;
            do {
                fn[i](arg);
                n++;
                t = now() - t0;
            } while (t < secs / ROUNDS);
            if (t / (double)n < best[i]) {
                best[i] = t / (double)n;
            }
        }
    }
}

struct job {
    size_t payload;       /* payload bytes per frame */
    uint8_t *stream;      /* frames back to back */
    size_t stream_len;
    size_t nframes;
    size_t read_size;     /* decoder read size */
    uint8_t *src;         /* payload source for encoding */
    uint8_t *out;         /* encode output */
    uint8_t *dbuf;        /* decoder buffer */
};

static void run_encode(void *arg)
{
    struct job *j = arg;
    size_t i, pos = 0;
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_BATCH;
    m.u.batch.data = j->src;
    m.u.batch.len = (uint32_t)j->payload;
    for (i = 0; i < j->nframes; i++) {
        int k = otaup_msg_encode_frame(&m, 0, (uint32_t)i, OTAUP_FRAME_MAX, j->out + pos,
                                       j->payload + OTAUP_FRAME_OVERHEAD);
        pos += (size_t)k;
    }
    g_sink += (uint32_t)pos;
}

/* Encoding with the payload already in place: header + CRC only. */
static void run_seal(void *arg)
{
    struct job *j = arg;
    size_t i, pos = 0;
    for (i = 0; i < j->nframes; i++) {
        int k = otaup_frame_seal(j->out + pos, j->payload + OTAUP_FRAME_OVERHEAD, OTAUP_MSG_BATCH, 0,
                                 (uint32_t)i, j->payload);
        pos += (size_t)k;
    }
    g_sink += (uint32_t)pos;
}

static void run_decode_stream(void *arg)
{
    struct job *j = arg;
    otaup_decoder d;
    size_t pos = 0, frames = 0, bytes = 0;
    if (otaup_decoder_init(&d, j->dbuf, OTAUP_FRAME_MAX, OTAUP_FRAME_MAX) != 0) {
        abort();
    }
    while (pos < j->stream_len) {
        size_t piece = j->stream_len - pos < j->read_size ? j->stream_len - pos : j->read_size;
        size_t off = 0;
        for (;;) {
            otaup_frame fr;
            size_t used;
            int ev = otaup_decoder_feed(&d, j->stream + pos + off, piece - off, &used, &fr);
            off += used;
            if (ev == OTAUP_DEC_NEED_INPUT) {
                break;
            }
            if (ev != OTAUP_DEC_FRAME) {
                abort();
            }
            frames++;
            bytes += fr.payload_len;
        }
        pos += piece;
    }
    if (frames != j->nframes) {
        abort();
    }
    g_sink += (uint32_t)bytes;
}

static void run_decode_datagram(void *arg)
{
    struct job *j = arg;
    size_t i, pos = 0, fl = j->payload + OTAUP_FRAME_OVERHEAD;
    for (i = 0; i < j->nframes; i++) {
        otaup_frame fr;
        if (otaup_frame_decode(j->stream + pos, fl, OTAUP_FRAME_MAX, &fr) != 0) {
            abort();
        }
        g_sink += fr.payload_len;
        pos += fl;
    }
}

/* The bound: zlib crc32() over every frame's bytes, as a decoder checks them. */
static void run_crc(void *arg)
{
    struct job *j = arg;
    size_t i, pos = 0, fl = j->payload + OTAUP_FRAME_OVERHEAD;
    uLong c = 0;
    for (i = 0; i < j->nframes; i++) {
        c ^= crc32(0uL, j->stream + pos, (uInt)(fl - 4u));
        pos += fl;
    }
    g_sink += (uint32_t)c;
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = { 64, 256, 1024, 4096 };
    double secs = argc > 1 ? atof(argv[1]) : 0.5;
    size_t si;
    uint8_t *stream = malloc(STREAM_BYTES + OTAUP_FRAME_MAX);
    uint8_t *out = malloc(STREAM_BYTES + OTAUP_FRAME_MAX);
    uint8_t *src = malloc(OTAUP_FRAME_MAX);
    uint8_t *dbuf = malloc(OTAUP_FRAME_MAX);
    double crc4k = 0, dec4k = 0;
    if (stream == NULL || out == NULL || src == NULL || dbuf == NULL || secs <= 0) {
        fprintf(stderr, "otaup-bench-proto: out of memory or bad argument\n");
        return 2;
    }
    for (si = 0; si < OTAUP_FRAME_MAX; si++) {
        src[si] = (uint8_t)(si * 131u + 7u);
    }
    printf("otaup %s, protocol v%d, zlib %s; ~%.2f s per figure, best of %d interleaved rounds\n",
           otaup_version(), OTAUP_PROTO_VERSION, zlibVersion(), secs, ROUNDS);
    printf("throughput in MB/s of payload (1 MB = 10^6 bytes); stream of %u MiB of frames\n\n",
           STREAM_BYTES >> 20);
    printf("%8s %9s %9s %9s %9s %9s %9s %9s %9s\n", "payload", "overhead", "encode", "seal",
           "dec-64K", "dec-1500", "datagram", "crc32", "dec/crc");
    for (si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        struct job j;
        size_t fl = sizes[si] + OTAUP_FRAME_OVERHEAD, i;
        double t_enc, t_seal, t_dec, t_dec_small, t_dgram, t_crc, payload_bytes;
        memset(&j, 0, sizeof j);
        j.payload = sizes[si];
        j.nframes = STREAM_BYTES / fl;
        j.stream_len = j.nframes * fl;
        j.stream = stream;
        j.out = out;
        j.src = src;
        j.dbuf = dbuf;
        for (i = 0; i < j.nframes; i++) {
            if (otaup_frame_encode(OTAUP_MSG_BATCH, 0, (uint32_t)i, src, sizes[si], stream + i * fl, fl) !=
                (int)fl) {
                abort();
            }
        }
        payload_bytes = (double)(j.nframes * sizes[si]);
        {
            void (*const enc[1])(void *) = { run_encode };
            double b[1];
            best_times(enc, 1, &j, secs, b);
            t_enc = b[0];
        }
        if (memcmp(out, stream, j.stream_len) != 0) {
            fprintf(stderr, "encode mismatch\n");
            return 1;
        }
        for (i = 0; i < j.nframes; i++) {
            memcpy(out + i * fl + OTAUP_FRAME_HEADER_SIZE, src, sizes[si]);
        }
        {
            void (*const seal[1])(void *) = { run_seal };
            double b[1];
            best_times(seal, 1, &j, secs, b);
            t_seal = b[0];
        }
        {
            /* decoders and the crc32 bound, interleaved */
            void (*const dec[2])(void *) = { run_decode_stream, run_crc };
            void (*const dgram[1])(void *) = { run_decode_datagram };
            double b[2];
            j.read_size = 1500;
            best_times(dec, 1, &j, secs, b);
            t_dec_small = b[0];
            best_times(dgram, 1, &j, secs, b);
            t_dgram = b[0];
            j.read_size = 65536;
            best_times(dec, 2, &j, secs * 2, b);
            t_dec = b[0];
            t_crc = b[1];
        }
        printf("%8u %8.2f%% %9.0f %9.0f %9.0f %9.0f %9.0f %9.0f %9.2f\n", (unsigned)sizes[si],
               100.0 * OTAUP_FRAME_OVERHEAD / (double)sizes[si], payload_bytes / t_enc / 1e6,
               payload_bytes / t_seal / 1e6, payload_bytes / t_dec / 1e6,
               payload_bytes / t_dec_small / 1e6, payload_bytes / t_dgram / 1e6,
               payload_bytes / t_crc / 1e6, t_crc / t_dec);
        if (sizes[si] == 4096) {
            crc4k = payload_bytes / t_crc / 1e6;
            dec4k = payload_bytes / t_dec / 1e6;
        }
    }
    printf("\noverhead: 16 bytes per frame, as a share of the payload (target <= 2%% at 1 KiB)\n");
    printf("encode: BATCH message to frame (payload copied); seal: header + CRC, payload in place\n");
    printf("dec-64K / dec-1500: streaming decoder fed 64 KiB / 1500-byte reads; datagram: one frame per call\n");
    printf("crc32: bare zlib crc32() over the same frames (the bound); dec/crc: dec-64K speed / crc32 speed\n");
    printf("\n4 KiB frames: decode %.0f MB/s of payload = %.2f x zlib crc32 (%.0f MB/s); target >= 1000 MB/s: %s\n",
           dec4k, dec4k / crc4k, crc4k, dec4k >= 1000.0 ? "met" : "NOT MET");
    free(stream);
    free(out);
    free(src);
    free(dbuf);
    return 0;
}
