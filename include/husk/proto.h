/* The host <-> guest-agent wire protocol: the one contract both sides build
 * against.
 *
 * The host (libhusk) and husk-agent (PID 1 in the guest) talk over one
 * byte stream: a virtio-console port inside a microVM, or a unix socket when
 * the agent runs on the host for tests. Either peer may be hostile (a
 * compromised guest attacks the host; a test feeds the agent garbage), so
 * every byte is checked before it means anything, and the first malformed
 * frame ends the session: the reader that found it stays failed, the side
 * that owns it sends a best-effort ERROR and closes the channel. Nothing in
 * this codec prints, exits or allocates more than HUSK_PROTO_MAX_PAYLOAD
 * for one frame. The codec judges each frame on its own (and HELLO's
 * place); credit accounting, stream lifetimes and matching replies to
 * requests belong to the session code on each side.
 *
 * Anything here that changes the bytes on the wire changes
 * HUSK_PROTO_VERSION_MAJOR (incompatible) or HUSK_PROTO_VERSION_MINOR (new
 * tags, types or flags an older peer may ignore or never receive).
 *
 * ---------------------------------------------------------------------
 * Frames
 *
 * The stream is a sequence of frames; a frame is a fixed 12-byte header and
 * then `length` payload bytes. All integers on the wire are unsigned and
 * little-endian, with no alignment or padding anywhere.
 *
 *   offset size field
 *   0      4    length  payload bytes that follow the header, at most
 *                       HUSK_PROTO_MAX_PAYLOAD; 0 is allowed
 *   4      2    type    enum husk_frame_type; 0 and unknown values are
 *                       protocol errors
 *   6      2    flags   HUSK_FRAME_REPLY; every other bit is reserved and
 *                       must be zero (a later minor version may define
 *                       them, and only after both peers said so in HELLO)
 *   8      4    stream  the process the frame is about (see below); 0 is
 *                       the session itself
 *
 * The header layout and the HELLO frame are frozen across all versions, so
 * that any two builds can at least tell each other what they speak.
 *
 * Streams. The host names every process it starts with a stream id of its
 * choosing (nonzero, not in use): the container's first process in CREATE,
 * each later one in EXEC. Control messages about that process, its stdio
 * data (STDIN, STDOUT, STDERR), end-of-stream (CLOSE) and flow control
 * (CREDIT) all carry that id. The id is free again once the host has
 * received the process's EXIT. Within one stream the agent handles
 * requests in order and answers them in order, which is what lets a reply
 * be matched to its request by (stream, type) without a request id.
 *
 * Requests and replies. CREATE, START, EXEC, SIGNAL, RESIZE, STATS and
 * SHUTDOWN are requests from the host. The agent answers each with a frame
 * of the same type and stream carrying HUSK_FRAME_REPLY, or with an ERROR
 * on that stream whose HUSK_TAG_REQUEST names the failed request type.
 * WAIT is answered by EXIT, not by a reply. Only the agent sends replies.
 *
 * Session start. Each side sends HELLO first, without waiting for the
 * other; each side's reader refuses any other frame before the peer's
 * HELLO, and a second HELLO. Majors must be equal (else the reader fails
 * with EPROTONOSUPPORT, so the user can be told to rebuild the guest
 * image); the session then speaks the smaller of the two minors.
 *
 * Stdio and flow control. Data frames (STDIN from the host; STDOUT, STDERR
 * from the agent) carry raw bytes, not TLVs. Each direction of each stdio
 * stream starts, when the stream is created, with HUSK_PROTO_INITIAL_CREDIT
 * bytes of credit: the sender may have that many payload bytes in flight,
 * decreases its credit by each data frame's length, and stops at zero. The
 * receiver sends CREDIT as it drains data to its destination (a pipe, a
 * PTY, the user's terminal), so a slow reader stalls only its own stream
 * and the channel never fills with data nobody reads. Credit never exceeds
 * HUSK_PROTO_MAX_WINDOW; a sender that overruns its credit or a receiver
 * that grants past the window breaks the protocol. Control frames are not
 * flow-controlled: they are small and each side always reads them. CLOSE
 * ends one direction of one stdio stream (host: fd 0; agent: fd 1 or 2);
 * the agent closes stdout and stderr before it sends EXIT.
 *
 * ---------------------------------------------------------------------
 * Control payloads: TLVs
 *
 * The payload of every frame but STDIN, STDOUT and STDERR is a sequence of
 * TLVs, each
 *
 *   offset size   field
 *   0      2      tag     enum husk_tag; 0 is invalid
 *   2      4      length  value bytes that follow; the value must end
 *                         within the payload
 *   6      length value
 *
 * Values by kind (fixed per tag, listed with enum husk_tag):
 *   u32     exactly 4 bytes; u64 exactly 8 (other widths are errors, so a
 *           peer cannot smuggle a 64-bit value past a 32-bit reader)
 *   bool    a u32 that is 0 or 1
 *   string  length bytes, no NUL among them, not NUL-terminated; bytes
 *           are otherwise uninterpreted (UTF-8 by convention)
 * Order is free. A tag marked "repeated" may appear up to its limit and
 * keeps its order (argv, env); any other tag at most once, because two
 * values for one field let two readers disagree on which counts. Known
 * tags out of range (listed below) are errors. Unknown tags are skipped,
 * so a newer minor version may add optional ones; tags a message does not
 * use are ignored. Required tags are listed per message; replies have
 * none.
 *
 * ---------------------------------------------------------------------
 * Messages (H: host sends, A: agent sends; stream: 0, s (nonzero) or any)
 *
 *   HELLO     H,A  0  VERSION_MAJOR*, VERSION_MINOR*, PEER_NAME
 *   ERROR     H,A  any  ERRNO*, MESSAGE*, REQUEST. From the agent on
 *                     stream s with REQUEST=t: request t on s failed. With
 *                     REQUEST absent or 0: fatal, the sender closes next.
 *   CREATE    H    s  set up a container whose first process is s, stopped
 *                     before exec: CONTAINER_ID*, ROOT_DEVICE*, ARGV*,
 *                     READONLY_ROOT, HOSTNAME, ENV, CWD, UID, GID, GROUP,
 *                     USER, TTY, STDIN, ROWS, COLS, MEMORY_LIMIT,
 *                     CPU_MILLIS, PIDS_LIMIT, MOUNT, PID_NS_OF. Reply:
 *                     empty.
 *   START     H    s  run the process CREATE prepared. Reply: PID.
 *   EXEC      H    s  run another process in a container at once:
 *                     CONTAINER_ID*, ARGV*, ENV, CWD, UID, GID, GROUP,
 *                     USER, TTY, STDIN, ROWS, COLS. Reply: PID.
 *   SIGNAL    H    s  SIGNAL*. Reply: empty.
 *   RESIZE    H    s  ROWS*, COLS* (the PTY's window). Reply: empty.
 *   WAIT      H    s  answered by EXIT once s has exited (at once if it
 *                     already has); no reply of its own.
 *   EXIT      A    s  EXIT_CODE* (Docker's: the status, or 128+N after
 *                     signal N), EXIT_SIGNAL, OOM_KILLED.
 *   STATS     H  0|s  s: the container created on s; 0: the whole VM.
 *                     Reply: MEMORY_USAGE, MEMORY_LIMIT, CPU_USAGE_NS,
 *                     PIDS_CURRENT.
 *   SHUTDOWN  H    0  SIGTERM everything, SIGKILL after TIMEOUT_MS
 *                     (default the agent's), then power off. Reply: empty,
 *                     sent before power-off.
 *   STDIN     H    s  raw bytes for the process's stdin
 *   STDOUT    A    s  raw bytes from its stdout (and stderr, with a TTY)
 *   STDERR    A    s  raw bytes from its stderr
 *   CLOSE     H,A  s  FD*: no more data in this direction (H: 0; A: 1, 2)
 *   CREDIT    H,A  s  FD*, CREDIT*: the receiver of fd's data lets the
 *                     sender send CREDIT more bytes (H grants 1, 2; A: 0)
 *
 * (* required)
 */
