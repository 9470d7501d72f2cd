/* S3 client for the model repository: see s3.h.
 *
 * libcurl 7.88 signs with CURLOPT_AWS_SIGV4, and what it leaves to the caller is where signatures
 * go wrong (each case below was a 403 or 400 from a signature-checking S3):
 * - the access key goes in CURLOPT_USERNAME and the secret in CURLOPT_PASSWORD, not "key:secret"
 *   (a key may hold ':', and libcurl splits at the first);
 * - x-amz-content-sha256 must be sent by hand (the SHA-256 of the empty body for GET);
 * - the query is signed exactly as given: parameters sorted, values URI-encoded (prefix "a/" as
 *   a%2F, the opaque continuation token too);
 * - a session token goes in x-amz-security-token, which libcurl then signs like the other x-amz
 *   headers.
 * Requests use HTTP/1.1 and path-style URLs (endpoint/bucket/key), as Triton's do. */
#include "s3.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_PAGE_KEYS 1000             /* keys a ListObjectsV2 page may hold (AWS's maximum) */
#define S3_MAX_PAGE_BYTES (16u << 20) /* a page of 1000 keys of 1 KB each, with room */
#define S3_MAX_ERROR_BYTES (64u << 10)

void celer_s3_env_get(celer_s3_env *env) {
    env->region = getenv("AWS_REGION");
    env->default_region = getenv("AWS_DEFAULT_REGION");
    env->endpoint_url = getenv("AWS_ENDPOINT_URL");
    env->access_key = getenv("AWS_ACCESS_KEY_ID");
    env->secret_key = getenv("AWS_SECRET_ACCESS_KEY");
    env->session_token = getenv("AWS_SESSION_TOKEN");
    env->ca_bundle = getenv("AWS_CA_BUNDLE");
}

/* ---- URLs ---- */

static bool nonempty(const char *s) { return s && *s; }

static bool bucket_ok(const char *b, size_t n) {
    if (n < 3 || n > 63) return false;
    for (size_t i = 0; i < n; i++)
        if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '.' || b[i] == '-')) return false;
    return true;
}

/* host[:port] of an endpoint: letters, digits, '-', '.', and a ':' before digits */
static bool hostport_ok(const char *h, size_t n, bool need_port) {
    const char *colon = memchr(h, ':', n);
    size_t hn = colon ? (size_t)(colon - h) : n;
    if (hn == 0 || (need_port && !colon)) return false;
    for (size_t i = 0; i < hn; i++)
        if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') || (h[i] >= '0' && h[i] <= '9') ||
              h[i] == '-' || h[i] == '.'))
            return false;
    if (colon) {
        size_t pn = n - hn - 1;
        if (pn == 0 || pn > 5) return false;
        for (size_t i = hn + 1; i < n; i++)
            if (h[i] < '0' || h[i] > '9') return false;
    }
    return true;
}

