/*
 * lb_zip.c - the Letterboxd data export as downloaded: a zip archive with
 * watchlist.csv at its root (next to watched.csv, ratings.csv, lists/...).
 *
 * Contract:
 * - The archive is read from memory by libzip (no temp files), opened with
 *   consistency checks; an archive libzip cannot open is FP_BAD_FILE.
 * - watchlist.csv at the root is imported through the CSV backend; row errors
 *   and line numbers refer to that file. An archive re-zipped from the
 *   unpacked export folder (every entry under one top-level folder) is read
 *   the same way from FOLDER/watchlist.csv. An archive without it is
 *   FP_BAD_FILE "not a Letterboxd export: no watchlist.csv", even when it
 *   holds list exports (the message says how to import a list instead).
 * - Zip bombs: an entry that declares more than IMPORT_MAX_BYTES is refused
 *   before inflating it (FP_TOO_LARGE), and reading stops at
 *   IMPORT_MAX_BYTES + 1 bytes whatever the header says, so at most that much
 *   memory is ever spent on the entry.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <zip.h>

#include "core/buf.h"
#include "core/mem.h"
#include "import/import.h"
#include "import/import_internal.h"

#define LBZIP_ENTRY "watchlist.csv"
#define LBZIP_CHUNK 65536

static bool lbzip_has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* FOLDER/watchlist.csv, one level down, not macOS resource-fork junk. */
static bool lbzip_nested_entry(const char *name)
{
    const char *slash = strchr(name, '/');
    return slash && slash != name && strcmp(slash + 1, LBZIP_ENTRY) == 0 &&
           strncmp(name, "__MACOSX/", 9) != 0;
}

/* Index of the watchlist entry, or -1; counts list exports for the message. */
static zip_int64_t lbzip_find(zip_t *za, size_t *nlists)
{
    zip_int64_t n = zip_get_num_entries(za, 0);
    zip_int64_t root = -1, nested = -1;
    size_t nnested = 0;
    *nlists = 0;
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(za, (zip_uint64_t)i, ZIP_FL_ENC_GUESS);
        if (name == NULL)
            continue;
        if (strcmp(name, LBZIP_ENTRY) == 0 && root < 0)
            root = i;
        else if (lbzip_nested_entry(name)) {
            nested = i;
            nnested++;
        }
        if ((strncmp(name, "lists/", 6) == 0 || strstr(name, "/lists/") != NULL) &&
            lbzip_has_suffix(name, ".csv"))
            (*nlists)++;
    }
    if (root >= 0)
        return root;
    return nnested == 1 ? nested : -1;
}

/* Inflates entry idx into *out, never holding more than the limit + 1. */
static fp_err lbzip_read(zip_t *za, zip_int64_t idx, fp_buf *out, import_result *r)
{
    fp_err rc = FP_OK;
    zip_file_t *zf = NULL;
    unsigned char *chunk = NULL;
    zip_stat_t st;

    zip_stat_init(&st);
    if (zip_stat_index(za, (zip_uint64_t)idx, 0, &st) != 0) {
        rc = import__refuse(r, FP_BAD_FILE, "the zip is damaged: %s", zip_strerror(za));
        goto out;
    }
    if ((st.valid & ZIP_STAT_SIZE) && st.size > IMPORT_MAX_BYTES) {
        rc = import__refuse(r, FP_TOO_LARGE,
                            LBZIP_ENTRY " in the zip unpacks to %llu bytes; the limit is %u MiB",
                            (unsigned long long)st.size, IMPORT_MAX_BYTES / (1024u * 1024u));
        goto out;
    }
    zf = zip_fopen_index(za, (zip_uint64_t)idx, 0);
    if (zf == NULL) {
        rc = import__refuse(r, FP_BAD_FILE, "cannot read " LBZIP_ENTRY " in the zip: %s",
                            zip_strerror(za));
        goto out;
    }
    chunk = fp_malloc(LBZIP_CHUNK);
    for (;;) {
        zip_int64_t got = zip_fread(zf, chunk, LBZIP_CHUNK);
        if (got < 0) {
            rc = import__refuse(r, FP_BAD_FILE, LBZIP_ENTRY " in the zip is damaged: %s",
                                zip_file_strerror(zf));
            goto out;
        }
        if (got == 0)
            break;
        if (fp_buf_append(out, chunk, (size_t)got) != FP_OK) {
            rc = import__refuse(r, FP_TOO_LARGE,
                                LBZIP_ENTRY " in the zip unpacks to more than %u MiB "
                                "(its header claims %llu bytes)",
                                IMPORT_MAX_BYTES / (1024u * 1024u),
                                (unsigned long long)st.size);
            goto out;
        }
    }
out:
    fp_free(chunk);
    if (zf) {
        int crc = zip_fclose(zf);
        (void)crc;
    }
    return rc;
}