#ifndef HUSK_PROTO_H
#define HUSK_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "husk/error.h"

#define HUSK_PROTO_VERSION_MAJOR 1
#define HUSK_PROTO_VERSION_MINOR 2
#define HUSK_PROTO_VERSION       HUSK_PROTO_VERSION_MAJOR

#define HUSK_PROTO_HDR_SIZE 12u
#define HUSK_PROTO_TLV_HDR  6u /* tag + length */
/* Large enough for a big argv/env and for efficient stdio relaying, small
 * enough that a hostile peer pins at most this much memory per reader. */
#define HUSK_PROTO_MAX_PAYLOAD (1u << 20)
#define HUSK_PROTO_MAX_FRAME   (HUSK_PROTO_HDR_SIZE + HUSK_PROTO_MAX_PAYLOAD)
/* Limits of the repeated tags, per frame. */
#define HUSK_PROTO_MAX_STRINGS 4096 /* ARGV, and ENV, each */
#define HUSK_PROTO_MAX_GROUPS  256  /* GROUP */
/* Flow control, in payload bytes per direction of one stdio stream. */
#define HUSK_PROTO_INITIAL_CREDIT (256u << 10)
#define HUSK_PROTO_MAX_WINDOW     (16u << 20)

/* Which end of the channel a reader or encoder serves. */
enum husk_proto_side {
	HUSK_SIDE_HOST = 1,
	HUSK_SIDE_AGENT = 2,
};