celer_status celer_s3_parse(const char *url, const celer_s3_env *env, celer_s3_loc *out) {
    memset(out, 0, sizeof *out);
    const char *region = nonempty(env->region) ? env->region : nonempty(env->default_region) ? env->default_region
                                                                                             : "us-east-1";
    if (strlen(region) >= sizeof out->region)
        return celer_errorf(CELER_ERR_INVALID, "AWS region '%.64s...' is too long", region);
    strcpy(out->region, region);
    if (strncmp(url, "s3://", 5))
        return celer_errorf(CELER_ERR_INVALID, "repository '%s': an S3 location starts with s3://", url);
    const char *p = url + 5, *scheme = NULL;
    if (!strncmp(p, "http://", 7)) scheme = "http", p += 7;
    else if (!strncmp(p, "https://", 8)) scheme = "https", p += 8;
    /* the first segment: host:port when it has a ':' (or a scheme was given), else the bucket */
    const char *slash = strchr(p, '/');
    size_t seg = slash ? (size_t)(slash - p) : strlen(p);
    const char *bucket = p;
    if (scheme || memchr(p, ':', seg)) {
        if (!hostport_ok(p, seg, true))
            return celer_errorf(CELER_ERR_INVALID,
                                "repository '%s': expected s3://[http[s]://]host:port/bucket[/prefix] (a host of "
                                "letters, digits, '-' and '.', and a port)", url);
        if ((size_t)snprintf(out->endpoint, sizeof out->endpoint, "%s://%.*s", scheme ? scheme : "http", (int)seg, p) >=
            sizeof out->endpoint)
            return celer_errorf(CELER_ERR_INVALID, "repository '%s': the host is too long", url);
        if (!slash) return celer_errorf(CELER_ERR_INVALID, "repository '%s' names no bucket after the host", url);
        bucket = slash + 1;
    } else if (nonempty(env->endpoint_url)) {
        const char *e = env->endpoint_url;
        size_t en = strlen(e);
        while (en > 0 && e[en - 1] == '/') en--;
        bool http = !strncmp(e, "http://", 7), https = !strncmp(e, "https://", 8);
        if ((!http && !https) || !hostport_ok(e + (http ? 7 : 8), en - (http ? 7 : 8), false) ||
            en >= sizeof out->endpoint)
            return celer_errorf(CELER_ERR_INVALID, "AWS_ENDPOINT_URL '%s': expected http[s]://host[:port]", e);
        memcpy(out->endpoint, e, en);
    } else {
        if ((size_t)snprintf(out->endpoint, sizeof out->endpoint, "https://s3.%s.amazonaws.com", out->region) >=
            sizeof out->endpoint)
            return celer_errorf(CELER_ERR_INVALID, "AWS region '%s' is too long", out->region);
    }
    slash = strchr(bucket, '/');
    size_t bn = slash ? (size_t)(slash - bucket) : strlen(bucket);
    if (!bucket_ok(bucket, bn))
        return celer_errorf(CELER_ERR_INVALID,
                            "repository '%s': bucket '%.*s' is not a bucket name (3 to 63 of a-z, 0-9, '.', '-')", url,
                            (int)(bn < 80 ? bn : 80), bucket);
    memcpy(out->bucket, bucket, bn);
    /* the prefix: the path's segments without empty ones, ending in '/' */
    size_t len = 0;
    for (const char *q = slash; q && *q;) {
        while (*q == '/') q++;
        const char *e = strchr(q, '/');
        size_t sn = e ? (size_t)(e - q) : strlen(q);
        if (sn == 0) break;
        if ((sn == 1 && q[0] == '.') || (sn == 2 && q[0] == '.' && q[1] == '.'))
            return celer_errorf(CELER_ERR_INVALID, "repository '%s': '.' and '..' are not key segments", url);
        for (size_t i = 0; i < sn; i++)
            if ((unsigned char)q[i] < 0x20 || q[i] == 0x7f)
                return celer_errorf(CELER_ERR_INVALID, "repository '%s': a control character in the prefix", url);
        if (len + sn + 2 > sizeof out->prefix)
            return celer_errorf(CELER_ERR_INVALID, "repository '%s': the prefix is too long", url);
        memcpy(out->prefix + len, q, sn);
        len += sn;
        out->prefix[len++] = '/';
        q += sn;
    }
    return CELER_OK;
}

bool celer_s3_uri_encode(const char *src, bool keep_slash, char *dst, size_t cap) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(dst);
    for (const unsigned char *c = (const unsigned char *)src; *c; c++) {
        bool plain = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' ||
                     *c == '_' || *c == '.' || *c == '~' || (keep_slash && *c == '/');
        if (n + (plain ? 1 : 3) >= cap) return false;
        if (plain) {
            dst[n++] = (char)*c;
        } else {
            dst[n++] = '%';
            dst[n++] = hex[*c >> 4];
            dst[n++] = hex[*c & 15];
        }
    }
    dst[n] = 0;
    return true;
}

