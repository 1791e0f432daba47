/*
 * ring_sync.c - the synchronisation of the ring that the backup and the
 * restore pipelines share (see engine_internal.h for the picture): one mutex,
 * three condition variables with a single kind of waiter each, "first failure
 * wins" error reporting with a `stop` flag, and the start and join of the
 * reader and worker threads with the asynchronous signals blocked.
 *
 * What a step does with a slot (read, compress or decompress, write) stays in
 * backup_pipeline.c and restore_pipeline.c; so does how each reports its
 * failures (the backup stops at the first in time, the restore reports the
 * first in file order through its slots).
 */
#ifndef _GNU_SOURCE
#  define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "engine_internal.h"

static int sync_init(ntdsb_ring_sync *rs)
{
    int rc = pthread_mutex_init(&rs->mu, NULL);
    if (rc != 0)
        return rc;
    /* Monotonic: the writer's 100 ms timed waits must not jump with the wall clock. */
    if ((rc = ntdsb_cond_init_monotonic(&rs->cv_free)) == 0) {
        if ((rc = ntdsb_cond_init_monotonic(&rs->cv_work)) == 0) {
            if ((rc = ntdsb_cond_init_monotonic(&rs->cv_done)) == 0)
                return 0;
            pthread_cond_destroy(&rs->cv_work);
        }
        pthread_cond_destroy(&rs->cv_free);
    }
    pthread_mutex_destroy(&rs->mu);
    return rc;
}

static void sync_destroy(ntdsb_ring_sync *rs)
{
    pthread_cond_destroy(&rs->cv_done);
    pthread_cond_destroy(&rs->cv_work);
    pthread_cond_destroy(&rs->cv_free);
    pthread_mutex_destroy(&rs->mu);
}

/* ---- errors -------------------------------------------------------------------- */

void ntdsb_ring_wake_all_locked(ntdsb_ring_sync *rs)
{
    pthread_cond_broadcast(&rs->cv_free);
    pthread_cond_broadcast(&rs->cv_work);
    pthread_cond_broadcast(&rs->cv_done);
}

/* The first failure is copied into rs->err under the mutex, `stop` is set and
 * every condition variable is broadcast; everyone leaves at their next check
 * and the calling thread joins all threads before returning. */
void ntdsb_ring_fail_locked(ntdsb_ring_sync *rs, const ntdsb_error *e)
{
    if (!rs->failed) {
        rs->failed = 1;
        rs->err = *e;
    }
    atomic_store(&rs->stop, 1);
    ntdsb_ring_wake_all_locked(rs);
}

void ntdsb_ring_fail(ntdsb_ring_sync *rs, const ntdsb_error *e)
{
    pthread_mutex_lock(&rs->mu);
    ntdsb_ring_fail_locked(rs, e);
    pthread_mutex_unlock(&rs->mu);
}

/* ---- the reader ------------------------------------------------------------------ */

void ntdsb_ring_wait_free_locked(ntdsb_ring_sync *rs, const int *state)
{
    while (!atomic_load(&rs->stop) && *state != NTDSB_SLOT_FREE)
        pthread_cond_wait(&rs->cv_free, &rs->mu);
}

void ntdsb_ring_publish(ntdsb_ring_sync *rs, int *state, uint64_t seq)
{
    pthread_mutex_lock(&rs->mu);
    *state = NTDSB_SLOT_FILLED;
    rs->produced = seq + 1;
    pthread_cond_signal(&rs->cv_work);
    pthread_mutex_unlock(&rs->mu);
}

void ntdsb_ring_reader_done_locked(ntdsb_ring_sync *rs)
{
    rs->reader_done = 1;
    pthread_cond_broadcast(&rs->cv_work); /* idle workers can leave */
    pthread_cond_signal(&rs->cv_done);    /* the writer may be waiting for the end */
}

/* ---- the workers ------------------------------------------------------------------ */

int ntdsb_ring_take_locked(ntdsb_ring_sync *rs, uint64_t *seq)
{
    while (!atomic_load(&rs->stop) && rs->next_work >= rs->produced && !rs->reader_done)
        pthread_cond_wait(&rs->cv_work, &rs->mu);
    if (atomic_load(&rs->stop) || rs->next_work >= rs->produced)
        return 0; /* stopped, or the reader is done and nothing is left */
    *seq = rs->next_work++;
    return 1;
}

void ntdsb_ring_done_locked(ntdsb_ring_sync *rs, int *state, uint64_t seq)
{
    *state = NTDSB_SLOT_DONE;
    /* Wake the writer only for the chunk it waits for: on a machine with as
     * many workers as cores, every needless wakeup is a context switch taken
     * from a worker. */
    if (seq == rs->write_seq)
        pthread_cond_signal(&rs->cv_done);
}

/* ---- the writer ------------------------------------------------------------------- */

