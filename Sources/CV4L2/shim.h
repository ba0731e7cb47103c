#ifndef CV4L2_SHIM_H
#define CV4L2_SHIM_H
// Swift cannot call variadic C functions (v4l2_open, v4l2_ioctl) nor import the
// function-like _IOR/_IOWR macros behind VIDIOC_*; this shim re-exports both as
// plain functions and constants. It can shrink if Swift learns either.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/videodev2.h>
#include <libv4l2.h>
#include <libv4lconvert.h>
#include <dlfcn.h>
#include <poll.h>

static inline int CV4L2_open(const char *path, int flags) { return v4l2_open(path, flags); }
static inline int CV4L2_close(int fd) { return v4l2_close(fd); }
static inline int CV4L2_ioctl(int fd, unsigned long request, void *arg) { return v4l2_ioctl(fd, request, arg); }
static inline void *CV4L2_mmap(void *start, size_t length, int prot, int flags, int fd, int64_t offset) {
    return v4l2_mmap(start, length, prot, flags, fd, offset);
}
static inline int CV4L2_munmap(void *start, size_t length) { return v4l2_munmap(start, length); }

static const unsigned long CV4L2_VIDIOC_QUERYCAP = VIDIOC_QUERYCAP;
static const unsigned long CV4L2_VIDIOC_ENUM_FMT = VIDIOC_ENUM_FMT;
static const unsigned long CV4L2_VIDIOC_ENUM_FRAMESIZES = VIDIOC_ENUM_FRAMESIZES;
static const unsigned long CV4L2_VIDIOC_ENUM_FRAMEINTERVALS = VIDIOC_ENUM_FRAMEINTERVALS;
static const unsigned long CV4L2_VIDIOC_G_FMT = VIDIOC_G_FMT;
static const unsigned long CV4L2_VIDIOC_S_FMT = VIDIOC_S_FMT;
static const unsigned long CV4L2_VIDIOC_G_PARM = VIDIOC_G_PARM;
static const unsigned long CV4L2_VIDIOC_S_PARM = VIDIOC_S_PARM;
static const unsigned long CV4L2_VIDIOC_REQBUFS = VIDIOC_REQBUFS;
static const unsigned long CV4L2_VIDIOC_QUERYBUF = VIDIOC_QUERYBUF;
static const unsigned long CV4L2_VIDIOC_QBUF = VIDIOC_QBUF;
static const unsigned long CV4L2_VIDIOC_DQBUF = VIDIOC_DQBUF;
static const unsigned long CV4L2_VIDIOC_STREAMON = VIDIOC_STREAMON;
static const unsigned long CV4L2_VIDIOC_STREAMOFF = VIDIOC_STREAMOFF;
static const unsigned long CV4L2_VIDIOC_QUERYCTRL = VIDIOC_QUERYCTRL;
static const unsigned long CV4L2_VIDIOC_S_CTRL = VIDIOC_S_CTRL;


// libv4lconvert, called directly so that the capture side picks (and knows) the device's native
// format and converts it to RGB24 itself. It is always loaded (libv4l2 depends on it), but the
// module map links only libv4l2 and the linker will not resolve symbols of a dependency's
// dependency, so its few functions are looked up at run time. Returns NULL/-1 if it is absent.
static inline struct v4lconvert_data *CV4L2_convert_create(int fd) {
    struct v4lconvert_data *(*create)(int) = (struct v4lconvert_data *(*)(int))dlsym(RTLD_DEFAULT, "v4lconvert_create");
    return create ? create(fd) : NULL;
}
static inline void CV4L2_convert_destroy(struct v4lconvert_data *data) {
    void (*destroy)(struct v4lconvert_data *) = (void (*)(struct v4lconvert_data *))dlsym(RTLD_DEFAULT, "v4lconvert_destroy");
    if (destroy && data) destroy(data);
}
/// Fills `src` with the native format libv4lconvert would capture in to deliver `dest`.
static inline int CV4L2_convert_try_format(struct v4lconvert_data *data, struct v4l2_format *dest, struct v4l2_format *src) {
    int (*try_format)(struct v4lconvert_data *, struct v4l2_format *, struct v4l2_format *) =
        (int (*)(struct v4lconvert_data *, struct v4l2_format *, struct v4l2_format *))dlsym(RTLD_DEFAULT, "v4lconvert_try_format");
    return try_format ? try_format(data, dest, src) : -1;
}
static inline int CV4L2_convert(struct v4lconvert_data *data, const struct v4l2_format *src, const struct v4l2_format *dest,
                                unsigned char *src_bytes, int src_size, unsigned char *dest_bytes, int dest_size) {
    int (*convert)(struct v4lconvert_data *, const struct v4l2_format *, const struct v4l2_format *, unsigned char *, int,
                   unsigned char *, int) =
        (int (*)(struct v4lconvert_data *, const struct v4l2_format *, const struct v4l2_format *, unsigned char *, int,
                 unsigned char *, int))dlsym(RTLD_DEFAULT, "v4lconvert_convert");
    return convert ? convert(data, src, dest, src_bytes, src_size, dest_bytes, dest_size) : -1;
}
static inline const char *CV4L2_convert_error(struct v4lconvert_data *data) {
    const char *(*message)(struct v4lconvert_data *) =
        (const char *(*)(struct v4lconvert_data *))dlsym(RTLD_DEFAULT, "v4lconvert_get_error_message");
    return message ? message(data) : "libv4lconvert not loaded";
}

#endif
