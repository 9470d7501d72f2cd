/* Listen addresses (src/server/listen.c): IPv4 and IPv6 literals, brackets, the empty default (both
 * families, or IPv4 where the kernel has IPv6 off), the text logs show, refusals naming the flag,
 * and peers as the access log prints them. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "server/listen.h"

static void test_literals(void **state) {
    (void)state;
    celer_listen_addr a;
    assert_int_equal(celer_listen_resolve("127.0.0.1", 8000, "--http-address", &a), CELER_OK);
    assert_int_equal(a.sa.ss_family, AF_INET);
    assert_false(a.dual);
    assert_string_equal(a.text, "127.0.0.1:8000");
    assert_int_equal(ntohs(((struct sockaddr_in *)&a.sa)->sin_port), 8000);
    assert_int_equal(celer_listen_resolve("::1", 8001, "--grpc-address", &a), CELER_OK);
    assert_int_equal(a.sa.ss_family, AF_INET6);
    assert_false(a.dual); /* one IPv6 address: IPv6 only */
    assert_string_equal(a.text, "[::1]:8001");
    assert_int_equal(celer_listen_resolve("[::1]", 8001, "--grpc-address", &a), CELER_OK);
    assert_string_equal(a.text, "[::1]:8001");
    assert_int_equal(celer_listen_resolve("::", 80, "--http-address", &a), CELER_OK);
    assert_true(a.dual); /* :: given: both families */
    assert_string_equal(a.text, "[::]:80");
    /* written out long: the log shows it in its short form */
    assert_int_equal(celer_listen_resolve("0:0:0:0:0:0:0:1", 80, "--http-address", &a), CELER_OK);
    assert_string_equal(a.text, "[::1]:80");
}

static void test_default(void **state) {
    (void)state;
    celer_listen_addr a;
    assert_int_equal(celer_listen_resolve("", 8000, "--http-address", &a), CELER_OK);
    if (a.sa.ss_family == AF_INET6) {
        assert_true(a.dual);
        assert_string_equal(a.text, "[::]:8000");
    } else { /* this kernel has IPv6 off */
        assert_string_equal(a.text, "0.0.0.0:8000");
    }
}

static void test_refused(void **state) {
    (void)state;
    celer_listen_addr a;
    const char *bad[] = {"::1::2", "localhost", "1.2.3", "[::1", "fe80::1%lo", "256.0.0.1",
                         "[0000:0000:0000:0000:0000:0000:0000:0000:0000]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(celer_listen_resolve(bad[i], 1, "--metrics-address", &a), CELER_ERR_INVALID);
        assert_non_null(strstr(celer_error_message(), "--metrics-address"));
        assert_non_null(strstr(celer_error_message(), "not an IPv4 or IPv6 address"));
    }
}

static void test_peer(void **state) {
    (void)state;
    char buf[64];
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.1.2.3", &v4.sin_addr);
    celer_listen_peer((struct sockaddr *)&v4, buf, sizeof buf);
    assert_string_equal(buf, "10.1.2.3");
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:10.1.2.3", &v6.sin6_addr); /* an IPv4 client of a dual-stack socket */
    celer_listen_peer((struct sockaddr *)&v6, buf, sizeof buf);
    assert_string_equal(buf, "10.1.2.3");
    inet_pton(AF_INET6, "2001:db8::7", &v6.sin6_addr);
    celer_listen_peer((struct sockaddr *)&v6, buf, sizeof buf);
    assert_string_equal(buf, "2001:db8::7");
    celer_listen_peer(NULL, buf, sizeof buf);
    assert_string_equal(buf, "-");
}

static void test_open(void **state) {
    (void)state;
    celer_listen_addr a;
    int fd = -1;
    assert_int_equal(celer_listen_resolve("127.0.0.1", 0, "--http-address", &a), CELER_OK);
    assert_int_equal(celer_listen_open(&a, "HTTP", &fd), CELER_OK);
    assert_true(fd >= 0);
    struct sockaddr_in got;
    socklen_t len = sizeof got;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&got, &len), 0);
    /* the same port again: refused, naming the address */
    celer_listen_addr b;
    assert_int_equal(celer_listen_resolve("127.0.0.1", ntohs(got.sin_port), "--http-address", &b), CELER_OK);
    int fd2 = -1;
    assert_int_equal(celer_listen_open(&b, "HTTP", &fd2), CELER_ERR_IO);
    assert_non_null(strstr(celer_error_message(), b.text));
    close(fd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals), cmocka_unit_test(test_default), cmocka_unit_test(test_refused),
        cmocka_unit_test(test_peer),     cmocka_unit_test(test_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
