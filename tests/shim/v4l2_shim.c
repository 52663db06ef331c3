/*
 * LD_PRELOAD shim: fake V4L2 devices for the camera tests.
 *
 * The nodes are real character devices created by the test (mknod) in a temp device directory; without a V4L2
 * driver behind them open() would fail with ENXIO. For the paths listed in the spec file named by
 * $CAMSHIM_SPEC this shim answers open/open64/openat/__open_2 with a descriptor of /dev/null (or fails with the
 * listed errno), and answers VIDIOC_QUERYCAP / ENUM_FMT / ENUM_FRAMESIZES / ENUM_FRAMEINTERVALS on that descriptor
 * with the canned replies, through both ioctl() and syscall(SYS_ioctl, ...) (the `v4l` crate uses the latter).
 * Every other call is passed through untouched. The structs come from the kernel's <linux/videodev2.h>, so the
 * test also checks that the Rust bindings decode the kernel layout.
 *
 * The spec is re-read on every open of a listed-looking path (basename "video*"), so a test can change a node's
 * behaviour while the daemon runs (e.g. EACCES first, then a working camera). Lines, fields separated by '|':
 *   node|<path>|<driver>|<card>|<bus_info>|<capabilities hex>|<device_caps hex>
 *   fmt|<FOURCC>|<description>                      (belongs to the last node)
 *   size|<w>|<h>|<num>/<den>,<num>/<den>...          (discrete size with discrete intervals; last fmt)
 *   stepsize|<min_w>|<max_w>|<step_w>|<min_h>|<max_h>|<step_h>   (stepwise sizes; last fmt)
 *   ivrange|<num>/<den>|<num>/<den>                  (stepwise intervals min..max for every size; last fmt)
 *   error|<path>|<errno>                             (open fails with errno)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_NODES 16
#define MAX_FMTS 8
#define MAX_SIZES 16
#define MAX_IVALS 8
#define MAX_FDS 4096

struct ival { unsigned num, den; };
struct fsize { unsigned w, h; int nival; struct ival iv[MAX_IVALS]; };
struct fmt {
    char cc[5];
    char desc[32];
    int nsize;
    struct fsize sz[MAX_SIZES];
    int stepwise;
    unsigned step[6];
    int ivrange;
    struct ival ivmin, ivmax;
};
struct node {
    char path[512];
    int err;
    char driver[16], card[32], bus[32];
    unsigned caps, dcaps;
    int nfmt;
    struct fmt f[MAX_FMTS];
};

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);
static long (*real_syscall)(long, ...);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct node *fds[MAX_FDS];

__attribute__((constructor)) static void init(void) {
    real_open = dlsym(RTLD_NEXT, "open");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_close = dlsym(RTLD_NEXT, "close");
    real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    real_syscall = dlsym(RTLD_NEXT, "syscall");
}

static void parse_ival(const char *s, struct ival *iv) {
    iv->num = 1;
    iv->den = 0;
    sscanf(s, "%u/%u", &iv->num, &iv->den);
}

static void copy_field(char *dst, size_t n, const char *src) {
    strncpy(dst, src ? src : "", n - 1);
    dst[n - 1] = 0;
}

/* Split `line` on '|' in place; returns the number of fields. */
static int split(char *line, char **out, int max) {
    int n = 0;
    char *p = line;
    while (n < max) {
        out[n++] = p;
        char *bar = strchr(p, '|');
        if (!bar) break;
        *bar = 0;
        p = bar + 1;
    }
    return n;
}

