/*
 * fuse3ll: an N-API addon over libfuse 3's low-level API (fuse_lowlevel.h).
 *
 * Why our own addon: the cluster's cache coherence needs the kernel's caches
 * invalidated per inode (fuse_lowlevel_notify_inval_inode/_entry/_delete),
 * which needs node ids that are our inode numbers: only the low-level API
 * gives both.
 *
 * Threads:
 * - one session thread runs fuse_session_loop().  Every request handler
 *   copies what the request carries (names, write data; libfuse's buffer is
 *   reused by the next request) into a struct and hands it to JavaScript
 *   through a napi_threadsafe_function (unbounded queue, non-blocking): the
 *   libfuse thread never waits for JavaScript.
 * - JavaScript answers later, on its own thread, with the reply functions
 *   below; the fuse_req_t travels as a number (a user-space pointer, < 2^53).
 *   Every request gets exactly one reply (libfuse frees it then).
 * - notifications run as napi_async_work off the JavaScript thread: the
 *   kernel may make notify_inval_entry wait for a directory lock held by a
 *   request that JavaScript has still to answer (fuse_lowlevel.h, "must not
 *   be called in the execution path of a related filesystem operation");
 *   answering that request must stay possible meanwhile.
 *
 * The session ends when the loop returns (unmounted from outside or by
 * JavaScript, or the connection aborted); JavaScript is told (op END) and
 * calls close() once every request has been answered.
 */
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <node_api.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* Operation codes shared with src/fuse/binding.ts (OP). */
enum {
	OP_INIT = 1, OP_END, OP_LOOKUP, OP_FORGET, OP_GETATTR, OP_SETATTR, OP_READLINK,
	OP_MKNOD, OP_MKDIR, OP_UNLINK, OP_RMDIR, OP_SYMLINK, OP_RENAME, OP_LINK,
	OP_OPEN, OP_READ, OP_WRITE, OP_FLUSH, OP_RELEASE, OP_FSYNC, OP_OPENDIR,
	OP_READDIR, OP_RELEASEDIR, OP_FSYNCDIR, OP_STATFS, OP_SETXATTR, OP_GETXATTR,
	OP_LISTXATTR, OP_REMOVEXATTR, OP_ACCESS, OP_CREATE, OP_GETLK, OP_SETLK,
	OP_FLOCK, OP_FALLOCATE, OP_READDIRPLUS, OP_LSEEK, OP_COPY_FILE_RANGE,
};

/* Attributes cross as a Float64Array of ATTR_N numbers, in this order. */
enum {
	A_INO, A_MODE, A_NLINK, A_UID, A_GID, A_RDEV, A_SIZE, A_BLOCKS, A_BLKSIZE,
	A_ATIME, A_ATIME_NS, A_MTIME, A_MTIME_NS, A_CTIME, A_CTIME_NS, ATTR_N
};

/* Open reply flags (binding.ts OPEN_*). */
#define OPEN_DIRECT_IO 1
#define OPEN_KEEP_CACHE 2
#define OPEN_CACHE_READDIR 4
#define OPEN_NONSEEKABLE 8
#define OPEN_NOFLUSH 16

struct session {
	struct fuse_session *se;
	pthread_t thread;
	int thread_started;
	napi_threadsafe_function tsfn;
	/* Negotiated in init. */
	unsigned max_write;
	unsigned want_set, want_clear;
	int closed;
	char *mountpoint;
};

/* One request on its way to JavaScript. */
struct msg {
	int op;
	fuse_req_t req;
	uint64_t ino;
	double a, b, c, d, e;
	uint32_t uid, gid, pid;
	char *buf1; size_t len1;   /* name / data */
	char *buf2; size_t len2;   /* second name / link target */
	double *nums; size_t nnums; /* setattr / lock arguments */
};

/* ---- helpers ------------------------------------------------------------ */

static napi_value undef(napi_env env)
{
	napi_value u;
	napi_get_undefined(env, &u);
	return u;
}

static int args(napi_env env, napi_callback_info info, size_t want, napi_value *argv)
{
	size_t argc = want;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
		napi_throw_type_error(env, NULL, "fuse3ll: missing arguments");
		return -1;
	}
	return 0;
}

static double num(napi_env env, napi_value v)
{
	double d = 0;
	napi_get_value_double(env, v, &d);
	return d;
}

static fuse_req_t req_of(napi_env env, napi_value v)
{
	return (fuse_req_t)(uintptr_t)num(env, v);
}

static struct session *session_of(napi_env env, napi_value v)
{
	void *p = NULL;
	napi_get_value_external(env, v, &p);
	return p;
}

static int bytes_of(napi_env env, napi_value v, char **data, size_t *len)
{
	void *d = NULL;
	size_t n = 0;
	bool is;
	napi_is_buffer(env, v, &is);
	if (!is) {
		napi_throw_type_error(env, NULL, "fuse3ll: expected a Buffer");
		return -1;
	}
	napi_get_buffer_info(env, v, &d, &n);
	*data = d;
	*len = n;
	return 0;
}

static double *f64_of(napi_env env, napi_value v, size_t *n)
{
	napi_typedarray_type t;
	size_t len = 0, off = 0;
	void *data = NULL;
	napi_value ab;
	if (napi_get_typedarray_info(env, v, &t, &len, &data, &ab, &off) != napi_ok || t != napi_float64_array) {
		napi_throw_type_error(env, NULL, "fuse3ll: expected a Float64Array");
		return NULL;
	}
	if (n)
		*n = len;
	return data;
}