static fp_err lbzip_parse(const unsigned char *data, size_t len, import_result *r)
{
    fp_err rc = FP_OK;
    zip_error_t zerr;
    zip_source_t *src = NULL;
    zip_t *za = NULL;
    fp_buf csv;

    fp_buf_init(&csv, IMPORT_MAX_BYTES);
    zip_error_init(&zerr);
    r->format = import_format_lb_zip.name;
    if (len > IMPORT_MAX_BYTES) {
        rc = import__refuse(r, FP_TOO_LARGE, "the file is %zu bytes; the limit is %u MiB", len,
                            IMPORT_MAX_BYTES / (1024u * 1024u));
        goto out;
    }
    src = zip_source_buffer_create(data, len, 0, &zerr);
    if (src == NULL) {
        rc = import__refuse(r, FP_BAD_FILE, "cannot read the zip: %s",
                            zip_error_strerror(&zerr));
        goto out;
    }
    za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
    if (za == NULL) {
        zip_source_free(src); /* still ours when the open failed */
        rc = import__refuse(r, FP_BAD_FILE, "not a readable zip archive: %s",
                            zip_error_strerror(&zerr));
        goto out;
    }

    size_t nlists = 0;
    zip_int64_t idx = lbzip_find(za, &nlists);
    if (idx < 0) {
        if (nlists > 0)
            rc = import__refuse(r, FP_BAD_FILE,
                                "not a Letterboxd export: no " LBZIP_ENTRY " (the zip holds %zu "
                                "list export%s; to use a list as a watchlist, upload its .csv "
                                "file on its own)",
                                nlists, nlists == 1 ? "" : "s");
        else
            rc = import__refuse(r, FP_BAD_FILE, "not a Letterboxd export: no " LBZIP_ENTRY
                                                " in the zip");
        goto out;
    }
    rc = lbzip_read(za, idx, &csv, r);
    if (rc != FP_OK)
        goto out;

    /* An empty entry has no buffer yet; the CSV backend reports it. */
    static const unsigned char empty[1];
    rc = import_format_lb_csv.parse(csv.data ? (const unsigned char *)csv.data : empty, csv.len, r);
    r->format = import_format_lb_zip.name;
    if (rc != FP_OK && r->message) {
        /* "the file is empty (...)" -> "watchlist.csv in the zip is empty (...)":
         * one subject, not "watchlist.csv in the zip: the file is ..." */
        const char *rest = strncmp(r->message, "the file ", 9) == 0 ? r->message + 9 : NULL;
        char *m = rest ? fp_printf(LBZIP_ENTRY " in the zip %s", rest)
                       : fp_printf(LBZIP_ENTRY " in the zip: %s", r->message);
        fp_free(r->message);
        r->message = m;
    }
out:
    if (za)
        zip_discard(za);
    zip_error_fini(&zerr);
    fp_buf_free(&csv);
    return rc;
}

/* Local and central headers carry the entry names in clear. */
static bool lbzip_mentions_entry(const unsigned char *data, size_t len)
{
    size_t k = strlen(LBZIP_ENTRY);
    const unsigned char *p = data, *end = data + len;
    while ((size_t)(end - p) >= k) {
        p = memchr(p, LBZIP_ENTRY[0], (size_t)(end - p) - k + 1);
        if (p == NULL)
            return false;
        if (memcmp(p, LBZIP_ENTRY, k) == 0)
            return true;
        p++;
    }
    return false;
}

static int lbzip_sniff(const unsigned char *data, size_t len, const char *filename)
{
    int score = 0;
    if (len >= 4 && memcmp(data, "PK\x03\x04", 4) == 0)
        score = 80;
    else if (len >= 4 && memcmp(data, "PK\x05\x06", 4) == 0)
        score = 60; /* an empty archive: still ours to refuse with a reason */
    if (score == 0)
        return 0;
    if (lbzip_mentions_entry(data, len))
        score += 15;
    if (filename && strlen(filename) >= 4 &&
        strcmp(filename + strlen(filename) - 4, ".zip") == 0)
        score += 5;
    return score > 100 ? 100 : score;
}

const import_format import_format_lb_zip = {
    .name = "letterboxd-zip",
    .sniff = lbzip_sniff,
    .parse = lbzip_parse,
};
