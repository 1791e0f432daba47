/*
 * emu_logs.c - the transaction logs of NTDS/: closing the current log when a
 * backup asks for its logs, and truncating after the backup.
 *
 * edb.log is the open log (its generation is the u32 at offset 4 of its
 * 4096-byte header); closed logs are edbXXXXX.log (5 uppercase hex digits).
 * Closing = what ESE does on a log switch: edb.log becomes edbXXXXX.log and a
 * fresh edb.log of generation+1 starts, whose tmPrevGen is the old tmCreate
 * (the chain the restore-side consistency check follows).
 */
#include "emu_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntdsb_ese.h"

uint32_t emu_header_checksum(const uint8_t *buf, size_t len)
{
    return ntdsb_ese_header_checksum(buf, len);
}

int emu_log_name_gen(const char *name, uint32_t *gen)
{
    uint32_t g = 0;
    int i;

    if (strlen(name) != 12 || strncmp(name, "edb", 3) != 0 || strcmp(name + 8, ".log") != 0)
        return 0;
    for (i = 3; i < 8; i++) {
        char ch = name[i];
        if (ch >= '0' && ch <= '9')
            g = g << 4 | (uint32_t)(ch - '0');
        else if (ch >= 'A' && ch <= 'F')
            g = g << 4 | (uint32_t)(ch - 'A' + 10);
        else
            return 0;
    }
    *gen = g;
    return 1;
}

static void log_name(char out[16], uint32_t gen)
{
    snprintf(out, 16, "edb%05X.log", (unsigned)gen);
}

/* LOGTIME: sec, min, hour, day, month (1..12), year-1900, flags (bit0 = UTC). */
static void logtime(uint8_t out[8], int64_t now)
{
    struct tm tm;

    memset(out, 0, 8);
    if (emu_os_gmtime(now, &tm) != 0 || tm.tm_year < 0 || tm.tm_year > 255)
        return;
    out[0] = (uint8_t)tm.tm_sec;
    out[1] = (uint8_t)tm.tm_min;
    out[2] = (uint8_t)tm.tm_hour;
    out[3] = (uint8_t)tm.tm_mday;
    out[4] = (uint8_t)(tm.tm_mon + 1);
    out[5] = (uint8_t)tm.tm_year;
    out[6] = 0x01;
}

/* Checkpoint generation from edb.chk (lgposCheckpoint.lGeneration at 16 of
 * the first copy): 1 found, 0 no edb.chk, -1 unreadable/corrupt. */
static int checkpoint_gen(const char *ntds, uint32_t *gen)
{
    char *p = emu_join(ntds, "edb.chk");
    uint8_t b[20];
    emu_fd fd;
    int r;
    int32_t g;

    if (!p)
        return -1;
    r = emu_os_open_read(p, &fd);
    free(p);
    if (r != 0)
        return errno == ENOENT ? 0 : -1;
    r = emu_os_pread_full(fd, b, sizeof b, 0);
    emu_os_close(fd);
    if (r)
        return -1;
    g = (int32_t)emu_le32(b + 16);
    if (g <= 0 || (uint32_t)g > EMU_MAX_GEN)
        return -1;
    *gen = (uint32_t)g;
    return 1;
}

/* Lowest closed generation in NTDS/: 1 found, 0 none, -1 error. */
static int lowest_closed(const char *ntds, uint32_t *gen)
{
    emu_dir *d = emu_os_opendir(ntds);
    const char *name;
    int found = 0;
    uint32_t g;

    if (!d)
        return -1;
    while ((name = emu_os_readdir(d)) != NULL) {
        if (emu_log_name_gen(name, &g) && g > 0 && (!found || g < *gen)) {
            *gen = g;
            found = 1;
        }
    }
    emu_os_closedir(d);
    return found;
}

static int exists(const char *ntds, uint32_t gen)
{
    char name[16], *p;
    int ok;

    log_name(name, gen);
    p = emu_join(ntds, name);
    if (!p)
        return -1;
    ok = emu_os_is_regular(p);
    free(p);
    return ok;
}

/* Write the new edb.log as NTDS/edb.log.roll; 0 or an HRESULT. */
static HRESULT write_next(const char *tmp, const uint8_t *hdr, int64_t size, unsigned mode)
{
    emu_fd fd;
    HRESULT hr = 0;

    if (emu_os_create(tmp, mode, &fd) != 0)
        return hrLogWriteFail;
    if (emu_os_write_all(fd, hdr, EMU_LOG_HEADER) != 0)
        hr = errno == ENOSPC ? hrLogDiskFull : hrLogWriteFail;
    /* The rest of the log: zeros, same size as the log it follows. */
    if (!hr && emu_os_set_size(fd, (uint64_t)size) != 0)
        hr = errno == ENOSPC ? hrLogDiskFull : hrLogWriteFail;
    if (!hr && emu_os_sync(fd) != 0)
        hr = hrLogWriteFail;
    if (emu_os_close(fd) != 0 && !hr)
        hr = hrLogWriteFail;
    if (hr)
        emu_os_remove(tmp);
    return hr;
}