bool celer_s3_list_query(const char *prefix, const char *token, int max_keys, char *dst, size_t cap) {
    if (cap == 0) return false;
    dst[0] = 0;
    char num[64];
    snprintf(num, sizeof num, "list-type=2&max-keys=%d&prefix=", max_keys);
    if (token && *token) {
        if (strlen("continuation-token=") >= cap) return false;
        strcpy(dst, "continuation-token=");
        if (!celer_s3_uri_encode(token, false, dst, cap) || strlen(dst) + 1 >= cap) return false;
        strcat(dst, "&");
    }
    if (strlen(dst) + strlen(num) >= cap) return false;
    strcat(dst, num);
    return celer_s3_uri_encode(prefix ? prefix : "", false, dst, cap);
}

/* ---- XML: the few elements of S3's answers, found by name; entities decoded ---- */

/* The text between <tag> and </tag> at or after *from, within [xml, end): sets *text and *n and
 * moves *from past the closing tag. */
static bool xml_elem(const char **from, const char *end, const char *tag, const char **text, size_t *n) {
    size_t tl = strlen(tag);
    for (const char *p = *from; p + tl + 2 <= end; p++) {
        if (*p != '<' || memcmp(p + 1, tag, tl) || p[tl + 1] != '>') continue;
        const char *t = p + tl + 2;
        for (const char *q = t; q + tl + 3 <= end; q++)
            if (q[0] == '<' && q[1] == '/' && !memcmp(q + 2, tag, tl) && q[tl + 2] == '>') {
                *text = t, *n = (size_t)(q - t), *from = q + tl + 3;
                return true;
            }
        return false;
    }
    return false;
}

/* Copies n bytes of XML text into dst (cap) with &amp; &lt; &gt; &quot; &apos; and &#N; &#xN;
 * (ASCII) decoded. False when it does not fit or holds an entity it does not know. */
static bool xml_text(const char *t, size_t n, char *dst, size_t cap) {
    static const struct {
        const char *name;
        char c;
    } ents[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        char c = t[i++];
        if (c == '&') {
            size_t k = 0;
            while (k < CELER_ARRAY_LEN(ents) &&
                   !(n - i >= strlen(ents[k].name) && !memcmp(t + i, ents[k].name, strlen(ents[k].name))))
                k++;
            if (k < CELER_ARRAY_LEN(ents)) {
                c = ents[k].c;
                i += strlen(ents[k].name);
            } else if (i < n && t[i] == '#') {
                bool hex = i + 1 < n && (t[i + 1] == 'x' || t[i + 1] == 'X');
                size_t j = i + 1 + hex;
                unsigned v = 0;
                int digits = 0;
                for (; j < n && t[j] != ';' && digits < 8; j++, digits++) {
                    char d = t[j];
                    int dv = d >= '0' && d <= '9' ? d - '0' : hex && d >= 'a' && d <= 'f' ? d - 'a' + 10
                                                          : hex && d >= 'A' && d <= 'F' ? d - 'A' + 10 : -1;
                    if (dv < 0) return false;
                    v = v * (hex ? 16 : 10) + (unsigned)dv;
                }
                if (j >= n || t[j] != ';' || digits == 0 || v == 0 || v > 127) return false;
                c = (char)v;
                i = j + 1;
            } else {
                return false;
            }
        }
        if (o + 1 >= cap) return false;
        dst[o++] = c;
    }
    dst[o] = 0;
    return true;
}

void celer_s3_listing_free(celer_s3_listing *l) {
    for (size_t i = 0; i < l->n; i++) free(l->objs[i].key);
    free(l->objs);
    memset(l, 0, sizeof *l);
}

