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
#include <errno.h> /* EINVAL */
#include <stdatomic.h>

#include "engine_internal.h"

static int sync_init(ntdsb_ring_sync *rs)
{
    int rc = ntdsb_mutex_init(&rs->mu);
    if (rc != 0)
        return rc;
    /* Monotonic: the writer's 100 ms timed waits must not jump with the wall clock. */
    if ((rc = ntdsb_cond_init(&rs->cv_free)) == 0) {
        if ((rc = ntdsb_cond_init(&rs->cv_work)) == 0) {
            if ((rc = ntdsb_cond_init(&rs->cv_done)) == 0)
                return 0;
            ntdsb_cond_destroy(&rs->cv_work);
        }
        ntdsb_cond_destroy(&rs->cv_free);
    }
    ntdsb_mutex_destroy(&rs->mu);
    return rc;
}

static void sync_destroy(ntdsb_ring_sync *rs)
{
    ntdsb_cond_destroy(&rs->cv_done);
    ntdsb_cond_destroy(&rs->cv_work);
    ntdsb_cond_destroy(&rs->cv_free);
    ntdsb_mutex_destroy(&rs->mu);
}

/* ---- errors -------------------------------------------------------------------- */

void ntdsb_ring_wake_all_locked(ntdsb_ring_sync *rs)
{
    ntdsb_cond_broadcast(&rs->cv_free);
    ntdsb_cond_broadcast(&rs->cv_work);
    ntdsb_cond_broadcast(&rs->cv_done);
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
    ntdsb_mutex_lock(&rs->mu);
    ntdsb_ring_fail_locked(rs, e);
    ntdsb_mutex_unlock(&rs->mu);
}

/* ---- the reader ------------------------------------------------------------------ */

void ntdsb_ring_wait_free_locked(ntdsb_ring_sync *rs, const int *state)
{
    while (!atomic_load(&rs->stop) && *state != NTDSB_SLOT_FREE)
        ntdsb_cond_wait(&rs->cv_free, &rs->mu);
}

void ntdsb_ring_publish(ntdsb_ring_sync *rs, int *state, uint64_t seq)
{
    ntdsb_mutex_lock(&rs->mu);
    *state = NTDSB_SLOT_FILLED;
    rs->produced = seq + 1;
    ntdsb_cond_signal(&rs->cv_work);
    ntdsb_mutex_unlock(&rs->mu);
}

void ntdsb_ring_reader_done_locked(ntdsb_ring_sync *rs)
{
    rs->reader_done = 1;
    ntdsb_cond_broadcast(&rs->cv_work); /* idle workers can leave */
    ntdsb_cond_signal(&rs->cv_done);    /* the writer may be waiting for the end */
}

/* ---- the workers ------------------------------------------------------------------ */

int ntdsb_ring_take_locked(ntdsb_ring_sync *rs, uint64_t *seq)
{
    while (!atomic_load(&rs->stop) && rs->next_work >= rs->produced && !rs->reader_done)
        ntdsb_cond_wait(&rs->cv_work, &rs->mu);
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
        ntdsb_cond_signal(&rs->cv_done);
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
        double remain;

        if (atomic_load(&rs->stop) || (*state == NTDSB_SLOT_DONE && *seq == ws) ||
            (rs->reader_done && ws == rs->produced))
            break;
        remain = c->last + NTDSB_CANCEL_INTERVAL - ntdsb_now();
        if (remain <= 0) {
            /* Not holding the mutex while the hook runs: it may block on the
             * GIL for a while. */
            int stop_now;
            ntdsb_mutex_unlock(&rs->mu);
            stop_now = ntdsb_cancel_check(c, ws, off, &e);
            ntdsb_mutex_lock(&rs->mu);
            if (stop_now)
                ntdsb_ring_fail_locked(rs, &e);
            continue;
        }
        ntdsb_cond_wait_for(&rs->cv_done, &rs->mu, remain);
    }
    return !atomic_load(&rs->stop) && *state == NTDSB_SLOT_DONE && *seq == ws;
}

void ntdsb_ring_release(ntdsb_ring_sync *rs, int *state, uint64_t ws)
{
    ntdsb_mutex_lock(&rs->mu);
    *state = NTDSB_SLOT_FREE;
    rs->write_seq = ws;
    ntdsb_cond_signal(&rs->cv_free);
    ntdsb_mutex_unlock(&rs->mu);
}

/* ---- the threads ------------------------------------------------------------------ */

/* The engine threads of one ring: the reader and the workers that started.
 * It stays on the caller's stack until every thread is joined
 * (ntdsb_thread_start wants its ntdsb_thread to stay put). */
typedef struct ring_threads {
    ntdsb_thread reader;
    int reader_started;
    uint32_t nworkers;
    ntdsb_thread workers[NTDSB_THREADS_MAX];
} ring_threads;

static int start_threads(ring_threads *t, void *(*worker_main)(void *), void *workers,
                         size_t worker_size, uint32_t nworkers, void *(*reader_main)(void *),
                         void *arg)
{
    int rc = 0;

    t->reader_started = 0;
    t->nworkers = 0;
    if (nworkers > NTDSB_THREADS_MAX)
        return EINVAL; /* the configuration checks keep it within */
    /* ntdsb_thread_start blocks the asynchronous signals in each new thread:
     * SIGINT and friends must reach the calling thread. */
    while (t->nworkers < nworkers) {
        void *w = (char *)workers + (size_t)t->nworkers * worker_size;
        if ((rc = ntdsb_thread_start(&t->workers[t->nworkers], worker_main, w)) != 0)
            break;
        t->nworkers++;
    }
    if (rc == 0) {
        rc = ntdsb_thread_start(&t->reader, reader_main, arg);
        t->reader_started = rc == 0;
    }
    return rc;
}

int ntdsb_ring_run(ntdsb_ring_sync *rs, const ntdsb_ring_roles *roles, ntdsb_error *err)
{
    ring_threads t;
    uint32_t i;
    int rc = sync_init(rs);

    if (rc != 0) {
        roles->thread_error(err, NTDSB_OS_LOCK_CALL, "initialise the pipeline's locks", rc);
        err->sys_errno = rc;
        return NTDSB_E_THREAD;
    }
    rc = start_threads(&t, roles->worker_main, roles->workers, roles->worker_size,
                       roles->nworkers, roles->reader_main, roles->arg);
    if (rc != 0) {
        ntdsb_error e;
        roles->thread_error(&e, NTDSB_OS_THREAD_CALL, "start an engine thread", rc);
        e.sys_errno = rc;
        ntdsb_ring_fail(rs, &e);
    } else {
        roles->writer(roles->arg);
    }

    /* Every path ends here.  On success the reader is done and the workers
     * leave once nothing is left; otherwise `stop` is set.  Set it anyway (a
     * success has nothing left to do) so that nobody waits, wake everyone
     * once more, then join them all. */
    ntdsb_mutex_lock(&rs->mu);
    atomic_store(&rs->stop, 1);
    ntdsb_ring_wake_all_locked(rs);
    ntdsb_mutex_unlock(&rs->mu);
    if (t.reader_started) {
        if (roles->reader_io_cancellable)
            ntdsb_thread_join_cancelling_io(&t.reader);
        else
            ntdsb_thread_join(&t.reader);
    }
    for (i = 0; i < t.nworkers; i++)
        ntdsb_thread_join(&t.workers[i]);

    sync_destroy(rs);
    if (!rs->failed)
        return NTDSB_OK;
    *err = rs->err;
    return rs->err.status;
}
