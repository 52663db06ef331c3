/*
 * LD_PRELOAD shim: fake V4L2 devices for the camera tests.
 *
 * The nodes are real character devices created by the test (mknod) in a temp device directory; without a V4L2
 * driver behind them open() would fail with ENXIO. For the paths listed in the spec file named by
 * $CAMSHIM_SPEC this shim answers open/open64/openat/__open_2 with a descriptor of /dev/null (or fails with the
 * listed errno), and answers VIDIOC_QUERYCAP / ENUM_FMT / ENUM_FRAMESIZES / ENUM_FRAMEINTERVALS on that descriptor
 * with the canned replies, through both ioctl() and syscall(SYS_ioctl, ...) (the `v4l` crate uses the latter).
 * It also streams: a capture node whose format is YUYV delivers a moving test pattern through the mmap streaming
 * I/O that ffmpeg's v4l2 input uses (G/S_FMT, G/S_PARM, G/S_INPUT, ENUMINPUT, REQBUFS, QUERYBUF, mmap, QBUF,
 * DQBUF, STREAMON/OFF), paced at the frame rate set with S_PARM (else the size's first interval), so the
 * daemon's `ffmpeg -f v4l2` publisher and direct captures run unchanged against a shimmed node.
 * Like the kernel (uvcvideo, videobuf2), a node streams for one opener at a time: the first descriptor that sets the
 * format, requests buffers or starts streaming owns the node until it is closed (or frees its buffers with a
 * zero-count REQBUFS); another descriptor, in any process, that tries one of those meanwhile gets EBUSY. Ownership is
 * an flock on a per-node lock file next to the spec (`<spec>.lock.<node path with '/' as '_'>`), so it spans
 * processes and is dropped by the kernel when an owner dies. Opening, querying and enumerating stay free for all.
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
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_NODES 16
#define MAX_FMTS 8
#define MAX_SIZES 16
#define MAX_IVALS 8
#define MAX_FDS 4096
#define MAX_BUFS 8

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
    /* Capture state of this open descriptor (zero until the client sets a format or requests buffers). */
    unsigned pixfmt, width, height, tpf_num, tpf_den;
    unsigned nbuf;
    size_t buflen, bufstride;
    int ring[MAX_BUFS], ring_head, ring_count, streaming;
    unsigned long long sequence;
    struct timespec t0;
    /* The node's lock file, held (flock) while this descriptor owns the node; -1 when it does not. */
    int owner_fd;
};

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);
static long (*real_syscall)(long, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct node *fds[MAX_FDS];
/* The mmap'd capture buffers of each shimmed descriptor. */
static void *buffers[MAX_FDS][MAX_BUFS];

/* Also called lazily: other libraries' constructors (glib's, in ffmpeg) may call in before ours has run. */
__attribute__((constructor)) static void init(void) {
    real_open = dlsym(RTLD_NEXT, "open");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_close = dlsym(RTLD_NEXT, "close");
    real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    real_syscall = dlsym(RTLD_NEXT, "syscall");
    real_mmap = dlsym(RTLD_NEXT, "mmap");
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

static void release(struct node *n);

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
    copy->owner_fd = -1;
    pthread_mutex_lock(&lock);
    release(fds[fd]);
    free(fds[fd]);
    fds[fd] = copy;
    memset(buffers[fd], 0, sizeof(buffers[fd]));
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

/* ---- exclusive streaming (one owner per node) ---- */

/* Take the node for this descriptor: 0, or -1 with EBUSY while another descriptor owns it. Called with `lock`. */
static int acquire(struct node *n) {
    if (n->owner_fd >= 0) return 0;
    const char *spec = getenv("CAMSHIM_SPEC");
    if (!spec) return 0;
    char path[1200];
    int len = snprintf(path, sizeof(path), "%s.lock.", spec);
    for (const char *c = n->path; *c && len < (int)sizeof(path) - 1; c++) path[len++] = *c == '/' ? '_' : *c;
    path[len] = 0;
    int fd = real_open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return 0; /* no place for a lock file: do not model exclusivity rather than fail the capture */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        real_close(fd);
        return fail(EBUSY);
    }
    n->owner_fd = fd;
    return 0;
}

/* Give the node up (close, zero-count REQBUFS). Called with `lock` (or on a descriptor no other thread uses). */
static void release(struct node *n) {
    if (!n || n->owner_fd < 0) return;
    real_close(n->owner_fd); /* closing the only descriptor of the lock file drops the flock */
    n->owner_fd = -1;
}

/* ---- streaming ---- */

static int streams_yuyv(struct node *n) {
    return find_fmt(n, V4L2_PIX_FMT_YUYV) != NULL;
}

/* The size of the YUYV format closest to w x h (exact match, else the first listed). */
static struct fsize *pick_size(struct node *n, unsigned w, unsigned h) {
    struct fmt *f = find_fmt(n, V4L2_PIX_FMT_YUYV);
    if (!f || f->nsize == 0) return NULL;
    for (int i = 0; i < f->nsize; i++)
        if (f->sz[i].w == w && f->sz[i].h == h) return &f->sz[i];
    return &f->sz[0];
}

/* Default mode: YUYV, its first size, that size's first interval (else 1/30). */
static void default_mode(struct node *n) {
    if (n->pixfmt) return;
    struct fsize *s = pick_size(n, 0, 0);
    if (!s) return;
    n->pixfmt = V4L2_PIX_FMT_YUYV;
    n->width = s->w;
    n->height = s->h;
    n->tpf_num = s->nival ? s->iv[0].num : 1;
    n->tpf_den = s->nival && s->iv[0].den ? s->iv[0].den : 30;
}

static void fill_pix(struct node *n, struct v4l2_pix_format *p) {
    memset(p, 0, sizeof(*p));
    p->width = n->width;
    p->height = n->height;
    p->pixelformat = n->pixfmt;
    p->field = V4L2_FIELD_NONE;
    p->bytesperline = n->width * 2;
    p->sizeimage = n->width * n->height * 2;
    p->colorspace = V4L2_COLORSPACE_SRGB;
}

/* A diagonal luma ramp that moves 4 pixels per frame, over constant chroma: cheap, and every frame differs. */
static void paint(unsigned char *dst, unsigned w, unsigned h, unsigned long long frame) {
    for (unsigned y = 0; y < h; y++) {
        unsigned char *row = dst + (size_t)y * w * 2;
        for (unsigned x = 0; x < w; x += 2) {
            row[2 * x + 0] = (unsigned char)(x + y + frame * 4);
            row[2 * x + 1] = 96;
            row[2 * x + 2] = (unsigned char)(x + 1 + y + frame * 4);
            row[2 * x + 3] = 160;
        }
    }
}

static int stream_ioctl(int fd, struct node *n, unsigned long req, void *arg) {
    if (!streams_yuyv(n)) return -2;
    default_mode(n);
    if (req == VIDIOC_G_INPUT) {
        *(int *)arg = 0;
        return 0;
    }
    if (req == VIDIOC_S_INPUT) return *(int *)arg == 0 ? 0 : fail(EINVAL);
    if (req == VIDIOC_ENUMINPUT) {
        struct v4l2_input *in = arg;
        if (in->index != 0) return fail(EINVAL);
        unsigned index = in->index;
        memset(in, 0, sizeof(*in));
        in->index = index;
        strncpy((char *)in->name, "Camera 1", sizeof(in->name) - 1);
        in->type = V4L2_INPUT_TYPE_CAMERA;
        return 0;
    }
    if (req == VIDIOC_G_FMT || req == VIDIOC_S_FMT || req == VIDIOC_TRY_FMT) {
        struct v4l2_format *f = arg;
        if (f->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return fail(EINVAL);
        if (req != VIDIOC_G_FMT) {
            if (n->streaming || n->nbuf) return fail(EBUSY);
            if (req == VIDIOC_S_FMT && acquire(n) != 0) return -1;
            struct fsize *s = pick_size(n, f->fmt.pix.width, f->fmt.pix.height);
            if (req == VIDIOC_TRY_FMT) {
                struct node tmp = *n;
                tmp.width = s->w;
                tmp.height = s->h;
                tmp.pixfmt = V4L2_PIX_FMT_YUYV;
                fill_pix(&tmp, &f->fmt.pix);
                return 0;
            }
            n->width = s->w;
            n->height = s->h;
            n->pixfmt = V4L2_PIX_FMT_YUYV;
        }
        fill_pix(n, &f->fmt.pix);
        return 0;
    }
    if (req == VIDIOC_G_PARM || req == VIDIOC_S_PARM) {
        struct v4l2_streamparm *p = arg;
        if (p->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return fail(EINVAL);
        struct v4l2_fract *tpf = &p->parm.capture.timeperframe;
        if (req == VIDIOC_S_PARM && tpf->numerator > 0 && tpf->denominator > 0) {
            n->tpf_num = tpf->numerator;
            n->tpf_den = tpf->denominator;
        }
        memset(&p->parm, 0, sizeof(p->parm));
        p->parm.capture.capability = V4L2_CAP_TIMEPERFRAME;
        tpf->numerator = n->tpf_num;
        tpf->denominator = n->tpf_den;
        return 0;
    }
    if (req == VIDIOC_REQBUFS) {
        struct v4l2_requestbuffers *r = arg;
        if (r->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || r->memory != V4L2_MEMORY_MMAP) return fail(EINVAL);
        if (n->streaming) return fail(EBUSY);
        if (r->count > 0 && acquire(n) != 0) return -1;
        if (r->count == 0) release(n);
        n->nbuf = r->count == 0 ? 0 : r->count < 2 ? 2 : r->count > 4 ? 4 : r->count;
        n->buflen = (size_t)n->width * n->height * 2;
        long page = sysconf(_SC_PAGESIZE);
        n->bufstride = (n->buflen + page - 1) / page * page;
        n->ring_count = 0;
        r->count = n->nbuf;
        return 0;
    }
    if (req == VIDIOC_QUERYBUF || req == VIDIOC_QBUF || req == VIDIOC_DQBUF) {
        struct v4l2_buffer *b = arg;
        if (b->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || b->memory != V4L2_MEMORY_MMAP) return fail(EINVAL);
        if (req == VIDIOC_DQBUF) return -3; /* handled without the lock: it sleeps */
        if (b->index >= n->nbuf) return fail(EINVAL);
        if (req == VIDIOC_QBUF) {
            if (n->ring_count >= MAX_BUFS) return fail(EINVAL);
            n->ring[(n->ring_head + n->ring_count++) % MAX_BUFS] = b->index;
            return 0;
        }
        unsigned index = b->index;
        memset(b, 0, sizeof(*b));
        b->index = index;
        b->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        b->memory = V4L2_MEMORY_MMAP;
        b->length = n->buflen;
        b->m.offset = index * n->bufstride;
        b->flags = buffers[fd][index] ? V4L2_BUF_FLAG_MAPPED : 0;
        return 0;
    }
    if (req == VIDIOC_STREAMON || req == VIDIOC_STREAMOFF) {
        if (*(int *)arg != V4L2_BUF_TYPE_VIDEO_CAPTURE) return fail(EINVAL);
        if (req == VIDIOC_STREAMON && acquire(n) != 0) return -1;
        n->streaming = req == VIDIOC_STREAMON;
        if (n->streaming) {
            clock_gettime(CLOCK_MONOTONIC, &n->t0);
            n->sequence = 0;
        } else {
            n->ring_count = 0;
        }
        return 0;
    }
    return -2;
}

/* VIDIOC_DQBUF: wait for the next frame time, then hand out the oldest queued buffer, painted. */
static int dequeue(int fd, struct node *n, struct v4l2_buffer *b) {
    for (;;) {
        pthread_mutex_lock(&lock);
        if (!n->streaming) {
            pthread_mutex_unlock(&lock);
            return fail(EINVAL);
        }
        unsigned long long seq = n->sequence;
        long long period_ns = (long long)n->tpf_num * 1000000000LL / (n->tpf_den ? n->tpf_den : 30);
        long long due_ns = (long long)n->t0.tv_sec * 1000000000LL + n->t0.tv_nsec + (long long)seq * period_ns;
        int have = n->ring_count > 0;
        pthread_mutex_unlock(&lock);
        struct timespec due = {due_ns / 1000000000LL, due_ns % 1000000000LL};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) == EINTR) {
        }
        if (!have) {
            struct timespec pause = {0, 5000000};
            nanosleep(&pause, NULL);
            continue;
        }
        pthread_mutex_lock(&lock);
        if (!n->streaming || n->ring_count == 0) {
            pthread_mutex_unlock(&lock);
            continue;
        }
        int index = n->ring[n->ring_head];
        n->ring_head = (n->ring_head + 1) % MAX_BUFS;
        n->ring_count--;
        n->sequence++;
        unsigned char *mem = buffers[fd][index];
        if (mem) paint(mem, n->width, n->height, seq);
        memset(b, 0, sizeof(*b));
        b->index = index;
        b->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        b->memory = V4L2_MEMORY_MMAP;
        b->bytesused = n->buflen;
        b->length = n->buflen;
        b->m.offset = index * n->bufstride;
        b->field = V4L2_FIELD_NONE;
        b->sequence = (unsigned)seq;
        b->flags = V4L2_BUF_FLAG_MAPPED | V4L2_BUF_FLAG_DONE | V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        b->timestamp.tv_sec = now.tv_sec;
        b->timestamp.tv_usec = now.tv_nsec / 1000;
        pthread_mutex_unlock(&lock);
        return 0;
    }
}

/* Dispatch one ioctl on a shimmed descriptor: enumeration, then capture. */
static int shim_ioctl(int fd, struct node *n, unsigned long req, void *arg) {
    pthread_mutex_lock(&lock);
    int r = stream_ioctl(fd, n, req, arg);
    pthread_mutex_unlock(&lock);
    if (r == -3) return dequeue(fd, n, arg);
    return r == -2 ? fake_ioctl(n, req, arg) : r;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    if (!real_mmap) init();
    struct node *n = fake_node(fd);
    if (!n) return real_mmap(addr, len, prot, flags, fd, off);
    pthread_mutex_lock(&lock);
    unsigned index = n->bufstride ? (unsigned)(off / n->bufstride) : MAX_BUFS;
    int ok = index < n->nbuf && (size_t)off == index * n->bufstride && len <= n->bufstride;
    pthread_mutex_unlock(&lock);
    if (!ok) {
        errno = EINVAL;
        return MAP_FAILED;
    }
    void *p = real_mmap(NULL, len, prot, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
        pthread_mutex_lock(&lock);
        buffers[fd][index] = p;
        pthread_mutex_unlock(&lock);
    }
    return p;
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    return mmap(addr, len, prot, flags, fd, off);
}

static mode_t mode_arg(int flags, va_list ap) {
    return (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
}

int open(const char *path, int flags, ...) {
    if (!real_open) init();
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int r = fake_open(path);
    return r != -2 ? r : real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...) {
    if (!real_open) init();
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int r = fake_open(path);
    return r != -2 ? r : real_open(path, flags, mode);
}

int __open_2(const char *path, int flags) {
    if (!real_open) init();
    int r = fake_open(path);
    return r != -2 ? r : real_open(path, flags);
}

int __open64_2(const char *path, int flags) {
    return __open_2(path, flags);
}

int openat(int dirfd, const char *path, int flags, ...) {
    if (!real_open) init();
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int r = path[0] == '/' ? fake_open(path) : -2;
    return r != -2 ? r : real_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
    if (!real_open) init();
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int r = path[0] == '/' ? fake_open(path) : -2;
    return r != -2 ? r : real_openat(dirfd, path, flags, mode);
}

int close(int fd) {
    if (!real_open) init();
    if (fd >= 0 && fd < MAX_FDS) {
        pthread_mutex_lock(&lock);
        release(fds[fd]);
        free(fds[fd]);
        fds[fd] = NULL;
        memset(buffers[fd], 0, sizeof(buffers[fd]));
        pthread_mutex_unlock(&lock);
    }
    return real_close(fd);
}

int ioctl(int fd, unsigned long req, ...) {
    if (!real_ioctl) init();
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    struct node *n = fake_node(fd);
    return n ? shim_ioctl(fd, n, req, arg) : real_ioctl(fd, req, arg);
}

long syscall(long number, ...) {
    if (!real_syscall) init();
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_ioctl) {
        struct node *n = fake_node((int)a[0]);
        if (n) return shim_ioctl((int)a[0], n, (unsigned long)a[1], (void *)a[2]);
    }
    return real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