celer_status celer_s3_parse_list(const char *xml, size_t len, celer_s3_listing *out, bool *truncated, char *token,
                                 size_t cap) {
    const char *end = xml + len, *p = xml, *t;
    size_t n;
    *truncated = false;
    if (cap) token[0] = 0;
    if (!memmem(xml, len, "<ListBucketResult", 17))
        return celer_errorf(CELER_ERR_PARSE, "S3 listing: the answer is not a ListBucketResult");
    while (xml_elem(&p, end, "Contents", &t, &n)) {
        const char *c = t, *cend = t + n, *v;
        size_t vn;
        char key[1025], etag[96], size[24];
        if (!xml_elem(&c, cend, "Key", &v, &vn) || !xml_text(v, vn, key, sizeof key))
            return celer_errorf(CELER_ERR_PARSE, "S3 listing: an entry without a readable Key (up to 1024 bytes)");
        c = t;
        etag[0] = 0;
        if (xml_elem(&c, cend, "ETag", &v, &vn) && !xml_text(v, vn, etag, sizeof etag))
            return celer_errorf(CELER_ERR_PARSE, "S3 listing: key '%s' has an unreadable ETag", key);
        c = t;
        char *e = NULL;
        long long sz = -1;
        if (xml_elem(&c, cend, "Size", &v, &vn) && xml_text(v, vn, size, sizeof size)) sz = strtoll(size, &e, 10);
        if (sz < 0 || !e || *e)
            return celer_errorf(CELER_ERR_PARSE, "S3 listing: key '%s' has no readable Size", key);
        if (out->n == out->cap) {
            size_t nc = out->cap ? out->cap * 2 : 64;
            celer_s3_object *no = realloc(out->objs, nc * sizeof *no);
            if (!no) return celer_errorf(CELER_ERR_NOMEM, "S3 listing: out of memory at %zu keys", out->n);
            out->objs = no, out->cap = nc;
        }
        celer_s3_object *o = &out->objs[out->n];
        if (!(o->key = strdup(key))) return celer_errorf(CELER_ERR_NOMEM, "S3 listing: out of memory");
        memcpy(o->etag, etag, sizeof etag);
        o->size = sz;
        out->n++;
    }
    const char *q = xml;
    char flag[8];
    if (xml_elem(&q, end, "IsTruncated", &t, &n) && xml_text(t, n, flag, sizeof flag)) *truncated = !strcmp(flag, "true");
    q = xml;
    if (xml_elem(&q, end, "NextContinuationToken", &t, &n) && !xml_text(t, n, token, cap))
        return celer_errorf(CELER_ERR_PARSE, "S3 listing: the continuation token is unreadable or too long");
    if (*truncated && !token[0])
        return celer_errorf(CELER_ERR_PARSE, "S3 listing: a truncated page without NextContinuationToken");
    return CELER_OK;
}

bool celer_s3_error_text(const char *xml, size_t len, char *dst, size_t cap) {
    const char *end = xml + len, *p = xml, *t;
    size_t n;
    char code[128], msg[512];
    if (!xml_elem(&p, end, "Code", &t, &n) || !xml_text(t, n, code, sizeof code)) return false;
    p = xml;
    if (!xml_elem(&p, end, "Message", &t, &n) || !xml_text(t, n, msg, sizeof msg)) msg[0] = 0;
    snprintf(dst, cap, msg[0] ? "%s: %s" : "%s", code, msg);
    return true;
}

/* ---- requests ---- */

