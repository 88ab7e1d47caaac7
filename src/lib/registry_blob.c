/* Blob downloads into the store, several at once with curl's multi
 * interface, on the pulling thread (no threads: the store handle is for
 * one thread).
 *
 * Each blob goes through a resumable store writer with its expected
 * digest and size, so the store checks both at commit, and what arrived
 * before a failure stays in partial/ for the next pull, which asks for
 * the rest with a Range request. A server that ignores the Range sends
 * the whole blob (200): the bytes already there are skipped. Redirects
 * (to blob storage) are followed here, one request per hop, and the
 * Authorization header only goes to the registry's own origin. */
#include "registry_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Progress is reported at most every this many bytes of a blob. */
#define PROGRESS_STEP (256u << 10)

struct fetch;

struct job {
	struct fetch *f;
	const struct reg_desc *d;
	struct husk_blob_writer *w;
	CURL *h; /* while a request is in flight */
	struct curl_slist *hdrs;
	struct reg_resp r; /* headers, and the body of an error */
	char *url;
	int hops;
	uint64_t start;    /* the writer's offset when the request began */
	uint64_t skip;     /* bytes of a 200 body that we already have */
	bool checked;      /* the response's status was looked at */
	bool resumed;      /* began from a partial download */
	bool waiting;      /* another process is downloading it */
	uint64_t reported; /* offset at the last progress report */
	int rc;            /* a failure inside the write callback */
	struct husk_error err;
};

struct fetch {
	struct reg_client *c;
	struct husk_store *s;
	CURLM *m;
	struct job *jobs;
	size_t n, next;
	unsigned running, parallel;
	unsigned waiting; /* jobs waiting for another process */
	int rc;           /* the first failure; it stops the fetch */
	struct husk_error *err;
};

/* Records the first failure (err_in holds its message). */
static void fail(struct fetch *f, int rc, const struct husk_error *err_in)
{
	if (f->rc)
		return;
	f->rc = rc;
	if (f->err && err_in != f->err)
		*f->err = *err_in;
}

static void report(struct job *j, bool finished)
{
	const struct husk_pull_opts *o = j->f->c->o;
	uint64_t done =
	    j->w ? husk_blob_writer_offset(j->w) : (uint64_t)j->d->size;
	j->reported = done;
	if (!o || !o->progress)
		return;
	struct husk_pull_progress p = {
	    .digest = j->d->digest,
	    .done = finished ? (uint64_t)j->d->size : done,
	    .total = (uint64_t)j->d->size,
	    .finished = finished,
	};
	o->progress(&p, o->progress_ctx);
}

/* Parses "bytes A-B/TOTAL" (TOTAL may be a star) and returns A, or -1. */
static int64_t range_start(const char *cr)
{
	unsigned long long a, b;
	if (sscanf(cr, "bytes %llu-%llu/", &a, &b) != 2 || b < a)
		return -1;
	return a > INT64_MAX ? -1 : (int64_t)a;
}

/* The first body bytes of a 2xx: is this the part we asked for? */
static int check_start(struct job *j)
{
	if (j->r.status == 200) {
		j->skip = j->start; /* the server ignored our Range */
		return 0;
	}
	if (j->r.status == 206 &&
	    range_start(j->r.content_range) == (int64_t)j->start)
		return 0;
	if (j->r.status == 206)
		return husk_err(&j->err, EPROTO,
		                "blob %s: asked for bytes from %" PRIu64
		                ", got range '%.60s'",
		                j->d->digest, j->start, j->r.content_range);
	return husk_err(&j->err, EPROTO, "blob %s: unexpected status %ld",
	                j->d->digest, j->r.status);
}