/* Find `path` in the spec; fills *out and returns 1 when listed. */
static int lookup(const char *path, struct node *out) {
    const char *spec = getenv("CAMSHIM_SPEC");
    if (!spec) return 0;
    static char buf[65536];
    pthread_mutex_lock(&lock);
    int fd = real_open(spec, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        pthread_mutex_unlock(&lock);
        return 0;
    }
    ssize_t len = 0, r;
    while (len < (ssize_t)sizeof(buf) - 1 && (r = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0) len += r;
    real_close(fd);
    buf[len < 0 ? 0 : len] = 0;
    int found = 0, in_node = 0;
    struct fmt *f = NULL;
    char *lines = NULL;
    for (char *line = strtok_r(buf, "\n", &lines); line; line = strtok_r(NULL, "\n", &lines)) {
        char *v[10];
        int n = split(line, v, 10);
        if (!strcmp(v[0], "node") || !strcmp(v[0], "error")) {
            if (found) break;
            in_node = n > 1 && !strcmp(v[1], path);
            if (!in_node) continue;
            found = 1;
            memset(out, 0, sizeof(*out));
            copy_field(out->path, sizeof(out->path), v[1]);
            f = NULL;
            if (!strcmp(v[0], "error")) {
                out->err = n > 2 ? atoi(v[2]) : EIO;
            } else if (n >= 7) {
                copy_field(out->driver, sizeof(out->driver), v[2]);
                copy_field(out->card, sizeof(out->card), v[3]);
                copy_field(out->bus, sizeof(out->bus), v[4]);
                out->caps = strtoul(v[5], NULL, 16);
                out->dcaps = strtoul(v[6], NULL, 16);
            }
        } else if (!in_node) {
            continue;
        } else if (!strcmp(v[0], "fmt") && n >= 3 && out->nfmt < MAX_FMTS) {
            f = &out->f[out->nfmt++];
            copy_field(f->cc, sizeof(f->cc), v[1]);
            copy_field(f->desc, sizeof(f->desc), v[2]);
        } else if (f && !strcmp(v[0], "size") && n >= 3 && f->nsize < MAX_SIZES) {
            struct fsize *s = &f->sz[f->nsize++];
            s->w = atoi(v[1]);
            s->h = atoi(v[2]);
            char *save = NULL;
            for (char *tok = n > 3 ? strtok_r(v[3], ",", &save) : NULL; tok && s->nival < MAX_IVALS;
                 tok = strtok_r(NULL, ",", &save))
                parse_ival(tok, &s->iv[s->nival++]);
        } else if (f && !strcmp(v[0], "stepsize") && n >= 7) {
            f->stepwise = 1;
            for (int i = 0; i < 6; i++) f->step[i] = atoi(v[i + 1]);
        } else if (f && !strcmp(v[0], "ivrange") && n >= 3) {
            f->ivrange = 1;
            parse_ival(v[1], &f->ivmin);
            parse_ival(v[2], &f->ivmax);
        }
    }
    pthread_mutex_unlock(&lock);
    return found;
}

static int listed_name(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return !strncmp(base, "video", 5) && getenv("CAMSHIM_SPEC");
}

/* Returns -2 when the path is not ours (caller passes through). */
static int fake_open(const char *path) {
    if (!path || !listed_name(path)) return -2;
    struct node n;
    if (!lookup(path, &n)) return -2;
    if (n.err) {
        errno = n.err;
        return -1;
    }
    int fd = real_open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd < 0 || fd >= MAX_FDS) return fd;
    struct node *copy = malloc(sizeof(*copy));
    *copy = n;
    pthread_mutex_lock(&lock);
    free(fds[fd]);
    fds[fd] = copy;
    pthread_mutex_unlock(&lock);
    return fd;
}

static struct node *fake_node(int fd) {
    if (fd < 0 || fd >= MAX_FDS) return NULL;
    pthread_mutex_lock(&lock);
    struct node *n = fds[fd];
    pthread_mutex_unlock(&lock);
    return n;
}

static struct fmt *find_fmt(struct node *n, unsigned pixfmt) {
    for (int i = 0; i < n->nfmt; i++) {
        const char *c = n->f[i].cc;
        if (v4l2_fourcc(c[0], c[1], c[2], c[3]) == pixfmt) return &n->f[i];
    }
    return NULL;
}

static int fail(int e) {
    errno = e;
    return -1;
}

