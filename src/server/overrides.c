/* Files of a load with overrides (overrides.h). The folder is made new for each load (mkdtemp,
 * 0700), and every folder and file in it is created new with openat/mkdirat relative to its
 * parent's descriptor, O_NOFOLLOW and O_EXCL: with paths of plain segments and nothing in the
 * folder but what this code made, no path can resolve outside it. */
#include "server/overrides.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SEGMENTS 32
#define CHUNK (48 * 1024) /* decoded bytes written at a time: 64 KiB of base64 text */

celer_status celer_override_check_path(const char *path) {
    size_t len = strlen(path);
    if (!len)
        return celer_errorf(CELER_ERR_INVALID, "Invalid file parameter 'file:': a file path is needed after 'file:'");
    if (len > CELER_LOAD_MAX_PATH)
        return celer_errorf(CELER_ERR_INVALID, "Invalid file parameter 'file:%.64s...': its path has %zu bytes, at most %d",
                            path, len, CELER_LOAD_MAX_PATH);
    if (path[0] == '/')
        return celer_errorf(CELER_ERR_INVALID, "Invalid file parameter 'file:%s' must stay within model directory: an "
                            "absolute path", path);
    int segments = 0;
    for (const char *p = path; *p;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (!n || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return celer_errorf(CELER_ERR_INVALID, "Invalid file parameter 'file:%s' must stay within model directory: "
                                "segment '%.*s' (segments are names, not '', '.' or '..')", path, (int)n, p);
        if (n > NAME_MAX)
            return celer_errorf(CELER_ERR_INVALID, "Invalid file parameter 'file:%.64s...': a segment of %zu bytes, at "
                                "most %d", path, n, NAME_MAX);
        if (++segments > MAX_SEGMENTS)
            return celer_errorf(CELER_ERR_INVALID, "Invalid file parameter 'file:%.64s...': more than %d segments", path,
                                MAX_SEGMENTS);
        if (!slash) break;
        p = slash + 1;
        if (!*p)
            return celer_errorf(CELER_ERR_INVALID, "Invalid file parameter 'file:%s': a path ends with a file name, "
                                "not '/'", path);
    }
    if (!strcmp(path, "config.pbtxt"))
        return celer_errorf(CELER_ERR_INVALID, "Invalid file parameter 'file:config.pbtxt': the model's config comes "
                            "from the 'config' parameter (JSON)");
    return CELER_OK;
}

size_t celer_base64_max_decoded(size_t len) { return len / 4 * 3 + 3; }

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* A base64 decoder fed text piece by piece. */
typedef struct b64_state {
    uint32_t acc;
    int bits;
    size_t digits, pad;
} b64_state;

/* Decodes `len` bytes of text into out (room: len / 4 * 3 + 3), *n the bytes written; false at
 * the first byte that is not base64 (its index in *bad). */
static bool b64_feed(b64_state *s, const char *text, size_t len, unsigned char *out, size_t *n, size_t *bad) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
        if (c == '=') {
            s->pad++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || s->pad) { /* not base64, or a digit after the padding */
            *bad = i;
            return false;
        }
        s->digits++;
        s->acc = s->acc << 6 | (uint32_t)v;
        s->bits += 6;
        if (s->bits >= 8) {
            s->bits -= 8;
            out[o++] = (unsigned char)(s->acc >> s->bits);
        }
    }
    *n = o;
    return true;
}

/* The text ended: a lone digit (6 bits) makes no byte, and padding must only complete the last quad. */
static bool b64_end(const b64_state *s) {
    return s->digits % 4 != 1 && s->pad <= 2 && (!s->pad || (s->digits + s->pad) % 4 == 0);
}

bool celer_base64_decode(const char *text, size_t len, unsigned char *out, size_t *out_len, size_t *bad) {
    b64_state s = {0};
    if (!b64_feed(&s, text, len, out, out_len, bad)) return false;
    if (b64_end(&s)) return true;
    *bad = len;
    return false;
}

/* The parent folder of path's last segment inside `dirfd`, made where missing; returns its
 * descriptor (the caller closes it unless it is dirfd) and the last segment in *leaf. */