enum husk_frame_type {
	HUSK_FRAME_HELLO = 1,
	HUSK_FRAME_ERROR = 2,
	HUSK_FRAME_CREATE = 3,
	HUSK_FRAME_START = 4,
	HUSK_FRAME_EXEC = 5,
	HUSK_FRAME_SIGNAL = 6,
	HUSK_FRAME_RESIZE = 7,
	HUSK_FRAME_WAIT = 8,
	HUSK_FRAME_EXIT = 9,
	HUSK_FRAME_STATS = 10,
	HUSK_FRAME_SHUTDOWN = 11,
	HUSK_FRAME_STDIN = 12,
	HUSK_FRAME_STDOUT = 13,
	HUSK_FRAME_STDERR = 14,
	HUSK_FRAME_CLOSE = 15,
	HUSK_FRAME_CREDIT = 16,
};
#define HUSK_FRAME_TYPE_MAX 16

/* flags */
#define HUSK_FRAME_REPLY 0x0001u /* the agent's answer to a request */

/* stdio file descriptors, as HUSK_TAG_FD values */
#define HUSK_FD_STDIN  0
#define HUSK_FD_STDOUT 1
#define HUSK_FD_STDERR 2

enum husk_tlv_kind {
	HUSK_TLV_UNKNOWN = 0, /* a tag this build does not know */
	HUSK_TLV_U32,
	HUSK_TLV_U64,
	HUSK_TLV_BOOL,
	HUSK_TLV_STRING,
};

/* One namespace of tags for all messages; a tag means the same thing
 * wherever it appears. Kind, [limits] and repeat limit after each. */
