/* The CPU thread pool: one process-wide set of workers that run the tasks of one parallel
 * region at a time; the calling thread works too.
 *
 * Who parallelizes what: every CPU kernel splits its work into tasks for this pool —
 * element-wise ops, pooling, im2col/packing and the convolution GEMM itself, cut into
 * (image, group, pixel tile, output-channel range) blocks that each thread computes
 * single-threaded, including the epilogue (bias + activation) while the tile is in cache.
 * OpenBLAS, when used, is therefore kept at ONE thread: its own pthread workers would
 * oversubscribe the cores and spin-wait against this pool between GEMMs.
 *
 * Workers sleep on a condition variable between regions (no spinning), so an idle q7 costs
 * no CPU. At exit they are told to stop and joined (no thread outlives the process's
 * teardown; memory checkers see nothing left behind). */
#include "kernels/cpu/cpu_impl.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#ifdef Q7_HAVE_OPENBLAS
#include <cblas.h>
#endif

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* a new region started (generation changed) */
    pthread_cond_t done; /* a worker finished its part of the region */
    int n_threads;       /* configured, caller included; 0 until first use */
    int n_workers;       /* worker threads started (indices 1..n_workers) */
    uint64_t generation;
    /* the current region */
    q7_cpu_task_fn fn;
    void * ctx;
    int64_t n_tasks;
    atomic_llong next;
    int job_workers; /* workers 1..job_workers take part */
    int pending;     /* of those, how many have not finished */
    int quit;        /* exit handler: workers return */
    pthread_t tids[Q7_CPU_MAX_THREADS];
};

static struct pool g_pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
};
/* Held by the thread whose region is running: one region at a time. */
static pthread_mutex_t g_region = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local int tls_in_region;

static int online_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void run_tasks(struct pool * pl, q7_cpu_task_fn fn, void * ctx, int64_t n_tasks,
                      int thread)
{
    for (;;) {
        int64_t t = atomic_fetch_add(&pl->next, 1);
        if (t >= n_tasks)
            break;
        fn(ctx, t, thread);
    }
}

/* Generation at which each worker was started: it takes part from the next region on. */
static uint64_t g_start_generation[Q7_CPU_MAX_THREADS];

static void * worker_main(void * arg)
{
    const int index = (int)(intptr_t)arg;
    struct pool * pl = &g_pool;
    tls_in_region = 1; /* a task that calls q7_cpu_parallel runs it inline */
    pthread_mutex_lock(&pl->lock);
    uint64_t seen = g_start_generation[index];
    for (;;) {
        while (pl->generation == seen && !pl->quit)
            pthread_cond_wait(&pl->wake, &pl->lock);
        if (pl->quit)
            break;
        seen = pl->generation;
        if (index > pl->job_workers)
            continue;
        q7_cpu_task_fn fn = pl->fn;
        void * ctx = pl->ctx;
        int64_t n_tasks = pl->n_tasks;
        pthread_mutex_unlock(&pl->lock);
        run_tasks(pl, fn, ctx, n_tasks, index);
        pthread_mutex_lock(&pl->lock);
        if (--pl->pending == 0)
            pthread_cond_signal(&pl->done);
    }
    pthread_mutex_unlock(&pl->lock);
    return NULL;
}

/* atexit: stops and joins the workers (a region still running finishes first). */
static void stop_workers(void)
{
    struct pool * pl = &g_pool;
    pthread_mutex_lock(&pl->lock);
    pl->quit = 1;
    const int n = pl->n_workers;
    pthread_cond_broadcast(&pl->wake);
    pthread_mutex_unlock(&pl->lock);
    for (int i = 1; i <= n; i++)
        pthread_join(pl->tids[i], NULL);
    pthread_mutex_lock(&pl->lock);
    pl->n_workers = 0;
    pl->quit = 0;
    pthread_mutex_unlock(&pl->lock);
}