static int fake_ioctl(struct node *n, unsigned long req, void *arg) {
    if (req == VIDIOC_QUERYCAP) {
        struct v4l2_capability *c = arg;
        memset(c, 0, sizeof(*c));
        strncpy((char *)c->driver, n->driver, sizeof(c->driver));
        strncpy((char *)c->card, n->card, sizeof(c->card));
        strncpy((char *)c->bus_info, n->bus, sizeof(c->bus_info));
        c->version = 0x060500;
        c->capabilities = n->caps;
        c->device_caps = n->dcaps;
        return 0;
    }
    if (req == VIDIOC_ENUM_FMT) {
        struct v4l2_fmtdesc *d = arg;
        unsigned caps = (n->caps & V4L2_CAP_DEVICE_CAPS) ? n->dcaps : n->caps;
        unsigned want = (caps & V4L2_CAP_VIDEO_CAPTURE) ? V4L2_BUF_TYPE_VIDEO_CAPTURE
                        : (caps & V4L2_CAP_VIDEO_CAPTURE_MPLANE) ? V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE : 0;
        if (d->type != want || d->index >= (unsigned)n->nfmt) return fail(EINVAL);
        struct fmt *f = &n->f[d->index];
        d->flags = !strcmp(f->cc, "MJPG") ? V4L2_FMT_FLAG_COMPRESSED : 0;
        memset(d->description, 0, sizeof(d->description));
        strncpy((char *)d->description, f->desc, sizeof(d->description) - 1);
        d->pixelformat = v4l2_fourcc(f->cc[0], f->cc[1], f->cc[2], f->cc[3]);
        return 0;
    }
    if (req == VIDIOC_ENUM_FRAMESIZES) {
        struct v4l2_frmsizeenum *s = arg;
        struct fmt *f = find_fmt(n, s->pixel_format);
        if (!f) return fail(EINVAL);
        if (f->stepwise) {
            if (s->index != 0) return fail(EINVAL);
            s->type = V4L2_FRMSIZE_TYPE_STEPWISE;
            s->stepwise.min_width = f->step[0];
            s->stepwise.max_width = f->step[1];
            s->stepwise.step_width = f->step[2];
            s->stepwise.min_height = f->step[3];
            s->stepwise.max_height = f->step[4];
            s->stepwise.step_height = f->step[5];
            return 0;
        }
        if (s->index >= (unsigned)f->nsize) return fail(EINVAL);
        s->type = V4L2_FRMSIZE_TYPE_DISCRETE;
        s->discrete.width = f->sz[s->index].w;
        s->discrete.height = f->sz[s->index].h;
        return 0;
    }
    if (req == VIDIOC_ENUM_FRAMEINTERVALS) {
        struct v4l2_frmivalenum *iv = arg;
        struct fmt *f = find_fmt(n, iv->pixel_format);
        if (!f) return fail(EINVAL);
        if (f->ivrange) {
            if (iv->index != 0) return fail(EINVAL);
            iv->type = V4L2_FRMIVAL_TYPE_STEPWISE;
            iv->stepwise.min.numerator = f->ivmin.num;
            iv->stepwise.min.denominator = f->ivmin.den;
            iv->stepwise.max.numerator = f->ivmax.num;
            iv->stepwise.max.denominator = f->ivmax.den;
            iv->stepwise.step.numerator = 1;
            iv->stepwise.step.denominator = 1;
            return 0;
        }
        for (int i = 0; i < f->nsize; i++) {
            struct fsize *s = &f->sz[i];
            if (s->w != iv->width || s->h != iv->height) continue;
            if (iv->index >= (unsigned)s->nival) return fail(EINVAL);
            iv->type = V4L2_FRMIVAL_TYPE_DISCRETE;
            iv->discrete.numerator = s->iv[iv->index].num;
            iv->discrete.denominator = s->iv[iv->index].den;
            return 0;
        }
        return fail(EINVAL);
    }
    return fail(ENOTTY);
}

static mode_t mode_arg(int flags, va_list ap) {
    return (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
}

int open(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int r = fake_open(path);
    return r != -2 ? r : real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int r = fake_open(path);
    return r != -2 ? r : real_open(path, flags, mode);
}

int __open_2(const char *path, int flags) {
    int r = fake_open(path);
    return r != -2 ? r : real_open(path, flags);
}

int __open64_2(const char *path, int flags) {
    return __open_2(path, flags);
}

int openat(int dirfd, const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int r = path[0] == '/' ? fake_open(path) : -2;
    return r != -2 ? r : real_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int r = path[0] == '/' ? fake_open(path) : -2;
    return r != -2 ? r : real_openat(dirfd, path, flags, mode);
}

int close(int fd) {
    if (fd >= 0 && fd < MAX_FDS) {
        pthread_mutex_lock(&lock);
        free(fds[fd]);
        fds[fd] = NULL;
        pthread_mutex_unlock(&lock);
    }
    return real_close(fd);
}

int ioctl(int fd, unsigned long req, ...) {
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    struct node *n = fake_node(fd);
    return n ? fake_ioctl(n, req, arg) : real_ioctl(fd, req, arg);
}

long syscall(long number, ...) {
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_ioctl) {
        struct node *n = fake_node((int)a[0]);
        if (n) return fake_ioctl(n, (unsigned long)a[1], (void *)a[2]);
    }
    return real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