enum husk_tag {
	HUSK_TAG_VERSION_MAJOR = 1, /* u32: HUSK_PROTO_VERSION_MAJOR */
	HUSK_TAG_VERSION_MINOR = 2, /* u32: HUSK_PROTO_VERSION_MINOR */
	HUSK_TAG_PEER_NAME = 3,     /* string [<=64]: "husk-agent 0.1" */
	HUSK_TAG_ERRNO = 4,         /* u32 [1, 4095]: positive errno */
	HUSK_TAG_MESSAGE = 5,       /* string [<=1024]: for a person */
	HUSK_TAG_REQUEST = 6, /* u32 [0, HUSK_FRAME_TYPE_MAX]: failed type */
	HUSK_TAG_CONTAINER_ID = 7,   /* string [1, 128]: host-chosen name */
	HUSK_TAG_ARGV = 8,           /* string, repeated: argv[0], argv[1].. */
	HUSK_TAG_ENV = 9,            /* string, repeated: "KEY=VALUE" */
	HUSK_TAG_CWD = 10,           /* string [1, 4095]: working directory */
	HUSK_TAG_UID = 11,           /* u32 */
	HUSK_TAG_GID = 12,           /* u32 */
	HUSK_TAG_GROUP = 13,         /* u32, repeated: additional gids */
	HUSK_TAG_USER = 14,          /* string [1, 256]: "name[:group]",
	                                resolved inside the container where UID
	                                is absent */
	HUSK_TAG_TTY = 15,           /* bool: a PTY instead of pipes */
	HUSK_TAG_STDIN = 16,         /* bool: keep stdin open (docker -i) */
	HUSK_TAG_ROWS = 17,          /* u32 [0, 65535] */
	HUSK_TAG_COLS = 18,          /* u32 [0, 65535] */
	HUSK_TAG_SIGNAL = 19,        /* u32 [1, 64] */
	HUSK_TAG_EXIT_CODE = 20,     /* u32 [0, 255] */
	HUSK_TAG_EXIT_SIGNAL = 21,   /* u32 [1, 64]: the signal that killed */
	HUSK_TAG_OOM_KILLED = 22,    /* bool */
	HUSK_TAG_HOSTNAME = 23,      /* string [1, 64] */
	HUSK_TAG_ROOT_DEVICE = 24,   /* string [1, 255]: "serial:NAME",
	                                "/dev/vdb", or (minor 2) "9p:TAG/SUB":
	                                directory SUB of virtio-9p share TAG */
	HUSK_TAG_READONLY_ROOT = 25, /* bool: no writable layer */
	HUSK_TAG_MEMORY_LIMIT = 26,  /* u64: bytes */
	HUSK_TAG_CPU_MILLIS = 27,    /* u32 [1, 1048576]: 1000 = one CPU */
	HUSK_TAG_PIDS_LIMIT = 28,    /* u64 [1, ..] */
	HUSK_TAG_PID = 29,           /* u32: pid in the guest, informational */
	HUSK_TAG_FD = 30,            /* u32 [0, 2]: HUSK_FD_* */
	HUSK_TAG_CREDIT = 31,        /* u32 [1, HUSK_PROTO_MAX_WINDOW] */
	HUSK_TAG_MEMORY_USAGE = 32,  /* u64: bytes */
	HUSK_TAG_CPU_USAGE_NS = 33,  /* u64 */
	HUSK_TAG_PIDS_CURRENT = 34,  /* u64 */
	HUSK_TAG_TIMEOUT_MS = 35,    /* u32 */
	/* minor 1 */
	HUSK_TAG_EXIT_FOLLOWS = 36, /* bool, on an ERROR for START or EXEC:
	                               the process exists and could not exec;
	                               its EXIT (126/127) follows */
	HUSK_TAG_MOUNT = 37,        /* string [<=4200], repeated <=64:
	                               "9p:TAG:ro|rw:/dest" (a virtio-9p share),
	                               (minor 2) "9p:TAG/SUB:ro|rw:/dest" (a
	                               directory of one; a tag is used in one
	                               form only) or "tmpfs::rw:/dest"; an
	                               agent on the host also takes
	                               "bind:/path:ro|rw:/dest" */
	/* minor 2 */
	HUSK_TAG_PID_NS_OF = 38, /* string [1, 128], CREATE only: the id of a
	                            container of this agent whose first
	                            process is alive; the new container's
	                            processes join its PID namespace (a pod's
	                            shared one) instead of getting their own.
	                            A minor-1 agent would ignore it, so a host
	                            must not send it to one */
};
#define HUSK_TAG_MAX          38
#define HUSK_PROTO_MAX_MOUNTS 64

/* A decoded frame. payload points into the reader (or the caller's
 * buffer) and is not NUL-terminated. */
struct husk_frame {
	uint16_t type;
	uint16_t flags;
	uint32_t stream;
	uint32_t len;
	const uint8_t *payload;
};

/* A string value: pointer into the payload and length, no terminator. */
struct husk_str {
	const char *ptr;
	size_t len;
};

/* "CREATE", "STDOUT", ...; "?" for unknown values. */
const char *husk_proto_type_name(unsigned type);
/* "ARGV", "UID", ...; "?" for unknown tags. */
const char *husk_proto_tag_name(unsigned tag);
enum husk_tlv_kind husk_proto_tag_kind(unsigned tag);