static size_t on_blob_data(char *p, size_t size, size_t nmemb, void *ctx)
{
	struct job *j = ctx;
	size_t n = size * nmemb;
	if (!reg_status_ok(j->r.status))
		return reg_resp_write(p, size, nmemb, &j->r);
	if (!j->checked) {
		j->rc = check_start(j);
		j->checked = true;
	}
	if (j->rc < 0)
		return 0;
	size_t drop = j->skip < n ? (size_t)j->skip : n;
	j->skip -= drop;
	if (n > drop) {
		j->rc =
		    husk_blob_writer_write(j->w, p + drop, n - drop, &j->err);
		if (j->rc < 0)
			return 0;
	}
	if (husk_blob_writer_offset(j->w) - j->reported >= PROGRESS_STEP)
		report(j, false);
	return n;
}

static void job_release_request(struct job *j)
{
	if (j->h) {
		curl_multi_remove_handle(j->f->m, j->h);
		curl_easy_cleanup(j->h);
		j->h = NULL;
		j->f->running--;
	}
	curl_slist_free_all(j->hdrs);
	j->hdrs = NULL;
}

static int job_headers(struct job *j, struct husk_error *err)
{
	struct reg_client *c = j->f->c;
	int rc =
	    reg_add_auth(&j->hdrs, c->o, j->url, c->auth_origin, c->authz, err);
	if (rc == 0 && j->start > 0) {
		char range[64];
		snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-",
		         j->start);
		struct curl_slist *l = curl_slist_append(j->hdrs, range);
		if (!l)
			return husk_err(err, ENOMEM, "out of memory");
		j->hdrs = l;
	}
	return rc;
}

/* Starts a request for the rest of the blob at j->url. */
static int job_request(struct job *j, struct husk_error *err)
{
	struct fetch *f = j->f;
	j->start = husk_blob_writer_offset(j->w);
	j->skip = 0;
	j->checked = false;
	j->rc = 0;
	reg_resp_free(&j->r);
	reg_resp_init(&j->r, 0, false);
	int rc = job_headers(j, err);
	if (rc < 0)
		return rc;
	j->h = curl_easy_init();
	if (!j->h)
		return husk_err(err, ENOMEM, "libcurl: out of memory");
	f->running++;
	rc = reg_easy_prepare(j->h, f->c, j->url, &j->r, j->hdrs, err);
	if (rc == 0 &&
	    (curl_easy_setopt(j->h, CURLOPT_WRITEFUNCTION, on_blob_data) ||
	     curl_easy_setopt(j->h, CURLOPT_WRITEDATA, j) ||
	     curl_easy_setopt(j->h, CURLOPT_PRIVATE, j)))
		rc = husk_err(err, EINVAL, "libcurl: cannot set options");
	if (rc == 0 && curl_multi_add_handle(f->m, j->h) != CURLM_OK)
		rc = husk_err(err, ENOMEM, "libcurl: cannot add a transfer");
	if (rc < 0) {
		curl_easy_cleanup(j->h);
		j->h = NULL;
		f->running--;
	}
	return rc;
}

static int job_commit(struct job *j, struct husk_error *err)
{
	struct husk_blob_writer *w = j->w;
	j->w = NULL;
	int rc = husk_blob_writer_commit(w, NULL, err);
	if (rc == 0)
		report(j, true);
	else
		rc = reg_err_prefix(err, rc, "download blob");
	return rc;
}

/* Commits. A body that ended early (no Content-Length to tell) leaves
 * a partial to resume, like a cut transfer. A blob that began from a
 * partial download and fails its digest had a damaged partial (the store
 * removed it): it is fetched once more from the start rather than
 * failing the pull. */
static int job_finish(struct job *j, struct husk_error *err)
{
	int rc = job_commit(j, err);
	uint64_t left = 0;
	if (rc != -EBADMSG ||
	    husk_store_blob_partial(j->f->s, j->d->digest, &left, NULL) < 0)
		return rc;
	if (left > 0) {
		char msg[sizeof(err->msg)];
		snprintf(msg, sizeof(msg), "%s", err ? err->msg : "");
		return husk_err(err, EIO, "%s (kept; pull again to resume)",
		                msg);
	}
	if (!j->resumed)
		return rc;
	j->resumed = false;
	rc = husk_store_blob_begin(j->f->s, j->d->digest, j->d->size,
	                           HUSK_BLOB_RESUMABLE, &j->w, err);
	if (rc == 0 && !j->url &&
	    asprintf(&j->url, "%s/v2/%s/blobs/%s", j->f->c->origin,
	             j->f->c->repo, j->d->digest) < 0) {
		j->url = NULL;
		rc = husk_err(err, ENOMEM, "out of memory");
	}
	return rc < 0 ? rc : job_request(j, err);
}