struct celer_s3 {
    celer_s3_loc loc;
    char *key, *secret, *token_header; /* owned; wiped at close */
    char *ca_bundle;
    celer_s3_opts opts;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static void wipe_free(char *s) {
    if (!s) return;
    volatile char *v = s;
    while (*v) *v++ = 0;
    free(s);
}

celer_status celer_s3_open(const celer_s3_loc *loc, const celer_s3_env *env, const celer_s3_opts *opts,
                           celer_s3 **out) {
    *out = NULL;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc) return celer_errorf(CELER_ERR_INTERNAL, "libcurl: %s", curl_easy_strerror(curl_init_rc));
    if (nonempty(env->access_key) != nonempty(env->secret_key))
        return celer_errorf(CELER_ERR_INVALID, "S3: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY come together: %s is "
                            "set, %s is not", nonempty(env->access_key) ? "the key" : "the secret",
                            nonempty(env->access_key) ? "the secret" : "the key");
    celer_s3 *s = calloc(1, sizeof *s);
    if (!s) return celer_errorf(CELER_ERR_NOMEM, "S3: out of memory");
    s->loc = *loc;
    s->opts = *opts;
    if (s->opts.page_keys <= 0 || s->opts.page_keys > S3_PAGE_KEYS) s->opts.page_keys = S3_PAGE_KEYS;
    if (s->opts.attempts <= 0) s->opts.attempts = 3;
    bool ok = true;
    if (nonempty(env->access_key)) {
        ok = (s->key = strdup(env->access_key)) && (s->secret = strdup(env->secret_key));
        if (ok && nonempty(env->session_token)) {
            size_t n = strlen("x-amz-security-token: ") + strlen(env->session_token) + 1;
            if ((s->token_header = malloc(n))) snprintf(s->token_header, n, "x-amz-security-token: %s", env->session_token);
            ok = s->token_header != NULL;
        }
    }
    if (ok && nonempty(env->ca_bundle)) ok = (s->ca_bundle = strdup(env->ca_bundle)) != NULL;
    if (!ok) {
        celer_s3_close(s);
        return celer_errorf(CELER_ERR_NOMEM, "S3: out of memory");
    }
    *out = s;
    return CELER_OK;
}

void celer_s3_close(celer_s3 *s) {
    if (!s) return;
    wipe_free(s->key);
    wipe_free(s->secret);
    wipe_free(s->token_header);
    free(s->ca_bundle);
    free(s);
}

/* One response: the body goes to fd when the status is 200 (else into err, for S3's message),
 * capped at max bytes. */
typedef struct sink {
    CURL *h;
    int fd;
    int64_t max, got;
    bool over, write_failed;
    char *mem; /* the body when no fd, or an error body */
    size_t mem_n, mem_cap;
    char etag[96];
} sink;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx) {
    sink *k = ctx;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(k->h, CURLINFO_RESPONSE_CODE, &status);
    if (k->fd >= 0 && status == 200) {
        if (k->got + (int64_t)n > k->max) {
            k->over = true;
            return 0;
        }
        for (size_t off = 0; off < n;) {
            ssize_t w = write(k->fd, data + off, n - off);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                k->write_failed = true;
                return 0;
            }
            off += (size_t)w;
        }
        k->got += (int64_t)n;
        return n;
    }
    size_t cap = k->fd >= 0 || status != 200 ? S3_MAX_ERROR_BYTES : (size_t)k->max;
    if (k->mem_n + n > cap) {
        if (status != 200) return n; /* an error body: its head is enough */
        k->over = true;
        return 0;
    }
    if (k->mem_n + n + 1 > k->mem_cap) {
        size_t nc = k->mem_cap ? k->mem_cap * 2 : 16384;
        while (nc < k->mem_n + n + 1) nc *= 2;
        char *m = realloc(k->mem, nc);
        if (!m) return 0;
        k->mem = m, k->mem_cap = nc;
    }
    memcpy(k->mem + k->mem_n, data, n);
    k->mem_n += n;
    k->mem[k->mem_n] = 0;
    k->got += (int64_t)n;
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ctx) {
    sink *k = ctx;
    size_t n = size * nmemb;
    if (n > 5 && !strncasecmp(data, "ETag:", 5)) {
        size_t i = 5;
        while (i < n && (data[i] == ' ' || data[i] == '\t')) i++;
        size_t e = n;
        while (e > i && (data[e - 1] == '\r' || data[e - 1] == '\n' || data[e - 1] == ' ')) e--;
        if (e - i < sizeof k->etag) {
            memcpy(k->etag, data + i, e - i);
            k->etag[e - i] = 0;
        }
    }
    return n;
}

/* GET url (what: "GET bucket/key" for messages) into k; *status gets the HTTP status. Errors
 * name the transfer's failure; the caller turns statuses into errors. */