HRESULT emu_logs_roll(const emu_conf *c, uint32_t *ckpt_gen, uint32_t *closed_gen)
{
    char *ntds = emu_join(c->dcdir, "NTDS"), *cur = NULL, *tmp = NULL, *closed = NULL;
    uint8_t hdr[EMU_LOG_HEADER], nh[EMU_LOG_HEADER];
    char name[16];
    emu_file_info st;
    uint32_t gen, ckpt = 0, g;
    emu_fd fd;
    int r;
    HRESULT hr = 0;

    if (!ntds)
        return ERROR_NOT_ENOUGH_MEMORY;
    cur = emu_join(ntds, "edb.log");
    tmp = emu_join(ntds, "edb.log.roll");
    if (!cur || !tmp) {
        hr = ERROR_NOT_ENOUGH_MEMORY;
        goto out;
    }
    if (emu_os_open_read(cur, &fd) != 0) {
        hr = errno == ENOENT ? hrMissingLogFile : hrDiskIO;
        goto out;
    }
    r = emu_os_fstat(fd, &st) != 0 || st.size < (int64_t)EMU_LOG_HEADER ||
        emu_os_pread_full(fd, hdr, sizeof hdr, 0) != 0;
    /* Closed before the roll renames over it: Windows refuses to replace an
     * open file. */
    emu_os_close(fd);
    if (r || emu_le32(hdr) != emu_header_checksum(hdr, sizeof hdr)) {
        hr = hrLogFileCorrupt;
        goto out;
    }
    gen = emu_le32(hdr + 4);
    if (gen == 0 || gen > EMU_MAX_GEN) {
        hr = hrLogFileCorrupt;
        goto out;
    }
    if (gen == EMU_MAX_GEN) {
        hr = hrLogSequenceEnd; /* no name for generation 0x100000 */
        goto out;
    }

    /* Which generations the backup needs, checked before anything moves. */
    r = checkpoint_gen(ntds, &ckpt);
    if (r < 0 || (r == 1 && ckpt > gen)) {
        hr = hrCheckpointCorrupt;
        goto out;
    }
    if (r == 0) {
        r = lowest_closed(ntds, &ckpt);
        if (r < 0) {
            hr = hrDiskIO;
            goto out;
        }
        if (r == 0 || ckpt > gen)
            ckpt = gen;
    }
    for (g = ckpt; g < gen; g++) {
        r = exists(ntds, g);
        if (r <= 0) {
            hr = r < 0 ? ERROR_NOT_ENOUGH_MEMORY : hrMissingLogFile;
            goto out;
        }
    }

    memcpy(nh, hdr, sizeof nh);
    emu_put_le32(nh + 4, gen + 1);
    memcpy(nh + 24, hdr + 16, 8); /* tmPrevGen = the closed log's tmCreate */
    logtime(nh + 16, emu_now(c));
    emu_put_le32(nh, emu_header_checksum(nh, sizeof nh));

    log_name(name, gen);
    closed = emu_join(ntds, name);
    if (!closed) {
        hr = ERROR_NOT_ENOUGH_MEMORY;
        goto out;
    }
    hr = write_next(tmp, nh, st.size, st.mode);
    if (hr)
        goto out;
    /* link() then rename(): edb.log exists at every instant, and link fails
     * (EEXIST) rather than overwrite a closed log of the same generation. */
    if (emu_os_link(cur, closed) != 0) {
        int e = errno;
        if (e == EEXIST || exists(ntds, gen) != 0 || emu_os_rename(cur, closed) != 0) {
            hr = e == EEXIST ? hrInvalidLogSequence : hrLogWriteFail;
            emu_os_remove(tmp);
            goto out;
        }
    }
    if (emu_os_rename(tmp, cur) != 0) {
        hr = hrLogWriteFail;
        emu_os_remove(tmp);
        goto out;
    }
    emu_os_sync_dir(ntds);
    *ckpt_gen = ckpt;
    *closed_gen = gen;
out:
    free(ntds);
    free(cur);
    free(tmp);
    free(closed);
    return hr;
}

HRESULT emu_logs_truncate(const emu_conf *c, uint32_t ckpt_gen)
{
    char *ntds = emu_join(c->dcdir, "NTDS");
    emu_dir *d;
    const char *name;
    HRESULT hr = 0;
    uint32_t g;

    if (!ntds)
        return ERROR_NOT_ENOUGH_MEMORY;
    d = emu_os_opendir(ntds);
    if (!d) {
        free(ntds);
        return hrDiskIO;
    }
    /* Only closed logs strictly below the checkpoint: recovery never needs
     * them.  edb.log and anything from the checkpoint on stay. */
    while ((name = emu_os_readdir(d)) != NULL) {
        char *p;
        if (!emu_log_name_gen(name, &g) || g >= ckpt_gen)
            continue;
        p = emu_join(ntds, name);
        if (!p) {
            hr = ERROR_NOT_ENOUGH_MEMORY;
            continue;
        }
        if (emu_os_remove(p) != 0 && errno != ENOENT)
            hr = hrDiskIO;
        free(p);
    }
    emu_os_closedir(d);
    emu_os_sync_dir(ntds);
    free(ntds);
    return hr;
}