/* Starts a blob: held when the store has it, committed when a partial
 * download already has all of it, else requested. */
static int job_begin(struct job *j, struct husk_error *err)
{
	struct fetch *f = j->f;
	int rc = husk_store_blob_hold(f->s, j->d->digest, err);
	if (rc > 0) {
		report(j, true);
		return 0;
	}
	if (rc == 0)
		rc = husk_store_blob_begin(f->s, j->d->digest, j->d->size,
		                           HUSK_BLOB_RESUMABLE, &j->w, err);
	if (rc == -EBUSY) {
		/* Another pull is writing this blob: wait for it to finish
		 * (or give up, which frees its partial for us). */
		j->waiting = true;
		f->waiting++;
		return 0;
	}
	if (rc < 0)
		return rc;
	report(j, false);
	j->resumed = husk_blob_writer_offset(j->w) > 0;
	if (husk_blob_writer_offset(j->w) == (uint64_t)j->d->size)
		return job_finish(j, err);
	if (asprintf(&j->url, "%s/v2/%s/blobs/%s", f->c->origin, f->c->repo,
	             j->d->digest) < 0) {
		j->url = NULL;
		return husk_err(err, ENOMEM, "out of memory");
	}
	return job_request(j, err);
}

/* A 3xx: the next hop, without the registry's Authorization unless it
 * stays at the registry's origin (job_headers decides). */
static int job_redirect(struct job *j, const char *next, struct husk_error *err)
{
	if (!next)
		return husk_err(err, EPROTO,
		                "blob %s: redirect without a "
		                "Location",
		                j->d->digest);
	if (++j->hops > REG_MAX_REDIRECTS)
		return husk_err(err, EPROTO, "blob %s: more than %d redirects",
		                j->d->digest, REG_MAX_REDIRECTS);
	char *dup = strdup(next);
	if (!dup)
		return husk_err(err, ENOMEM, "out of memory");
	free(j->url);
	j->url = dup;
	return job_request(j, err);
}

static int transfer_error(struct job *j, CURLcode cr, struct husk_error *err)
{
	char what[160];
	uint64_t kept = husk_blob_writer_offset(j->w);
	snprintf(what, sizeof(what), "download blob %s", j->d->digest);
	int rc = reg_curl_error(cr, j->r.errbuf, what, err);
	if (kept && err) {
		size_t len = strlen(err->msg);
		snprintf(err->msg + len, sizeof(err->msg) - len,
		         " (%" PRIu64 " of %" PRId64
		         " bytes kept; pull again to resume)",
		         kept, j->d->size);
	}
	return rc;
}

/* A request ended: commit, follow, retry or fail. */
static int job_done(struct job *j, CURLcode cr, struct husk_error *err)
{
	long status = j->r.status;
	char *next = NULL;
	if (cr == CURLE_OK && status >= 300 && status < 400) {
		char *loc = NULL;
		curl_easy_getinfo(j->h, CURLINFO_REDIRECT_URL, &loc);
		if (loc && !(next = strdup(loc)))
			return husk_err(err, ENOMEM, "out of memory");
	}
	job_release_request(j);
	int rc;
	char what[160];
	snprintf(what, sizeof(what), "download blob %s", j->d->digest);
	if (j->rc < 0) {
		*err = j->err;
		rc = j->rc;
	} else if (cr != CURLE_OK) {
		rc = transfer_error(j, cr, err);
	} else if (status >= 300 && status < 400) {
		rc = job_redirect(j, next, err);
	} else if (status == 401 && (rc = reg_reauthenticate(j->f->c, err))) {
		rc = rc < 0 ? rc : job_request(j, err);
	} else if (!reg_status_ok(status)) {
		rc = reg_status_error(&j->r, what, NULL, err);
	} else {
		rc = job_finish(j, err);
	}
	free(next);
	return rc;
}