static celer_status perform(celer_s3 *s, const char *url, const char *what, const char *if_none_match, sink *k,
                            long *status) {
    CURL *h = curl_easy_init();
    if (!h) return celer_errorf(CELER_ERR_NOMEM, "S3 %s: cannot start a transfer", what);
    k->h = h;
    struct curl_slist *hdr = curl_slist_append(NULL, "x-amz-content-sha256: " S3_EMPTY_SHA256);
    char inm[128];
    if (hdr && if_none_match && *if_none_match) {
        snprintf(inm, sizeof inm, "If-None-Match: %s", if_none_match);
        hdr = curl_slist_append(hdr, inm);
    }
    if (hdr && s->token_header) hdr = curl_slist_append(hdr, s->token_header);
    char sigv4[96], errbuf[CURL_ERROR_SIZE] = "";
    snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", s->loc.region);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)s->opts.connect_ms);
    /* a stall: under 1 byte/s for read_ms */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)((s->opts.read_ms + 999) / 1000));
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, k);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, k);
    if (s->ca_bundle) curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_bundle);
    if (s->key) {
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
        curl_easy_setopt(h, CURLOPT_USERNAME, s->key);
        curl_easy_setopt(h, CURLOPT_PASSWORD, s->secret);
    }
    CURLcode rc = hdr ? curl_easy_perform(h) : CURLE_OUT_OF_MEMORY;
    *status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    k->h = NULL;
    if (k->over) return celer_errorf(CELER_ERR_LIMIT, "S3 %s: larger than the cap of %lld bytes", what, (long long)k->max);
    if (k->write_failed) return celer_errorf(CELER_ERR_IO, "S3 %s: cannot write the copy: %s", what, strerror(errno));
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return celer_errorf(CELER_ERR_UNAVAILABLE, "S3 %s at %s: timed out (%s)", what, s->loc.endpoint,
                            errbuf[0] ? errbuf : curl_easy_strerror(rc));
    if (rc)
        return celer_errorf(CELER_ERR_UNAVAILABLE, "S3 %s at %s: %s", what, s->loc.endpoint,
                            errbuf[0] ? errbuf : curl_easy_strerror(rc));
    return CELER_OK;
}

/* The error for a status other than 200 (and 304 where asked for). */
static celer_status status_error(const char *what, long status, const sink *k) {
    char text[700];
    if (!(k->mem && celer_s3_error_text(k->mem, k->mem_n, text, sizeof text)))
        snprintf(text, sizeof text, "no S3 error in the answer");
    celer_status code = status == 404 ? CELER_ERR_NOT_FOUND
                      : status >= 500 || status == 429 ? CELER_ERR_UNAVAILABLE
                                                       : CELER_ERR_IO;
    return celer_errorf(code, "S3 %s: HTTP %ld, %s", what, status, text);
}

/* Whether a failed request may succeed when tried again. */
static bool transient(celer_status st) { return st == CELER_ERR_UNAVAILABLE; }

