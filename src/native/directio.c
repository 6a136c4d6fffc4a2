/*
 * directio: the smallest N-API addon that lets the o2hb heartbeat bypass the
 * host page cache, as the kernel's heartbeat bio does.
 *
 * Why native: O_DIRECT needs the user buffer, the file offset and the length
 * aligned to the device's logical sector size.  Node Buffers have no alignment
 * guarantee, so every transfer goes through memory from posix_memalign and is
 * copied to or from the caller's Buffer.
 *
 * Transfers run on the libuv thread pool (napi_async_work) and settle a
 * Promise, so a hung write (a suspended device) never blocks the JavaScript
 * event loop: the heartbeat's write-timeout timer keeps running and can fence.
 *
 * Exports:
 *   open(path: string, writable: boolean) -> fd        (O_DIRECT, synchronous)
 *   close(fd) -> undefined
 *   sectorSize(fd) -> number   (BLKSSZGET for block devices, else 512)
 *   pread(fd, buf: Buffer, offset: number) -> Promise<number>
 *   pwrite(fd, buf: Buffer, offset: number) -> Promise<number>
 *   flock(fd, exclusive: boolean) -> boolean   (LOCK_NB: false when another
 *       open file description holds a conflicting lock; Node has no flock(2))
 * Errors carry .code = "EIO" etc. and .errno (positive).
 */
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>

#define ALIGN 4096

static napi_value make_errno_error(napi_env env, int err, const char *what)
{
	napi_value code, msg, error, num;
	const char *name = NULL;
	char text[256];

	switch (err) {
	case EIO: name = "EIO"; break;
	case EINVAL: name = "EINVAL"; break;
	case ENOENT: name = "ENOENT"; break;
	case EACCES: name = "EACCES"; break;
	case EPERM: name = "EPERM"; break;
	case EBADF: name = "EBADF"; break;
	case ENOMEM: name = "ENOMEM"; break;
	case EROFS: name = "EROFS"; break;
	case ENOSPC: name = "ENOSPC"; break;
	case EBUSY: name = "EBUSY"; break;
	case ENXIO: name = "ENXIO"; break;
	default: name = "EUNKNOWN"; break;
	}
	snprintf(text, sizeof(text), "%s: %s: %s", what, name, strerror(err));
	napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
	napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
	napi_create_error(env, code, msg, &error);
	napi_create_int32(env, err, &num);
	napi_set_named_property(env, error, "errno", num);
	return error;
}

static napi_value throw_errno(napi_env env, int err, const char *what)
{
	napi_throw(env, make_errno_error(env, err, what));
	return NULL;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv)
{
	size_t argc = want;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
		napi_throw_type_error(env, NULL, "directio: missing arguments");
		return -1;
	}
	return 0;
}

static napi_value do_open(napi_env env, napi_callback_info info)
{
	napi_value argv[2], out;
	char path[4096];
	size_t len;
	bool writable;
	int fd;

	if (get_args(env, info, 2, argv))
		return NULL;
	if (napi_get_value_string_utf8(env, argv[0], path, sizeof(path), &len) != napi_ok) {
		napi_throw_type_error(env, NULL, "directio.open: path must be a string");
		return NULL;
	}
	if (napi_get_value_bool(env, argv[1], &writable) != napi_ok) {
		napi_throw_type_error(env, NULL, "directio.open: writable must be a boolean");
		return NULL;
	}
	fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return throw_errno(env, errno, "open");
	napi_create_int32(env, fd, &out);
	return out;
}

static napi_value do_close(napi_env env, napi_callback_info info)
{
	napi_value argv[1];
	int32_t fd;

	if (get_args(env, info, 1, argv))
		return NULL;
	if (napi_get_value_int32(env, argv[0], &fd) != napi_ok)
		return NULL;
	if (close(fd) < 0)
		return throw_errno(env, errno, "close");
	return NULL;
}

static napi_value do_sector_size(napi_env env, napi_callback_info info)
{
	napi_value argv[1], out;
	int32_t fd;
	int ssz = 512;
	struct stat st;

	if (get_args(env, info, 1, argv))
		return NULL;
	if (napi_get_value_int32(env, argv[0], &fd) != napi_ok)
		return NULL;
	if (fstat(fd, &st) < 0)
		return throw_errno(env, errno, "fstat");
	if (S_ISBLK(st.st_mode) && ioctl(fd, BLKSSZGET, &ssz) < 0)
		return throw_errno(env, errno, "BLKSSZGET");
	napi_create_int32(env, ssz, &out);
	return out;
}

