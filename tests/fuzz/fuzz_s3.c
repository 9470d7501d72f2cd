/* libFuzzer target for what the S3 client reads from outside: a ListObjectsV2 page and an error
 * body (S3's XML, however a server or a proxy in front of it writes it), and the repository URL.
 * Byte 0 picks (% 3: 0 listing, 1 error body, 2 URL); the rest is the input, given at its exact size
 * so that a read past it is caught. A clean error is fine; a crash, leak or sanitizer report, a key
 * or ETag that is not a terminated string within its bounds, or a location that breaks the
 * parser's promises (a bucket of 3 to 63 characters, a prefix ending in '/') is a bug. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0: {
        celer_s3_listing l = {0};
        bool truncated;
        char token[1024];
        if (celer_s3_parse_list(in, n, &l, &truncated, token, sizeof token) == CELER_OK) {
            for (size_t i = 0; i < l.n; i++)
                if (strlen(l.objs[i].key) > 1024 || memchr(l.objs[i].etag, 0, sizeof l.objs[i].etag) == NULL ||
                    l.objs[i].size < 0)
                    abort();
            if (truncated && !token[0]) abort();
        }
        celer_s3_listing_free(&l);
        break;
    }
    case 1: {
        char text[256];
        if (celer_s3_error_text(in, n, text, sizeof text) && !memchr(text, 0, sizeof text)) abort();
        break;
    }
    default: {
        char *url = malloc(n + 1);
        if (!url) return 0;
        memcpy(url, in, n);
        url[n] = 0;
        celer_s3_env env = {.default_region = "eu-west-1"};
        celer_s3_loc loc;
        if (celer_s3_parse(url, &env, &loc) == CELER_OK) {
            size_t bl = strlen(loc.bucket), pl = strlen(loc.prefix);
            if (bl < 3 || bl > 63 || (pl && loc.prefix[pl - 1] != '/') || strncmp(loc.endpoint, "http", 4)) abort();
        }
        free(url);
        break;
    }
    }
    return 0;
}