static void fill_stat(struct stat *st, const double *a)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = (ino_t)a[A_INO];
	st->st_mode = (mode_t)a[A_MODE];
	st->st_nlink = (nlink_t)a[A_NLINK];
	st->st_uid = (uid_t)a[A_UID];
	st->st_gid = (gid_t)a[A_GID];
	st->st_rdev = (dev_t)a[A_RDEV];
	st->st_size = (off_t)a[A_SIZE];
	st->st_blocks = (blkcnt_t)a[A_BLOCKS];
	st->st_blksize = (blksize_t)a[A_BLKSIZE];
	st->st_atim.tv_sec = (time_t)a[A_ATIME];
	st->st_atim.tv_nsec = (long)a[A_ATIME_NS];
	st->st_mtim.tv_sec = (time_t)a[A_MTIME];
	st->st_mtim.tv_nsec = (long)a[A_MTIME_NS];
	st->st_ctim.tv_sec = (time_t)a[A_CTIME];
	st->st_ctim.tv_nsec = (long)a[A_CTIME_NS];
}

/* fuse_entry_param from (attr, ino, generation, attr timeout, entry timeout). */
static void fill_entry(struct fuse_entry_param *e, const double *attr, double ino, double gen, double attr_to, double entry_to)
{
	memset(e, 0, sizeof(*e));
	e->ino = (fuse_ino_t)ino;
	e->generation = (uint64_t)gen;
	if (attr)
		fill_stat(&e->attr, attr);
	e->attr.st_ino = e->ino;
	e->attr_timeout = attr_to;
	e->entry_timeout = entry_to;
}

/* ---- libfuse thread -> JavaScript --------------------------------------- */

static struct msg *new_msg(fuse_req_t req, int op, fuse_ino_t ino)
{
	struct msg *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->op = op;
	m->req = req;
	m->ino = ino;
	if (req) {
		const struct fuse_ctx *c = fuse_req_ctx(req);
		m->uid = c->uid;
		m->gid = c->gid;
		m->pid = c->pid;
	}
	return m;
}

static int dup_bytes(const char *src, size_t n, char **dst, size_t *len)
{
	*dst = malloc(n ? n : 1);
	if (!*dst)
		return -1;
	memcpy(*dst, src, n);
	*len = n;
	return 0;
}

static void free_msg(struct msg *m)
{
	free(m->buf1);
	free(m->buf2);
	free(m->nums);
	free(m);
}

/* Hands m to JavaScript; on failure answers the request with EIO here. */
static void post(fuse_req_t req, struct msg *m)
{
	struct session *s = req ? fuse_req_userdata(req) : NULL;
	if (!m) {
		if (req)
			fuse_reply_err(req, ENOMEM);
		return;
	}
	if (!s || napi_call_threadsafe_function(s->tsfn, m, napi_tsfn_nonblocking) != napi_ok) {
		if (req && m->op != OP_FORGET)
			fuse_reply_err(req, EIO);
		else if (req)
			fuse_reply_none(req);
		free_msg(m);
	}
}

static struct msg *name_msg(fuse_req_t req, int op, fuse_ino_t ino, const char *name)
{
	struct msg *m = new_msg(req, op, ino);
	if (m && dup_bytes(name, strlen(name), &m->buf1, &m->len1)) {
		free(m);
		return NULL;
	}
	return m;
}

static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
	struct session *s = userdata;
	/* max_pages follows max_write (libfuse do_init); the kernel caps it at its own limit. */
	if (s->max_write)
		conn->max_write = s->max_write;
	conn->max_readahead = conn->max_write;
	conn->want |= s->want_set & conn->capable;
	conn->want &= ~s->want_clear;
	conn->time_gran = 1;
	struct msg *m = new_msg(NULL, OP_INIT, 0);
	if (m) {
		m->a = conn->proto_major;
		m->b = conn->proto_minor;
		m->c = conn->capable;
		m->d = conn->want;
		m->e = conn->max_write;
		if (napi_call_threadsafe_function(s->tsfn, m, napi_tsfn_nonblocking) != napi_ok)
			free_msg(m);
	}
}

/* Nothing here: JavaScript runs its destroy when told the loop ended. */
static void ll_destroy(void *userdata)
{
	(void)userdata;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	post(req, name_msg(req, OP_LOOKUP, parent, name));
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct msg *m = new_msg(NULL, OP_FORGET, ino);
	struct session *s = fuse_req_userdata(req);
	fuse_reply_none(req);
	if (!m)
		return;
	m->a = (double)nlookup;
	if (napi_call_threadsafe_function(s->tsfn, m, napi_tsfn_nonblocking) != napi_ok)
		free_msg(m);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct session *s = fuse_req_userdata(req);
	for (size_t i = 0; i < count; i++) {
		struct msg *m = new_msg(NULL, OP_FORGET, forgets[i].ino);
		if (!m)
			continue;
		m->a = (double)forgets[i].nlookup;
		if (napi_call_threadsafe_function(s->tsfn, m, napi_tsfn_nonblocking) != napi_ok)
			free_msg(m);
	}
	fuse_reply_none(req);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct msg *m = new_msg(req, OP_GETATTR, ino);
	if (m)
		m->a = fi ? (double)fi->fh : -1;
	post(req, m);
}