/* Sleeps before try `attempt` (1, 2 ...): 100 ms times 4^(attempt-1), plus up to half again. */
static void backoff(int attempt) {
    static _Thread_local unsigned seed;
    if (!seed) seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
    long ms = 100L << (2 * (attempt - 1));
    ms += (long)(rand_r(&seed) % (unsigned)(ms / 2 + 1));
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* perform() and the status check (200 is success, and 304 when if_none_match is given), tried up
 * to opts.attempts times while the failure is transient; k is emptied before each try (its fd,
 * when it has one, truncated). */
static celer_status request(celer_s3 *s, const char *url, const char *what, const char *if_none_match, sink *k,
                            long *status) {
    celer_status st = CELER_OK;
    for (int attempt = 1; attempt <= s->opts.attempts; attempt++) {
        if (attempt > 1) {
            backoff(attempt - 1);
            k->got = 0, k->over = k->write_failed = false, k->mem_n = 0, k->etag[0] = 0;
            if (k->fd >= 0 && (ftruncate(k->fd, 0) || lseek(k->fd, 0, SEEK_SET) < 0))
                return celer_errorf(CELER_ERR_IO, "S3 %s: cannot rewind the copy: %s", what, strerror(errno));
        }
        st = perform(s, url, what, if_none_match, k, status);
        if (!st && *status != 200 && !(*status == 304 && if_none_match)) st = status_error(what, *status, k);
        if (!transient(st)) return st;
    }
    if (s->opts.attempts > 1) {
        char last[1024];
        snprintf(last, sizeof last, "%s", celer_error_message());
        return celer_errorf(st, "%s (after %d attempts)", last, s->opts.attempts);
    }
    return st;
}

celer_status celer_s3_list(celer_s3 *s, const char *prefix, size_t max_keys, celer_s3_listing *out) {
    memset(out, 0, sizeof *out);
    if (!prefix) prefix = s->loc.prefix;
    char token[1024] = "", what[128];
    snprintf(what, sizeof what, "LIST %.64s/%.48s", s->loc.bucket, prefix);
    for (;;) {
        char query[3072], url[4096] = "";
        if (!celer_s3_list_query(prefix, token, s->opts.page_keys, query, sizeof query) ||
            (size_t)snprintf(url, sizeof url, "%s/%s?%s", s->loc.endpoint, s->loc.bucket, query) >= sizeof url)
            return celer_errorf(CELER_ERR_LIMIT, "S3 %s: the request does not fit in 4 KB", what);
        sink k = {.fd = -1, .max = S3_MAX_PAGE_BYTES};
        long status;
        celer_status st = request(s, url, what, NULL, &k, &status);
        bool truncated = false;
        if (!st) st = celer_s3_parse_list(k.mem ? k.mem : "", k.mem_n, out, &truncated, token, sizeof token);
        free(k.mem);
        out->pages++;
        if (!st && out->n > max_keys)
            st = celer_errorf(CELER_ERR_LIMIT, "S3 %s: more than %zu keys", what, max_keys);
        if (st) return st;
        if (!truncated) return CELER_OK;
    }
}

celer_status celer_s3_get(celer_s3 *s, const char *key, const char *if_none_match, const char *path,
                          int64_t max_bytes, bool *not_modified, char *etag, int64_t *bytes) {
    char what[160], url[4096];
    snprintf(what, sizeof what, "GET %.64s/%.80s", s->loc.bucket, key);
    *not_modified = false;
    *bytes = 0;
    if (etag) etag[0] = 0;
    int n = snprintf(url, sizeof url, "%s/%s/", s->loc.endpoint, s->loc.bucket);
    if (n < 0 || (size_t)n >= sizeof url || !celer_s3_uri_encode(key, true, url, sizeof url))
        return celer_errorf(CELER_ERR_LIMIT, "S3 %s: the URL does not fit in 4 KB", what);
    size_t pl = strlen(path);
    char *part = malloc(pl + 6);
    if (!part) return celer_errorf(CELER_ERR_NOMEM, "S3 %s: out of memory", what);
    memcpy(part, path, pl);
    memcpy(part + pl, ".part", 6);
    int fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        celer_status st = celer_errorf(CELER_ERR_IO, "S3 %s: cannot create %s: %s", what, part, strerror(errno));
        free(part);
        return st;
    }
    sink k = {.fd = fd, .max = max_bytes};
    long status;
    celer_status st = request(s, url, what, if_none_match, &k, &status);
    if (!st && status == 304) *not_modified = true;
    if (!st && !*not_modified && fsync(fd)) st = celer_errorf(CELER_ERR_IO, "S3 %s: %s: %s", what, part, strerror(errno));
    if (close(fd) && !st) st = celer_errorf(CELER_ERR_IO, "S3 %s: %s: %s", what, part, strerror(errno));
    if (!st && !*not_modified && rename(part, path))
        st = celer_errorf(CELER_ERR_IO, "S3 %s: cannot rename %s into place: %s", what, part, strerror(errno));
    if (st || *not_modified) unlink(part);
    if (!st && etag) memcpy(etag, k.etag, sizeof k.etag);
    if (!st) *bytes = *not_modified ? 0 : k.got;
    free(k.mem);
    free(part);
    return st;
}
