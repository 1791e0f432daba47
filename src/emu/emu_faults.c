/*
 * emu_faults.c - fault injection from dc.conf, so the engine's error paths
 * and throughput logic can be tested against a "DC" that misbehaves on cue.
 *
 * DsBackupRead applies them in this order: latency (emu_handle_begin),
 * offline_after, read_after, bandwidth, short read.  The byte thresholds cap
 * the read that crosses them, so exactly BYTES bytes are returned before the
 * fault fires, whatever the buffer size.
 */
#include "emu_internal.h"

void emu_sleep_us(uint64_t us)
{
    emu_os_sleep_us(us);
}

void emu_fault_latency(const emu_conf *c)
{
    if (c && c->latency_us)
        emu_sleep_us(c->latency_us);
}

static uint64_t xorshift64s(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static void cap(uint32_t *max, uint64_t left)
{
    if (left < *max)
        *max = (uint32_t)left;
}

HRESULT emu_fault_before_read(emu_handle *h, uint32_t *max)
{
    const emu_conf *c = h->conf;

    if (c->has_offline_after) {
        if (h->offline || h->returned >= c->offline_after) {
            if (!h->offline) {
                h->offline = 1;
                /* The DC "crashed into DSRM": IsNTDSOnline says FALSE from now
                 * on, for every process.  A failed write still fails the read. */
                emu_dc_set_dsrm(c);
            }
            return hrCommunicationError;
        }
        cap(max, c->offline_after - h->returned);
    }
    if (c->has_read_after) {
        if (h->returned >= c->read_after)
            return c->read_hr;
        cap(max, c->read_after - h->returned);
    }
    if (c->bandwidth && !h->bw_started) {
        /* The pacing clock starts with the handle's first read. */
        h->bw_started = 1;
        h->bw_start = ntdsb_now();
    }
    if (c->short_read && *max > 0) {
        uint32_t lim = c->short_read < *max ? c->short_read : *max;
        *max = 1 + (uint32_t)(xorshift64s(&h->prng) % lim);
    }
    return 0;
}

void emu_fault_pace(emu_handle *h, uint32_t n)
{
    const emu_conf *c = h->conf;
    double burst, due, elapsed;

    (void)n; /* already counted in h->returned */
    if (!c->bandwidth)
        return;
    /* Token bucket: by time t after the first read at most rate*t + burst
     * bytes have been returned; burst = 1/20 s worth of bytes. */
    burst = (double)c->bandwidth / 20.0;
    due = ((double)h->returned - burst) / (double)c->bandwidth;
    elapsed = ntdsb_now() - h->bw_start;
    if (due > elapsed)
        emu_sleep_us((uint64_t)((due - elapsed) * 1e6) + 1);
}