/* setattr arguments: [to_set, mode, uid, gid, size, atime, atime_ns, mtime, mtime_ns, fh or -1] */
static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	struct msg *m = new_msg(req, OP_SETATTR, ino);
	if (m) {
		m->nums = malloc(10 * sizeof(double));
		if (!m->nums) {
			free(m);
			m = NULL;
		} else {
			m->nnums = 10;
			double *n = m->nums;
			n[0] = to_set;
			n[1] = attr->st_mode;
			n[2] = attr->st_uid;
			n[3] = attr->st_gid;
			n[4] = (double)attr->st_size;
			n[5] = (double)attr->st_atim.tv_sec;
			n[6] = attr->st_atim.tv_nsec;
			n[7] = (double)attr->st_mtim.tv_sec;
			n[8] = attr->st_mtim.tv_nsec;
			n[9] = fi ? (double)fi->fh : -1;
		}
	}
	post(req, m);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
	post(req, new_msg(req, OP_READLINK, ino));
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct msg *m = name_msg(req, OP_MKNOD, parent, name);
	if (m) {
		m->a = mode;
		m->b = (double)rdev;
	}
	post(req, m);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct msg *m = name_msg(req, OP_MKDIR, parent, name);
	if (m)
		m->a = mode;
	post(req, m);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	post(req, name_msg(req, OP_UNLINK, parent, name));
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	post(req, name_msg(req, OP_RMDIR, parent, name));
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct msg *m = name_msg(req, OP_SYMLINK, parent, name);
	if (m && dup_bytes(link, strlen(link), &m->buf2, &m->len2)) {
		free_msg(m);
		m = NULL;
	}
	post(req, m);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct msg *m = name_msg(req, OP_RENAME, parent, name);
	if (m) {
		m->a = (double)newparent;
		m->b = flags;
		if (dup_bytes(newname, strlen(newname), &m->buf2, &m->len2)) {
			free_msg(m);
			m = NULL;
		}
	}
	post(req, m);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct msg *m = name_msg(req, OP_LINK, ino, newname);
	if (m)
		m->a = (double)newparent;
	post(req, m);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct msg *m = new_msg(req, OP_OPEN, ino);
	if (m)
		m->a = fi->flags;
	post(req, m);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct msg *m = new_msg(req, OP_READ, ino);
	if (m) {
		m->a = (double)fi->fh;
		m->b = (double)size;
		m->c = (double)off;
	}
	post(req, m);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct msg *m = new_msg(req, OP_WRITE, ino);
	if (m) {
		m->a = (double)fi->fh;
		m->b = (double)size;
		m->c = (double)off;
		m->d = fi->flags;
		if (dup_bytes(buf, size, &m->buf1, &m->len1)) {
			free(m);
			m = NULL;
		}
	}
	post(req, m);
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct msg *m = new_msg(req, OP_FLUSH, ino);
	if (m) {
		m->a = (double)fi->fh;
		m->b = (double)fi->lock_owner;
	}
	post(req, m);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct msg *m = new_msg(req, OP_RELEASE, ino);
	if (m) {
		m->a = (double)fi->fh;
		m->b = fi->flags;
		m->c = (double)fi->lock_owner;
		m->d = fi->flock_release;
	}
	post(req, m);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct msg *m = new_msg(req, OP_FSYNC, ino);
	if (m) {
		m->a = (double)fi->fh;
		m->b = datasync;
	}
	post(req, m);
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct msg *m = new_msg(req, OP_OPENDIR, ino);
	if (m)
		m->a = fi->flags;
	post(req, m);
}

static void readdir_common(int op, fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct msg *m = new_msg(req, op, ino);
	if (m) {
		m->a = (double)fi->fh;
		m->b = (double)size;
		m->c = (double)off;
	}
	post(req, m);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	readdir_common(OP_READDIR, req, ino, size, off, fi);
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	readdir_common(OP_READDIRPLUS, req, ino, size, off, fi);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct msg *m = new_msg(req, OP_RELEASEDIR, ino);
	if (m)
		m->a = (double)fi->fh;
	post(req, m);
}

static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct msg *m = new_msg(req, OP_FSYNCDIR, ino);
	if (m) {
		m->a = (double)fi->fh;
		m->b = datasync;
	}
	post(req, m);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	post(req, new_msg(req, OP_STATFS, ino));
}

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags)
{
	struct msg *m = name_msg(req, OP_SETXATTR, ino, name);
	if (m) {
		m->a = flags;
		if (dup_bytes(value, size, &m->buf2, &m->len2)) {
			free_msg(m);
			m = NULL;
		}
	}
	post(req, m);
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct msg *m = name_msg(req, OP_GETXATTR, ino, name);
	if (m)
		m->a = (double)size;
	post(req, m);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct msg *m = new_msg(req, OP_LISTXATTR, ino);
	if (m)
		m->a = (double)size;
	post(req, m);
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	post(req, name_msg(req, OP_REMOVEXATTR, ino, name));
}