int ntdsb_cancel_check(ntdsb_cancel_poll *c, uint64_t seq, uint64_t off, ntdsb_error *e)
{
    c->last = ntdsb_now();
    if (c->fn == NULL || c->fn(c->ctx) == 0)
        return 0;
    ntdsb_err_set(e, NTDSB_E_CANCELLED, NULL, seq, off, "cancelled at chunk %llu (offset %llu)",
                  (unsigned long long)seq, (unsigned long long)off);
    return 1;
}

int ntdsb_ring_writer_wait_locked(ntdsb_ring_sync *rs, const int *state, const uint64_t *seq,
                                  uint64_t ws, ntdsb_cancel_poll *c, uint64_t off)
{
    ntdsb_error e;

    for (;;) {
        struct timespec ts;
        double remain;

        if (atomic_load(&rs->stop) || (*state == NTDSB_SLOT_DONE && *seq == ws) ||
            (rs->reader_done && ws == rs->produced))
            break;
        remain = c->last + NTDSB_CANCEL_INTERVAL - ntdsb_now();
        if (remain <= 0) {
            /* Not holding the mutex while the hook runs: it may block on the
             * GIL for a while. */
            int stop_now;
            pthread_mutex_unlock(&rs->mu);
            stop_now = ntdsb_cancel_check(c, ws, off, &e);
            pthread_mutex_lock(&rs->mu);
            if (stop_now)
                ntdsb_ring_fail_locked(rs, &e);
            continue;
        }
        ntdsb_deadline_after(&ts, remain);
        pthread_cond_timedwait(&rs->cv_done, &rs->mu, &ts);
    }
    return !atomic_load(&rs->stop) && *state == NTDSB_SLOT_DONE && *seq == ws;
}

void ntdsb_ring_release(ntdsb_ring_sync *rs, int *state, uint64_t ws)
{
    pthread_mutex_lock(&rs->mu);
    *state = NTDSB_SLOT_FREE;
    rs->write_seq = ws;
    pthread_cond_signal(&rs->cv_free);
    pthread_mutex_unlock(&rs->mu);
}

/* ---- the threads ------------------------------------------------------------------ */

/* The engine threads of one ring: the reader and the workers that started. */
typedef struct ring_threads {
    pthread_t reader;
    int reader_started;
    uint32_t nworkers;
    pthread_t workers[NTDSB_THREADS_MAX];
} ring_threads;

static int start_threads(ring_threads *t, void *(*worker_main)(void *), void *workers,
                         size_t worker_size, uint32_t nworkers, void *(*reader_main)(void *),
                         void *arg)
{
    ntdsb_sigmask saved;
    int rc = 0;

    t->reader_started = 0;
    t->nworkers = 0;
    if (nworkers > NTDSB_THREADS_MAX)
        return EINVAL; /* the configuration checks keep it within */
    /* SIGINT and friends must reach the calling thread, never an engine thread. */
    ntdsb_block_async_signals(&saved);
    while (t->nworkers < nworkers) {
        void *w = (char *)workers + (size_t)t->nworkers * worker_size;
        if ((rc = pthread_create(&t->workers[t->nworkers], NULL, worker_main, w)) != 0)
            break;
        t->nworkers++;
    }
    if (rc == 0) {
        rc = pthread_create(&t->reader, NULL, reader_main, arg);
        t->reader_started = rc == 0;
    }
    ntdsb_restore_signal_mask(&saved);
    return rc;
}

int ntdsb_ring_run(ntdsb_ring_sync *rs, const ntdsb_ring_roles *roles, ntdsb_error *err)
{
    ring_threads t;
    uint32_t i;
    int rc = sync_init(rs);

    if (rc != 0) {
        roles->thread_error(err, "pthread_mutex_init", "initialise the pipeline's locks", rc);
        err->sys_errno = rc;
        return NTDSB_E_THREAD;
    }
    rc = start_threads(&t, roles->worker_main, roles->workers, roles->worker_size,
                       roles->nworkers, roles->reader_main, roles->arg);
    if (rc != 0) {
        ntdsb_error e;
        roles->thread_error(&e, "pthread_create", "start an engine thread", rc);
        e.sys_errno = rc;
        ntdsb_ring_fail(rs, &e);
    } else {
        roles->writer(roles->arg);
    }

    /* Every path ends here.  On success the reader is done and the workers
     * leave once nothing is left; otherwise `stop` is set.  Set it anyway (a
     * success has nothing left to do) so that nobody waits, wake everyone
     * once more, then join them all. */
    pthread_mutex_lock(&rs->mu);
    atomic_store(&rs->stop, 1);
    ntdsb_ring_wake_all_locked(rs);
    pthread_mutex_unlock(&rs->mu);
    if (t.reader_started)
        pthread_join(t.reader, NULL);
    for (i = 0; i < t.nworkers; i++)
        pthread_join(t.workers[i], NULL);

    sync_destroy(rs);
    if (!rs->failed)
        return NTDSB_OK;
    *err = rs->err;
    return rs->err.status;
}