/* ---------------------------------------------------------------------
 * Encoder
 *
 * Appends whole frames to a buffer: begin, add TLVs (or data), end. The
 * first failure inside a frame sticks: later adds return the same error
 * without touching err, and end reports it and drops the partial frame, so
 * a caller may check only end. Frames completed before stay in the
 * buffer. end also runs the decoder's own payload checks, so the encoder
 * never emits a frame that a reader of the same version would refuse.
 *
 * Errors: EINVAL (misuse, or a frame the peer would refuse), EMSGSIZE
 * (payload above HUSK_PROTO_MAX_PAYLOAD), ENOBUFS (caller's buffer full),
 * ENOMEM.
 */
struct husk_proto_enc {
	uint8_t *buf;
	size_t cap;
	size_t len;   /* bytes of complete frames (and the open one) */
	size_t frame; /* offset of the open frame's header */
	enum husk_proto_side self;
	bool growable;
	bool open;
	int error; /* positive errno that stuck in the open frame, or 0 */
};

/* Into the caller's buffer of cap bytes. */
void husk_proto_enc_init(struct husk_proto_enc *e, enum husk_proto_side self,
                         void *buf, size_t cap);
/* Into a buffer that grows as needed; husk_proto_enc_free releases it. */
void husk_proto_enc_init_alloc(struct husk_proto_enc *e,
                               enum husk_proto_side self);
void husk_proto_enc_free(struct husk_proto_enc *e);
/* Forgets every frame (after they were written out), keeps the memory. */
void husk_proto_enc_reset(struct husk_proto_enc *e);

int husk_proto_enc_begin(struct husk_proto_enc *e, unsigned type,
                         unsigned flags, uint32_t stream,
                         struct husk_error *err);
int husk_proto_enc_u32(struct husk_proto_enc *e, unsigned tag, uint32_t v,
                       struct husk_error *err);
int husk_proto_enc_u64(struct husk_proto_enc *e, unsigned tag, uint64_t v,
                       struct husk_error *err);
int husk_proto_enc_bool(struct husk_proto_enc *e, unsigned tag, bool v,
                        struct husk_error *err);
/* s is NUL-terminated; the NUL is not sent. */
int husk_proto_enc_str(struct husk_proto_enc *e, unsigned tag, const char *s,
                       struct husk_error *err);
/* n bytes of s; EINVAL if they contain a NUL. */
int husk_proto_enc_strn(struct husk_proto_enc *e, unsigned tag, const char *s,
                        size_t n, struct husk_error *err);
/* One TLV per element of the NULL-terminated vector v (argv, env). */
int husk_proto_enc_strv(struct husk_proto_enc *e, unsigned tag,
                        const char *const *v, struct husk_error *err);
/* Raw bytes into a STDIN, STDOUT or STDERR frame. */
int husk_proto_enc_data(struct husk_proto_enc *e, const void *data, size_t n,
                        struct husk_error *err);
int husk_proto_enc_end(struct husk_proto_enc *e, struct husk_error *err);

/* HELLO with this build's version, and name (may be NULL). */
int husk_proto_enc_hello(struct husk_proto_enc *e, const char *name,
                         struct husk_error *err);

/* ---------------------------------------------------------------------
 * Decoder
 *
 * Takes the byte stream from the peer in chunks of any size and yields
 * complete, validated frames: header (known type, length, flags, stream,
 * direction, HELLO first and once), then the payload (TLV structure,
 * tag kinds and limits, required tags, HELLO's version). A violation
 * returns a negative errno with a message and leaves the reader failed:
 * every later call returns the same error and message.
 *
 * Errors: EPROTO (malformed or out of order), EMSGSIZE (length or count
 * above a limit), EPROTONOSUPPORT (peer's major version differs), ENOMEM,
 * EINVAL (misuse).
 */