static void drain_messages(struct fetch *f)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(f->m, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct job *j = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &j);
		struct husk_error e = {0};
		int rc = job_done(j, msg->data.result, &e);
		if (rc < 0)
			fail(f, rc, &e);
	}
}

/* Tries the blobs another process was writing again. */
static void retry_waiting(struct fetch *f)
{
	for (size_t i = 0; i < f->next && f->waiting && f->rc == 0; i++) {
		struct job *j = &f->jobs[i];
		if (!j->waiting)
			continue;
		j->waiting = false;
		f->waiting--;
		struct husk_error e = {0};
		int rc = job_begin(j, &e);
		if (rc < 0)
			fail(f, rc, &e);
	}
}

static void run(struct fetch *f)
{
	while (f->rc == 0) {
		while (f->rc == 0 && f->running < f->parallel &&
		       f->next < f->n) {
			struct husk_error e = {0};
			int rc = job_begin(&f->jobs[f->next++], &e);
			if (rc < 0)
				fail(f, rc, &e);
		}
		if (f->rc || (!f->running && !f->waiting && f->next >= f->n))
			break;
		int still;
		CURLMcode mc = curl_multi_perform(f->m, &still);
		if (mc == CURLM_OK)
			drain_messages(f);
		/* Waiting blobs are looked at again every 100 ms. */
		if (mc == CURLM_OK && f->rc == 0 && (f->running || f->waiting))
			mc = curl_multi_poll(f->m, NULL, 0,
			                     f->waiting ? 100 : 1000, NULL);
		if (mc == CURLM_OK && f->waiting)
			retry_waiting(f);
		if (mc != CURLM_OK) {
			struct husk_error e = {0};
			fail(f,
			     husk_err(&e, EIO, "libcurl: %s",
			              curl_multi_strerror(mc)),
			     &e);
		}
	}
}

/* The jobs, one per distinct digest. */
static int plan(struct fetch *f, const struct reg_desc *blobs, size_t n,
                struct husk_error *err)
{
	f->jobs = calloc(n ? n : 1, sizeof(f->jobs[0]));
	if (!f->jobs)
		return husk_err(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		bool dup = false;
		for (size_t k = 0; k < f->n && !dup; k++)
			dup =
			    strcmp(f->jobs[k].d->digest, blobs[i].digest) == 0;
		if (dup)
			continue;
		struct job *j = &f->jobs[f->n++];
		j->f = f;
		j->d = &blobs[i];
		reg_resp_init(&j->r, 0, false);
	}
	return 0;
}

static void cleanup(struct fetch *f)
{
	for (size_t i = 0; i < f->n; i++) {
		struct job *j = &f->jobs[i];
		job_release_request(j);
		/* Keeps a partial download for the next pull. */
		husk_blob_writer_abort(j->w);
		reg_resp_free(&j->r);
		free(j->url);
	}
	free(f->jobs);
	if (f->m)
		curl_multi_cleanup(f->m);
}

int reg_fetch_blobs(struct reg_client *c, struct husk_store *s,
                    const struct reg_desc *blobs, size_t n, unsigned parallel,
                    struct husk_error *err)
{
	struct fetch f = {
	    .c = c,
	    .s = s,
	    .parallel = parallel ? parallel : 1,
	    .err = err,
	};
	int rc = plan(&f, blobs, n, err);
	if (rc == 0 && !(f.m = curl_multi_init()))
		rc = husk_err(err, ENOMEM, "libcurl: out of memory");
	if (rc == 0) {
		run(&f);
		rc = f.rc;
	}
	cleanup(&f);
	return rc;
}