static void ll_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct msg *m = new_msg(req, OP_ACCESS, ino);
	if (m)
		m->a = mask;
	post(req, m);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	struct msg *m = name_msg(req, OP_CREATE, parent, name);
	if (m) {
		m->a = mode;
		m->b = fi->flags;
	}
	post(req, m);
}

/* lock arguments: [fh, owner, type, whence, start, len, pid, sleep] */
static void lock_common(int op, fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock, int sleep)
{
	struct msg *m = new_msg(req, op, ino);
	if (m) {
		m->nums = malloc(8 * sizeof(double));
		if (!m->nums) {
			free(m);
			m = NULL;
		} else {
			m->nnums = 8;
			m->nums[0] = (double)fi->fh;
			m->nums[1] = (double)fi->lock_owner;
			m->nums[2] = lock->l_type;
			m->nums[3] = lock->l_whence;
			m->nums[4] = (double)lock->l_start;
			m->nums[5] = (double)lock->l_len;
			m->nums[6] = lock->l_pid;
			m->nums[7] = sleep;
		}
	}
	post(req, m);
}

static void ll_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock)
{
	lock_common(OP_GETLK, req, ino, fi, lock, 0);
}

static void ll_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock, int sleep)
{
	lock_common(OP_SETLK, req, ino, fi, lock, sleep);
}

static void ll_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
	struct msg *m = new_msg(req, OP_FLOCK, ino);
	if (m) {
		m->a = (double)fi->fh;
		m->b = (double)fi->lock_owner;
		m->c = op;
	}
	post(req, m);
}

static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, struct fuse_file_info *fi)
{
	struct msg *m = new_msg(req, OP_FALLOCATE, ino);
	if (m) {
		m->a = (double)fi->fh;
		m->b = mode;
		m->c = (double)offset;
		m->d = (double)length;
	}
	post(req, m);
}

static void ll_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct msg *m = new_msg(req, OP_LSEEK, ino);
	if (m) {
		m->a = (double)fi->fh;
		m->b = (double)off;
		m->c = whence;
	}
	post(req, m);
}

/* copy_file_range arguments: [fh_in, off_in, ino_out, fh_out, off_out, len, flags] */
static void ll_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *fi_in,
			       fuse_ino_t ino_out, off_t off_out, struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct msg *m = new_msg(req, OP_COPY_FILE_RANGE, ino_in);
	if (m) {
		m->nums = malloc(7 * sizeof(double));
		if (!m->nums) {
			free(m);
			m = NULL;
		} else {
			m->nnums = 7;
			m->nums[0] = (double)fi_in->fh;
			m->nums[1] = (double)off_in;
			m->nums[2] = (double)ino_out;
			m->nums[3] = (double)fi_out->fh;
			m->nums[4] = (double)off_out;
			m->nums[5] = (double)len;
			m->nums[6] = flags;
		}
	}
	post(req, m);
}

static const struct fuse_lowlevel_ops ll_ops = {
	.init = ll_init,
	.destroy = ll_destroy,
	.lookup = ll_lookup,
	.forget = ll_forget,
	.forget_multi = ll_forget_multi,
	.getattr = ll_getattr,
	.setattr = ll_setattr,
	.readlink = ll_readlink,
	.mknod = ll_mknod,
	.mkdir = ll_mkdir,
	.unlink = ll_unlink,
	.rmdir = ll_rmdir,
	.symlink = ll_symlink,
	.rename = ll_rename,
	.link = ll_link,
	.open = ll_open,
	.read = ll_read,
	.write = ll_write,
	.flush = ll_flush,
	.release = ll_release,
	.fsync = ll_fsync,
	.opendir = ll_opendir,
	.readdir = ll_readdir,
	.readdirplus = ll_readdirplus,
	.releasedir = ll_releasedir,
	.fsyncdir = ll_fsyncdir,
	.statfs = ll_statfs,
	.setxattr = ll_setxattr,
	.getxattr = ll_getxattr,
	.listxattr = ll_listxattr,
	.removexattr = ll_removexattr,
	.access = ll_access,
	.create = ll_create,
	.getlk = ll_getlk,
	.setlk = ll_setlk,
	.flock = ll_flock,
	.fallocate = ll_fallocate,
	.lseek = ll_lseek,
	.copy_file_range = ll_copy_file_range,
};

static void free_external(napi_env env, void *data, void *hint)
{
	(void)env;
	(void)hint;
	free(data);
}