struct husk_proto_reader {
	enum husk_proto_side self;
	int failed; /* positive errno once failed, or 0 */
	struct husk_error first;
	bool hello; /* the peer's HELLO arrived */
	uint32_t peer_major, peer_minor;
	uint32_t minor; /* the minor version this session speaks */
	uint8_t hdr[HUSK_PROTO_HDR_SIZE];
	size_t hdr_have;       /* header bytes of the current frame */
	struct husk_frame cur; /* the current frame's header fields */
	uint8_t *buf;          /* payload, up to HUSK_PROTO_MAX_PAYLOAD */
	size_t cap;
	size_t have;     /* payload bytes of the current frame */
	uint64_t frames; /* frames delivered, for messages */
};

void husk_proto_reader_init(struct husk_proto_reader *r,
                            enum husk_proto_side self);
void husk_proto_reader_free(struct husk_proto_reader *r);

/* Consumes bytes from data[0, len) into the current frame and sets *used
 * to how many. Returns 1 when *frame holds a complete frame (its payload
 * valid until the next call), 0 when all of data went into an unfinished
 * frame, or a negative errno. Call again with the rest of the input after a
 * frame: one chunk may hold several frames. */
int husk_proto_reader_feed(struct husk_proto_reader *r, const void *data,
                           size_t len, size_t *used, struct husk_frame *frame,
                           struct husk_error *err);
/* The peer closed the channel: fine between frames, EPROTO inside one. */
int husk_proto_reader_eof(struct husk_proto_reader *r, struct husk_error *err);

/* Checks a whole frame sent by `from` as the reader does (header, then
 * payload), without the session's state (HELLO order and version). */
int husk_proto_check_frame(enum husk_proto_side from,
                           const struct husk_frame *f, struct husk_error *err);

/* ---------------------------------------------------------------------
 * TLVs
 *
 * The iterator walks a payload one TLV at a time and refuses tag 0, a
 * truncated TLV header and a value past the payload end; it fails for good
 * at the first of these. The value getters check the width (and for
 * strings the absence of NUL) and, for known tags, the kind and limits.
 */
struct husk_tlv {
	uint16_t tag;
	uint32_t len;
	const uint8_t *value;
};

struct husk_tlv_iter {
	const uint8_t *p;
	size_t len;
	size_t off;
	int failed; /* positive errno once failed */
};

void husk_tlv_iter_init(struct husk_tlv_iter *it, const uint8_t *payload,
                        size_t len);
/* 1 with *tlv set, 0 at the end, or a negative errno. */
int husk_tlv_next(struct husk_tlv_iter *it, struct husk_tlv *tlv,
                  struct husk_error *err);

int husk_tlv_u32(const struct husk_tlv *t, uint32_t *v, struct husk_error *err);
int husk_tlv_u64(const struct husk_tlv *t, uint64_t *v, struct husk_error *err);
int husk_tlv_bool(const struct husk_tlv *t, bool *v, struct husk_error *err);
int husk_tlv_str(const struct husk_tlv *t, struct husk_str *s,
                 struct husk_error *err);

/* Getters by tag over a decoded control frame. A single-valued getter
 * returns 1 and sets *v when the tag is present, 0 when it is absent (*v
 * untouched), negative when the payload is malformed or the tag appears
 * twice; EINVAL for a data frame, a repeated tag, or a known tag of
 * another kind. */
int husk_frame_u32(const struct husk_frame *f, unsigned tag, uint32_t *v,
                   struct husk_error *err);
int husk_frame_u64(const struct husk_frame *f, unsigned tag, uint64_t *v,
                   struct husk_error *err);
int husk_frame_bool(const struct husk_frame *f, unsigned tag, bool *v,
                    struct husk_error *err);
int husk_frame_str(const struct husk_frame *f, unsigned tag, struct husk_str *v,
                   struct husk_error *err);
/* Copies the string and a NUL into buf; EMSGSIZE when cap is too small. */
int husk_frame_str_buf(const struct husk_frame *f, unsigned tag, char *buf,
                       size_t cap, struct husk_error *err);
/* Repeated tags: every value in order into out[0, max); returns the count,
 * or EMSGSIZE when there are more than max. */
int husk_frame_strv(const struct husk_frame *f, unsigned tag,
                    struct husk_str *out, size_t max, struct husk_error *err);
int husk_frame_u32v(const struct husk_frame *f, unsigned tag, uint32_t *out,
                    size_t max, struct husk_error *err);

#endif