static celer_status open_parent(int dirfd, const char *path, char *copy, size_t cap, int *out, const char **leaf) {
    snprintf(copy, cap, "%s", path);
    int fd = dirfd;
    char *seg = copy;
    for (char *slash; (slash = strchr(seg, '/')); seg = slash + 1) {
        *slash = 0;
        if (mkdirat(fd, seg, 0700) && errno != EEXIST) {
            int e = errno;
            if (fd != dirfd) close(fd);
            return celer_errorf(CELER_ERR_IO, "cannot make folder '%s' of file parameter 'file:%s': %s", seg, path,
                                strerror(e));
        }
        int next = openat(fd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        if (fd != dirfd) close(fd);
        if (next < 0)
            return celer_errorf(e == ENOTDIR ? CELER_ERR_INVALID : CELER_ERR_IO,
                                "Invalid file parameter 'file:%s', directory has been created as a file ('%s': %s)",
                                path, seg, strerror(e));
        fd = next;
    }
    *out = fd;
    *leaf = seg;
    return CELER_OK;
}

static celer_status write_all(int fd, const unsigned char *p, size_t n, const char *path) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return celer_errorf(CELER_ERR_IO, "cannot write file parameter 'file:%s': %s", path, strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return CELER_OK;
}

/* Writes one file new inside dirfd, decoding base64 a chunk at a time; *total counts the bytes
 * of every file against ov->max_bytes. */
static celer_status write_file(int dirfd, const celer_load_file *f, const celer_load_overrides *ov, size_t *total,
                               unsigned char *buf) {
    CELER_TRY(celer_override_check_path(f->path));
    char copy[CELER_LOAD_MAX_PATH + 1];
    const char *leaf = NULL;
    int parent = -1;
    CELER_TRY(open_parent(dirfd, f->path, copy, sizeof copy, &parent, &leaf));
    int fd = openat(parent, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int e = errno;
    struct stat sb;
    bool is_dir = fd < 0 && e == EEXIST && !fstatat(parent, leaf, &sb, AT_SYMLINK_NOFOLLOW) && S_ISDIR(sb.st_mode);
    if (parent != dirfd) close(parent);
    if (fd < 0 && e == EEXIST)
        return celer_errorf(CELER_ERR_INVALID, "Invalid file parameter 'file:%s', %s", f->path,
                            is_dir ? "a directory has been created with its name (another file's folder)"
                                   : "given twice");
    if (fd < 0) return celer_errorf(CELER_ERR_IO, "cannot write file parameter 'file:%s': %s", f->path, strerror(e));
    celer_status st = CELER_OK;
    b64_state b64 = {0};
    for (size_t off = 0; off < f->len && !st;) {
        size_t take = CELER_MIN(f->len - off, f->base64 ? (size_t)CHUNK / 3 * 4 : (size_t)CHUNK), n = take, bad;
        if (!f->base64) {
            memcpy(buf, f->data + off, n);
        } else if (!b64_feed(&b64, f->data + off, take, buf, &n, &bad)) {
            st = celer_errorf(CELER_ERR_INVALID, "file parameter 'file:%s' is not base64: byte %zu", f->path, off + bad);
            break;
        }
        off += take;
        if ((*total += n) > ov->max_bytes)
            st = celer_errorf(CELER_ERR_LIMIT, "the files of the load hold more than %zu bytes (--max-body-bytes)",
                              ov->max_bytes);
        else
            st = write_all(fd, buf, n, f->path);
    }
    if (!st && f->base64 && !b64_end(&b64))
        st = celer_errorf(CELER_ERR_INVALID, "file parameter 'file:%s' is not base64: it ends inside a group of four",
                          f->path);
    if (close(fd) && !st) st = celer_errorf(CELER_ERR_IO, "cannot write file parameter 'file:%s': %s", f->path, strerror(errno));
    return st;
}

celer_status celer_override_write(const char *name, const celer_load_overrides *ov, char *root, size_t root_cap) {
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    root[0] = 0;
    int n = snprintf(root, root_cap, "%s/celer-load-XXXXXX", tmp);
    if (n < 0 || (size_t)n >= root_cap) {
        root[0] = 0;
        return celer_errorf(CELER_ERR_LIMIT, "TMPDIR '%s' is too long", tmp);
    }
    if (!mkdtemp(root)) {
        int e = errno;
        root[0] = 0;
        return celer_errorf(CELER_ERR_IO, "cannot make a folder for the load's files in %s: %s", tmp, strerror(e));
    }
    int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rootfd < 0) return celer_errorf(CELER_ERR_IO, "cannot open %s: %s", root, strerror(errno));
    celer_status st = CELER_OK;
    int dirfd = -1;
    if (mkdirat(rootfd, name, 0700) || (dirfd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        st = celer_errorf(CELER_ERR_IO, "cannot make the model folder for the load's files: %s", strerror(errno));
    unsigned char *buf = st ? NULL : celer_malloc(CHUNK + 4);
    if (!st && !buf) st = celer_errorf(CELER_ERR_NOMEM, "out of memory for the load's files");
    size_t total = 0;
    for (int i = 0; i < ov->n_files && !st; i++) st = write_file(dirfd, &ov->files[i], ov, &total, buf);
    free(buf);
    if (dirfd >= 0) close(dirfd);
    close(rootfd);
    return st;
}

/* Removes what dirfd holds (nothing but folders and files this module made), not following links. */
static void remove_inside(int dirfd) {
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (!unlinkat(dirfd, e->d_name, 0)) continue;
        int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) remove_inside(sub);
        unlinkat(dirfd, e->d_name, AT_REMOVEDIR);
    }
    closedir(d);
}

void celer_override_remove(const char *root) {
    if (!root || !root[0]) return;
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) remove_inside(fd);
    rmdir(root);
}
