/* The registry's action pool (repository loads and unloads off the HTTP threads): a bounded queue
 * answered at once with CELER_ERR_UNAVAILABLE when full, every accepted action's callback called
 * exactly once, and a stop that cancels what still waits. A worker is held busy by a callback
 * that blocks, so the queue fills deterministically. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/server_internal.h"
#include "opcase.h"
#include "testutil.h"

#define QUEUE_CAP 64 /* ACTION_QUEUE_CAP in registry.c */

typedef struct tally {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, not_found, unavailable, other;
    bool hold, holding; /* the first callback blocks while `hold` */
    char last[256];
} tally;

static void on_done(void *user, celer_status st, const char *message) {
    tally *t = user;
    pthread_mutex_lock(&t->lock);
    if (t->hold && !t->holding) {
        t->holding = true;
        pthread_cond_broadcast(&t->cond);
        while (t->hold) pthread_cond_wait(&t->cond, &t->lock);
    }
    t->done++;
    if (st == CELER_ERR_NOT_FOUND) t->not_found++;
    else if (st == CELER_ERR_UNAVAILABLE) t->unavailable++;
    else t->other++;
    snprintf(t->last, sizeof t->last, "%s", message);
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

/* Waits (at most 20 s) until `*field` reaches `want`; true when it did. */
static bool wait_for(tally *t, const int *field, int want) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&t->lock);
    int rc = 0;
    while (*field < want && rc == 0) rc = pthread_cond_timedwait(&t->cond, &t->lock, &until);
    bool ok = *field >= want;
    pthread_mutex_unlock(&t->lock);
    return ok;
}

static void set_hold(tally *t, bool hold) {
    pthread_mutex_lock(&t->lock);
    t->hold = hold;
    if (hold) t->holding = false;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

typedef struct server {
    char dir[64];
    celer_server_options opts;
    celer_sched *sched;
    celer_metrics *metrics;
    celer_registry *r;
} server;

static void server_start(server *s) {
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/celer-registry.XXXXXX");
    assert_non_null(mkdtemp(s->dir)); /* an empty repository: every load is NOT_FOUND */
    s->opts.model_repository = s->dir;
    s->opts.threads = 1;
    s->opts.max_queue_size = 16;
    assert_int_equal(celer_metrics_init(&s->metrics), CELER_OK);
    assert_int_equal(celer_sched_init(1, &s->sched), CELER_OK);
    assert_int_equal(celer_registry_init(&s->opts, s->sched, s->metrics, &s->r), CELER_OK);
}

static void server_stop(server *s) {
    if (s->r) celer_registry_free(s->r);
    celer_sched_free(s->sched);
    celer_metrics_free(s->metrics);
    rmdir(s->dir);
}

static void test_queue_bound(void **state) {
    (void)state;
    server s;
    server_start(&s);
    tally t = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    set_hold(&t, true);
    assert_int_equal(celer_registry_submit_action(s.r, "absent", false, NULL, on_done, &t), CELER_OK);
    pthread_mutex_lock(&t.lock);
    while (!t.holding) pthread_cond_wait(&t.cond, &t.lock); /* the worker is busy in the callback */
    pthread_mutex_unlock(&t.lock);
    for (int i = 0; i < QUEUE_CAP; i++)
        assert_int_equal(celer_registry_submit_action(s.r, "absent", i & 1, NULL, on_done, &t), CELER_OK);
    tu_expect_err(celer_registry_submit_action(s.r, "absent", false, NULL, on_done, &t), CELER_ERR_UNAVAILABLE,
                  "64 repository actions are already waiting");
    char long_name[300];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    tu_expect_err(celer_registry_submit_action(s.r, long_name, false, NULL, on_done, &t), CELER_ERR_LIMIT, "at most 255");
    set_hold(&t, false);
    assert_true(wait_for(&t, &t.done, QUEUE_CAP + 1));
    assert_int_equal(t.not_found, QUEUE_CAP + 1); /* load: not in the repository; unload: unknown model */
    assert_non_null(strstr(t.last, "'absent'"));
    assert_null(strstr(t.last, s.dir));
    /* room again */
    assert_int_equal(celer_registry_submit_action(s.r, "absent", false, NULL, on_done, &t), CELER_OK);
    assert_true(wait_for(&t, &t.done, QUEUE_CAP + 2));
    server_stop(&s);
    assert_int_equal(t.done, QUEUE_CAP + 2); /* and no more */
}

static void *stop_thread(void *arg) {
    celer_registry_stop_actions(arg);
    return NULL;
}

/* Stopping cancels what waits (done with UNAVAILABLE), lets the running action finish, refuses
 * later submits; the registry's free after it does not call anything twice. */
static void test_stop_cancels(void **state) {
    (void)state;
    server s;
    server_start(&s);
    tally t = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    set_hold(&t, true);
    assert_int_equal(celer_registry_submit_action(s.r, "absent", false, NULL, on_done, &t), CELER_OK);
    pthread_mutex_lock(&t.lock);
    while (!t.holding) pthread_cond_wait(&t.cond, &t.lock);
    pthread_mutex_unlock(&t.lock);
    for (int i = 0; i < 3; i++) assert_int_equal(celer_registry_submit_action(s.r, "x", false, NULL, on_done, &t), CELER_OK);
    pthread_t stopper;
    assert_int_equal(pthread_create(&stopper, NULL, stop_thread, s.r), 0);
    assert_true(wait_for(&t, &t.unavailable, 3)); /* cancelled while the worker is still held */
    assert_non_null(strstr(t.last, "shutting down"));
    tu_expect_err(celer_registry_submit_action(s.r, "absent", false, NULL, on_done, &t), CELER_ERR_UNAVAILABLE,
                  "shutting down");
    set_hold(&t, false);
    pthread_join(stopper, NULL);
    assert_int_equal(t.done, 4);
    assert_int_equal(t.not_found, 1);
    server_stop(&s);
    assert_int_equal(t.done, 4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_bound),
        cmocka_unit_test(test_stop_cancels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