/* A forked child has none of the parent's workers: start from scratch there. */
static void reset_after_fork(void)
{
    pthread_mutex_init(&g_pool.lock, NULL);
    pthread_cond_init(&g_pool.wake, NULL);
    pthread_cond_init(&g_pool.done, NULL);
    pthread_mutex_init(&g_region, NULL);
    g_pool.n_workers = 0;
    g_pool.pending = 0;
    g_pool.quit = 0;
    tls_in_region = 0;
}

static void register_handlers(void)
{
    pthread_atfork(NULL, NULL, reset_after_fork);
    atexit(stop_workers);
}

/* Starts workers up to n_threads - 1; on failure runs with the ones it has. Called with
 * pl->lock held. */
static void grow_workers(struct pool * pl)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (pl->n_workers < pl->n_threads - 1)
        pthread_once(&once, register_handlers);
    while (pl->n_workers < pl->n_threads - 1 && !pl->quit) {
        const int index = pl->n_workers + 1;
        g_start_generation[index] = pl->generation;
        int rc = pthread_create(&pl->tids[index], NULL, worker_main, (void *)(intptr_t)index);
        if (rc != 0) {
            pl->n_threads = pl->n_workers + 1;
            break;
        }
        pl->n_workers++;
    }
}

static void configure(int n)
{
    if (n <= 0)
        n = online_cores();
    if (n > Q7_CPU_MAX_THREADS)
        n = Q7_CPU_MAX_THREADS;
    /* A region in flight keeps the count it started with: wait for it. */
    pthread_mutex_lock(&g_region);
    pthread_mutex_lock(&g_pool.lock);
    g_pool.n_threads = n;
    pthread_mutex_unlock(&g_pool.lock);
    pthread_mutex_unlock(&g_region);
#ifdef Q7_HAVE_OPENBLAS
    openblas_set_num_threads(1);
#endif
}

void q7_cpu_set_threads(int n)
{
    configure(n);
}

int q7_cpu_threads(void)
{
    pthread_mutex_lock(&g_pool.lock);
    int n = g_pool.n_threads;
    pthread_mutex_unlock(&g_pool.lock);
    if (n == 0) {
        configure(0);
        pthread_mutex_lock(&g_pool.lock);
        n = g_pool.n_threads;
        pthread_mutex_unlock(&g_pool.lock);
    }
    return n;
}

int64_t q7_cpu_split(int64_t total, int64_t min_items)
{
    if (total <= 0)
        return 0;
    if (min_items < 1)
        min_items = 1;
    int64_t want = 4 * (int64_t)q7_cpu_threads();
    int64_t most = (total + min_items - 1) / min_items;
    return want < most ? want : most;
}

void q7_cpu_parallel(int64_t n_tasks, q7_cpu_task_fn fn, void * ctx)
{
    if (n_tasks <= 0)
        return;
    const int threads = q7_cpu_threads();
    if (n_tasks == 1 || threads == 1 || tls_in_region ||
        pthread_mutex_trylock(&g_region) != 0) {
        for (int64_t t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    struct pool * pl = &g_pool;
    tls_in_region = 1;
    pthread_mutex_lock(&pl->lock);
    grow_workers(pl);
    int workers = pl->n_threads - 1;
    if (workers > pl->n_workers)
        workers = pl->n_workers;
    if ((int64_t)workers > n_tasks - 1)
        workers = (int)(n_tasks - 1);
    pl->fn = fn;
    pl->ctx = ctx;
    pl->n_tasks = n_tasks;
    atomic_store(&pl->next, 0);
    pl->job_workers = workers;
    pl->pending = workers;
    pl->generation++;
    pthread_cond_broadcast(&pl->wake);
    pthread_mutex_unlock(&pl->lock);

    run_tasks(pl, fn, ctx, n_tasks, 0);

    pthread_mutex_lock(&pl->lock);
    while (pl->pending > 0)
        pthread_cond_wait(&pl->done, &pl->lock);
    pthread_mutex_unlock(&pl->lock);
    tls_in_region = 0;
    pthread_mutex_unlock(&g_region);
}