/* On the JavaScript thread: dispatch(op, req, ino, a, b, c, d, e, buf1, buf2, uid, gid, pid). */
static void call_js(napi_env env, napi_value fn, void *ctx, void *data)
{
	struct msg *m = data;
	(void)ctx;
	if (!env || !fn) {
		if (m->req) {
			if (m->op == OP_FORGET)
				fuse_reply_none(m->req);
			else
				fuse_reply_err(m->req, EIO);
		}
		free_msg(m);
		return;
	}
	napi_value argv[13];
	napi_create_int32(env, m->op, &argv[0]);
	napi_create_double(env, (double)(uintptr_t)m->req, &argv[1]);
	napi_create_double(env, (double)m->ino, &argv[2]);
	napi_create_double(env, m->a, &argv[3]);
	napi_create_double(env, m->b, &argv[4]);
	napi_create_double(env, m->c, &argv[5]);
	napi_create_double(env, m->d, &argv[6]);
	napi_create_double(env, m->e, &argv[7]);
	argv[8] = undef(env);
	argv[9] = undef(env);
	if (m->buf1) {
		/* Handed over without a copy: the Buffer frees it. */
		if (napi_create_external_buffer(env, m->len1, m->buf1, free_external, NULL, &argv[8]) == napi_ok)
			m->buf1 = NULL;
		else
			napi_create_buffer_copy(env, m->len1, m->buf1, NULL, &argv[8]);
	}
	if (m->buf2)
		napi_create_buffer_copy(env, m->len2, m->buf2, NULL, &argv[9]);
	if (m->nums) {
		napi_value ab, ta;
		void *p;
		napi_create_arraybuffer(env, m->nnums * sizeof(double), &p, &ab);
		memcpy(p, m->nums, m->nnums * sizeof(double));
		napi_create_typedarray(env, napi_float64_array, m->nnums, ab, 0, &ta);
		argv[9] = ta;
	}
	napi_create_uint32(env, m->uid, &argv[10]);
	napi_create_uint32(env, m->gid, &argv[11]);
	napi_create_uint32(env, m->pid, &argv[12]);
	napi_value global, ret;
	napi_get_global(env, &global);
	napi_call_function(env, global, fn, 13, argv, &ret);
	free_msg(m);
}

/* ---- the session thread ------------------------------------------------- */