struct io_req {
	napi_async_work work;
	napi_deferred deferred;
	napi_ref bufref;
	int fd;
	int write;
	void *aligned;
	void *user;		/* the Buffer's bytes, kept alive by bufref */
	size_t len;
	int64_t offset;
	ssize_t result;
	int err;
};

/* Runs on a pool thread: no N-API calls here. */
static void io_execute(napi_env env, void *data)
{
	struct io_req *r = data;
	size_t done = 0;
	(void)env;

	while (done < r->len) {
		ssize_t n = r->write
			? pwrite(r->fd, (char *)r->aligned + done, r->len - done, r->offset + (int64_t)done)
			: pread(r->fd, (char *)r->aligned + done, r->len - done, r->offset + (int64_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r->err = errno;
			break;
		}
		if (n == 0)
			break;	/* end of device: report a short transfer */
		done += (size_t)n;
	}
	r->result = (ssize_t)done;
}

static void io_complete(napi_env env, napi_status status, void *data)
{
	struct io_req *r = data;
	napi_value v;

	if (status != napi_ok && !r->err)
		r->err = ECANCELED;
	if (r->err) {
		napi_reject_deferred(env, r->deferred,
				     make_errno_error(env, r->err, r->write ? "pwrite" : "pread"));
	} else {
		if (!r->write)
			memcpy(r->user, r->aligned, (size_t)r->result);
		napi_create_double(env, (double)r->result, &v);
		napi_resolve_deferred(env, r->deferred, v);
	}
	napi_delete_reference(env, r->bufref);
	napi_delete_async_work(env, r->work);
	free(r->aligned);
	free(r);
}

static napi_value start_io(napi_env env, napi_callback_info info, int write)
{
	napi_value argv[3], promise, name;
	int32_t fd;
	double off;
	void *data;
	size_t len;
	bool isbuf;
	struct io_req *r;

	if (get_args(env, info, 3, argv))
		return NULL;
	if (napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
	    napi_is_buffer(env, argv[1], &isbuf) != napi_ok || !isbuf ||
	    napi_get_value_double(env, argv[2], &off) != napi_ok) {
		napi_throw_type_error(env, NULL, "directio: expected (fd, Buffer, offset)");
		return NULL;
	}
	napi_get_buffer_info(env, argv[1], &data, &len);
	if (off < 0 || off > 9007199254740991.0 || (int64_t)off % 512 != 0 || len % 512 != 0 || len == 0)
		return throw_errno(env, EINVAL, write ? "pwrite alignment" : "pread alignment");

	r = calloc(1, sizeof(*r));
	if (!r)
		return throw_errno(env, ENOMEM, "calloc");
	if (posix_memalign(&r->aligned, ALIGN, len ? len : ALIGN) != 0) {
		free(r);
		return throw_errno(env, ENOMEM, "posix_memalign");
	}
	r->fd = fd;
	r->write = write;
	r->user = data;
	r->len = len;
	r->offset = (int64_t)off;
	if (write)
		memcpy(r->aligned, data, len);

	napi_create_reference(env, argv[1], 1, &r->bufref);
	napi_create_promise(env, &r->deferred, &promise);
	napi_create_string_utf8(env, write ? "directio.pwrite" : "directio.pread", NAPI_AUTO_LENGTH, &name);
	napi_create_async_work(env, NULL, name, io_execute, io_complete, r, &r->work);
	napi_queue_async_work(env, r->work);
	return promise;
}

static napi_value do_pread(napi_env env, napi_callback_info info)
{
	return start_io(env, info, 0);
}

static napi_value do_pwrite(napi_env env, napi_callback_info info)
{
	return start_io(env, info, 1);
}

static napi_value do_flock(napi_env env, napi_callback_info info)
{
	napi_value argv[2], out;
	int32_t fd;
	bool exclusive;

	if (get_args(env, info, 2, argv))
		return NULL;
	if (napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
	    napi_get_value_bool(env, argv[1], &exclusive) != napi_ok) {
		napi_throw_type_error(env, NULL, "directio.flock: (fd, exclusive) expected");
		return NULL;
	}
	if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			return throw_errno(env, errno, "flock");
		napi_get_boolean(env, false, &out);
		return out;
	}
	napi_get_boolean(env, true, &out);
	return out;
}

static napi_value init(napi_env env, napi_value exports)
{
	napi_property_descriptor props[] = {
		{ "open", NULL, do_open, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "close", NULL, do_close, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "sectorSize", NULL, do_sector_size, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "pread", NULL, do_pread, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "pwrite", NULL, do_pwrite, NULL, NULL, NULL, napi_enumerable, NULL },
		{ "flock", NULL, do_flock, NULL, NULL, NULL, napi_enumerable, NULL },
	};
	napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
	return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