static void *loop_thread(void *arg)
{
	struct session *s = arg;
	sigset_t all;
	/* Signals are the JavaScript thread's business (SIGINT/SIGTERM -> unmount). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	int rc = fuse_session_loop(s->se);
	struct msg *m = new_msg(NULL, OP_END, 0);
	if (m) {
		m->a = rc;
		if (napi_call_threadsafe_function(s->tsfn, m, napi_tsfn_blocking) != napi_ok)
			free_msg(m);
	}
	return NULL;
}

/*
 * mount(mountpoint, args: string[], dispatch, maxWrite, wantSet, wantClear) -> session
 * args are libfuse's command line (e.g. ["ocfs2-fuse", "-o", "ro,allow_other"]).
 */
static napi_value js_mount(napi_env env, napi_callback_info info)
{
	napi_value argv[6];
	if (args(env, info, 6, argv))
		return NULL;
	char mnt[4096];
	size_t mlen;
	if (napi_get_value_string_utf8(env, argv[0], mnt, sizeof(mnt), &mlen) != napi_ok) {
		napi_throw_type_error(env, NULL, "fuse3ll: mountpoint must be a string");
		return NULL;
	}
	uint32_t argc = 0;
	napi_get_array_length(env, argv[1], &argc);
	char **fargv = calloc(argc + 1, sizeof(char *));
	for (uint32_t i = 0; i < argc; i++) {
		napi_value v;
		size_t n;
		napi_get_element(env, argv[1], i, &v);
		napi_get_value_string_utf8(env, v, NULL, 0, &n);
		fargv[i] = malloc(n + 1);
		napi_get_value_string_utf8(env, v, fargv[i], n + 1, &n);
	}
	struct session *s = calloc(1, sizeof(*s));
	s->max_write = (unsigned)num(env, argv[3]);
	s->want_set = (unsigned)num(env, argv[4]);
	s->want_clear = (unsigned)num(env, argv[5]);
	s->mountpoint = strdup(mnt);
	napi_value name;
	napi_create_string_utf8(env, "fuse3ll", NAPI_AUTO_LENGTH, &name);
	if (napi_create_threadsafe_function(env, argv[2], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &s->tsfn) != napi_ok) {
		napi_throw_error(env, NULL, "fuse3ll: cannot create the thread-safe function");
		goto fail;
	}
	struct fuse_args fa = FUSE_ARGS_INIT((int)argc, fargv);
	s->se = fuse_session_new(&fa, &ll_ops, sizeof(ll_ops), s);
	fuse_opt_free_args(&fa);
	fargv = NULL;
	if (!s->se) {
		napi_throw_error(env, "EINVAL", "fuse3ll: fuse_session_new failed (bad options?)");
		goto fail_tsfn;
	}
	if (fuse_session_mount(s->se, mnt) != 0) {
		napi_throw_error(env, "EIO", "fuse3ll: fuse_session_mount failed");
		fuse_session_destroy(s->se);
		goto fail_tsfn;
	}
	if (pthread_create(&s->thread, NULL, loop_thread, s) != 0) {
		fuse_session_unmount(s->se);
		fuse_session_destroy(s->se);
		napi_throw_error(env, NULL, "fuse3ll: cannot start the session thread");
		goto fail_tsfn;
	}
	s->thread_started = 1;
	napi_value ext;
	napi_create_external(env, s, NULL, NULL, &ext);
	return ext;
fail_tsfn:
	napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
fail:
	if (fargv) {
		for (uint32_t i = 0; i < argc; i++)
			free(fargv[i]);
		free(fargv);
	}
	free(s->mountpoint);
	free(s);
	return NULL;
}

/* exit(session): fuse_session_exit (the loop stops at its next request). */
static napi_value js_exit(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	if (args(env, info, 1, argv))
		return NULL;
	struct session *s = session_of(env, argv[0]);
	if (s && !s->closed)
		fuse_session_exit(s->se);
	return undef(env);
}

/*
 * close(session): after END and after every request was answered: unmount
 * if still mounted (fuse_session_unmount does nothing when the kernel has
 * closed the channel), free the session, let the process exit.
 */
static napi_value js_close(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	if (args(env, info, 1, argv))
		return NULL;
	struct session *s = session_of(env, argv[0]);
	if (!s || s->closed)
		return undef(env);
	s->closed = 1;
	if (s->thread_started)
		pthread_join(s->thread, NULL);
	fuse_session_unmount(s->se);
	fuse_session_destroy(s->se);
	napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
	return undef(env);
}

/* ref(session, bool): keep the event loop alive while mounted (or not). */
static napi_value js_ref(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	if (args(env, info, 2, argv))
		return NULL;
	struct session *s = session_of(env, argv[0]);
	bool r;
	napi_get_value_bool(env, argv[1], &r);
	if (s && !s->closed) {
		if (r)
			napi_ref_threadsafe_function(env, s->tsfn);
		else
			napi_unref_threadsafe_function(env, s->tsfn);
	}
	return undef(env);
}

/* ---- replies (JavaScript thread) ---------------------------------------- */

static napi_value ret_int(napi_env env, int v)
{
	napi_value r;
	napi_create_int32(env, v, &r);
	return r;
}

/* replyErr(req, errno): 0 = success for operations without data. */
static napi_value js_reply_err(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	if (args(env, info, 2, argv))
		return NULL;
	return ret_int(env, fuse_reply_err(req_of(env, argv[0]), (int)num(env, argv[1])));
}

/* replyEntry(req, attr, ino, generation, attrTimeout, entryTimeout); ino 0 = negative entry. */
static napi_value js_reply_entry(napi_env env, napi_callback_info info)
{
	napi_value argv[6];
	if (args(env, info, 6, argv))
		return NULL;
	double *a = NULL;
	napi_valuetype t;
	napi_typeof(env, argv[1], &t);
	if (t != napi_undefined && t != napi_null && !(a = f64_of(env, argv[1], NULL)))
		return NULL;
	struct fuse_entry_param e;
	fill_entry(&e, a, num(env, argv[2]), num(env, argv[3]), num(env, argv[4]), num(env, argv[5]));
	return ret_int(env, fuse_reply_entry(req_of(env, argv[0]), &e));
}

static void fill_open(struct fuse_file_info *fi, double fh, int flags)
{
	memset(fi, 0, sizeof(*fi));
	fi->fh = (uint64_t)fh;
	fi->direct_io = !!(flags & OPEN_DIRECT_IO);
	fi->keep_cache = !!(flags & OPEN_KEEP_CACHE);
	fi->cache_readdir = !!(flags & OPEN_CACHE_READDIR);
	fi->nonseekable = !!(flags & OPEN_NONSEEKABLE);
	fi->noflush = !!(flags & OPEN_NOFLUSH);
}

/* replyCreate(req, attr, ino, generation, attrTimeout, entryTimeout, fh, openFlags) */
static napi_value js_reply_create(napi_env env, napi_callback_info info)
{
	napi_value argv[8];
	if (args(env, info, 8, argv))
		return NULL;
	double *a = f64_of(env, argv[1], NULL);
	if (!a)
		return NULL;
	struct fuse_entry_param e;
	struct fuse_file_info fi;
	fill_entry(&e, a, num(env, argv[2]), num(env, argv[3]), num(env, argv[4]), num(env, argv[5]));
	fill_open(&fi, num(env, argv[6]), (int)num(env, argv[7]));
	return ret_int(env, fuse_reply_create(req_of(env, argv[0]), &e, &fi));
}

/* replyAttr(req, attr, timeout) */
static napi_value js_reply_attr(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	if (args(env, info, 3, argv))
		return NULL;
	double *a = f64_of(env, argv[1], NULL);
	if (!a)
		return NULL;
	struct stat st;
	fill_stat(&st, a);
	return ret_int(env, fuse_reply_attr(req_of(env, argv[0]), &st, num(env, argv[2])));
}

/* replyReadlink(req, target: Buffer) */
static napi_value js_reply_readlink(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	if (args(env, info, 2, argv))
		return NULL;
	char *d;
	size_t n;
	if (bytes_of(env, argv[1], &d, &n))
		return NULL;
	char *z = malloc(n + 1);
	if (!z)
		return ret_int(env, fuse_reply_err(req_of(env, argv[0]), ENOMEM));
	memcpy(z, d, n);
	z[n] = 0;
	int r = fuse_reply_readlink(req_of(env, argv[0]), z);
	free(z);
	return ret_int(env, r);
}

/* replyOpen(req, fh, openFlags) */
static napi_value js_reply_open(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	if (args(env, info, 3, argv))
		return NULL;
	struct fuse_file_info fi;
	fill_open(&fi, num(env, argv[1]), (int)num(env, argv[2]));
	return ret_int(env, fuse_reply_open(req_of(env, argv[0]), &fi));
}

/* replyWrite(req, count) */
static napi_value js_reply_write(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	if (args(env, info, 2, argv))
		return NULL;
	return ret_int(env, fuse_reply_write(req_of(env, argv[0]), (size_t)num(env, argv[1])));
}

/* replyBuf(req, buf: Buffer, length) */
static napi_value js_reply_buf(napi_env env, napi_callback_info info)
{
	napi_value argv[3];
	if (args(env, info, 3, argv))
		return NULL;
	char *d;
	size_t n;
	if (bytes_of(env, argv[1], &d, &n))
		return NULL;
	size_t len = (size_t)num(env, argv[2]);
	if (len > n)
		len = n;
	return ret_int(env, fuse_reply_buf(req_of(env, argv[0]), d, len));
}

/* replyStatfs(req, [bsize, frsize, blocks, bfree, bavail, files, ffree, favail, fsid, flag, namemax]) */
static napi_value js_reply_statfs(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	if (args(env, info, 2, argv))
		return NULL;
	size_t n;
	double *v = f64_of(env, argv[1], &n);
	if (!v || n < 11)
		return NULL;
	struct statvfs st;
	memset(&st, 0, sizeof(st));
	st.f_bsize = (unsigned long)v[0];
	st.f_frsize = (unsigned long)v[1];
	st.f_blocks = (fsblkcnt_t)v[2];
	st.f_bfree = (fsblkcnt_t)v[3];
	st.f_bavail = (fsblkcnt_t)v[4];
	st.f_files = (fsfilcnt_t)v[5];
	st.f_ffree = (fsfilcnt_t)v[6];
	st.f_favail = (fsfilcnt_t)v[7];
	st.f_fsid = (unsigned long)v[8];
	st.f_flag = (unsigned long)v[9];
	st.f_namemax = (unsigned long)v[10];
	return ret_int(env, fuse_reply_statfs(req_of(env, argv[0]), &st));
}

/* replyXattr(req, size) */
static napi_value js_reply_xattr(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	if (args(env, info, 2, argv))
		return NULL;
	return ret_int(env, fuse_reply_xattr(req_of(env, argv[0]), (size_t)num(env, argv[1])));
}

/* replyLock(req, type, whence, start, len, pid) */
static napi_value js_reply_lock(napi_env env, napi_callback_info info)
{
	napi_value argv[6];
	if (args(env, info, 6, argv))
		return NULL;
	struct flock l;
	memset(&l, 0, sizeof(l));
	l.l_type = (short)num(env, argv[1]);
	l.l_whence = (short)num(env, argv[2]);
	l.l_start = (off_t)num(env, argv[3]);
	l.l_len = (off_t)num(env, argv[4]);
	l.l_pid = (pid_t)num(env, argv[5]);
	return ret_int(env, fuse_reply_lock(req_of(env, argv[0]), &l));
}

/* replyLseek(req, off) */
static napi_value js_reply_lseek(napi_env env, napi_callback_info info)
{
	napi_value argv[2];
	if (args(env, info, 2, argv))
		return NULL;
	return ret_int(env, fuse_reply_lseek(req_of(env, argv[0]), (off_t)num(env, argv[1])));
}

/* replyNone(req): forget-style requests that take no answer. */
static napi_value js_reply_none(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	if (args(env, info, 1, argv))
		return NULL;
	fuse_reply_none(req_of(env, argv[0]));
	return undef(env);
}

/*
 * replyDir(req, size, plus, names: Buffer[], nums: Float64Array) -> entries packed.
 * Per entry DIR_STRIDE numbers: ino, mode, next offset, generation, attr
 * timeout, entry timeout, then ATTR_N attributes (used by readdirplus).
 * Entries are packed until the next does not fit in size bytes.
 */
#define DIR_STRIDE (6 + ATTR_N)
static napi_value js_reply_dir(napi_env env, napi_callback_info info)
{
	napi_value argv[5];
	if (args(env, info, 5, argv))
		return NULL;
	fuse_req_t req = req_of(env, argv[0]);
	size_t size = (size_t)num(env, argv[1]);
	bool plus;
	napi_get_value_bool(env, argv[2], &plus);
	uint32_t count = 0;
	napi_get_array_length(env, argv[3], &count);
	size_t nn = 0;
	bool empty = count == 0;
	/* An empty Float64Array may have no data pointer: nothing to read then. */
	double *v = empty ? NULL : f64_of(env, argv[4], &nn);
	if (!v && !empty)
		return NULL;
	char *out = malloc(size ? size : 1);
	if (!out)
		return ret_int(env, -fuse_reply_err(req, ENOMEM));
	size_t used = 0;
	uint32_t i;
	for (i = 0; i < count && (size_t)(i + 1) * DIR_STRIDE <= nn; i++) {
		napi_value nv;
		char *name;
		size_t nlen;
		char zname[1025];
		napi_get_element(env, argv[3], i, &nv);
		if (bytes_of(env, nv, &name, &nlen)) {
			free(out);
			return NULL;
		}
		if (nlen >= sizeof(zname))
			nlen = sizeof(zname) - 1;
		memcpy(zname, name, nlen);
		zname[nlen] = 0;
		const double *e = v + (size_t)i * DIR_STRIDE;
		size_t need;
		if (plus) {
			struct fuse_entry_param ep;
			fill_entry(&ep, e + 6, e[0], e[3], e[4], e[5]);
			if (e[3] < 0) {
				/* No entry ("." and ".."): node id 0, the kernel takes no reference. */
				ep.ino = 0;
				ep.generation = 0;
				ep.attr.st_ino = (ino_t)e[0];
			}
			need = fuse_add_direntry_plus(req, out + used, size - used, zname, &ep, (off_t)e[2]);
		} else {
			struct stat st;
			memset(&st, 0, sizeof(st));
			st.st_ino = (ino_t)e[0];
			st.st_mode = (mode_t)e[1];
			need = fuse_add_direntry(req, out + used, size - used, zname, &st, (off_t)e[2]);
		}
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, out, used);
	free(out);
	return ret_int(env, (int)i);
}

/* ---- notifications (off the JavaScript thread) -------------------------- */

enum { N_INODE, N_ENTRY, N_DELETE };

struct notify {
	napi_async_work work;
	napi_deferred deferred;
	struct session *s;
	int kind;
	uint64_t ino, parent;
	int64_t off, len;
	char *name;
	size_t namelen;
	int result;
};

static void notify_exec(napi_env env, void *data)
{
	struct notify *n = data;
	(void)env;
	if (n->s->closed) {
		n->result = -ENOTCONN;
		return;
	}
	switch (n->kind) {
	case N_INODE:
		n->result = fuse_lowlevel_notify_inval_inode(n->s->se, n->ino, n->off, n->len);
		break;
	case N_ENTRY:
		n->result = fuse_lowlevel_notify_inval_entry(n->s->se, n->parent, n->name, n->namelen);
		break;
	case N_DELETE:
		n->result = fuse_lowlevel_notify_delete(n->s->se, n->parent, n->ino, n->name, n->namelen);
		break;
	}
}

static void notify_done(napi_env env, napi_status status, void *data)
{
	struct notify *n = data;
	napi_value r;
	(void)status;
	napi_create_int32(env, n->result, &r);
	/* Resolves with 0 or -errno (-ENOENT: the kernel had nothing cached). */
	napi_resolve_deferred(env, n->deferred, r);
	napi_delete_async_work(env, n->work);
	free(n->name);
	free(n);
}

/* notify(session, kind, ino, parent, off, len, name?) -> Promise<0 | -errno> */
static napi_value js_notify(napi_env env, napi_callback_info info)
{
	napi_value argv[7];
	if (args(env, info, 7, argv))
		return NULL;
	struct notify *n = calloc(1, sizeof(*n));
	n->s = session_of(env, argv[0]);
	n->kind = (int)num(env, argv[1]);
	n->ino = (uint64_t)num(env, argv[2]);
	n->parent = (uint64_t)num(env, argv[3]);
	n->off = (int64_t)num(env, argv[4]);
	n->len = (int64_t)num(env, argv[5]);
	napi_valuetype t;
	napi_typeof(env, argv[6], &t);
	if (t != napi_undefined) {
		char *d;
		size_t l;
		if (bytes_of(env, argv[6], &d, &l)) {
			free(n);
			return NULL;
		}
		n->name = malloc(l + 1);
		memcpy(n->name, d, l);
		n->name[l] = 0;
		n->namelen = l;
	}
	napi_value promise, rname;
	napi_create_promise(env, &n->deferred, &promise);
	napi_create_string_utf8(env, "fuse3ll-notify", NAPI_AUTO_LENGTH, &rname);
	napi_create_async_work(env, NULL, rname, notify_exec, notify_done, n, &n->work);
	napi_queue_async_work(env, n->work);
	return promise;
}

/* ---- module ------------------------------------------------------------- */

static napi_value init(napi_env env, napi_value exports)
{
	napi_property_descriptor props[] = {
		{ "mount", NULL, js_mount, NULL, NULL, NULL, napi_default, NULL },
		{ "exit", NULL, js_exit, NULL, NULL, NULL, napi_default, NULL },
		{ "close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL },
		{ "ref", NULL, js_ref, NULL, NULL, NULL, napi_default, NULL },
		{ "replyErr", NULL, js_reply_err, NULL, NULL, NULL, napi_default, NULL },
		{ "replyNone", NULL, js_reply_none, NULL, NULL, NULL, napi_default, NULL },
		{ "replyEntry", NULL, js_reply_entry, NULL, NULL, NULL, napi_default, NULL },
		{ "replyCreate", NULL, js_reply_create, NULL, NULL, NULL, napi_default, NULL },
		{ "replyAttr", NULL, js_reply_attr, NULL, NULL, NULL, napi_default, NULL },
		{ "replyReadlink", NULL, js_reply_readlink, NULL, NULL, NULL, napi_default, NULL },
		{ "replyOpen", NULL, js_reply_open, NULL, NULL, NULL, napi_default, NULL },
		{ "replyWrite", NULL, js_reply_write, NULL, NULL, NULL, napi_default, NULL },
		{ "replyBuf", NULL, js_reply_buf, NULL, NULL, NULL, napi_default, NULL },
		{ "replyStatfs", NULL, js_reply_statfs, NULL, NULL, NULL, napi_default, NULL },
		{ "replyXattr", NULL, js_reply_xattr, NULL, NULL, NULL, napi_default, NULL },
		{ "replyLock", NULL, js_reply_lock, NULL, NULL, NULL, napi_default, NULL },
		{ "replyLseek", NULL, js_reply_lseek, NULL, NULL, NULL, napi_default, NULL },
		{ "replyDir", NULL, js_reply_dir, NULL, NULL, NULL, napi_default, NULL },
		{ "notify", NULL, js_notify, NULL, NULL, NULL, napi_default, NULL },
	};
	napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
	return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
