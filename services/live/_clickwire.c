/*
 * The fast path of click ingestion: an `IngestRequest`'s wire bytes straight to clicks-table
 * rows, without building a Python object per event and field.
 *
 * It does what `services.live.enrich.accept_clicks` does, for the events that path accepts
 * without question: a strict ISO-8601 time (or none), a two-letter country, text that JSON
 * writes without escapes, fields within their length limits, known links. On anything else
 * (an error to report, a looser time form, text needing escapes, a wire form it does not
 * read) it returns None and the caller runs `accept_clicks`, which accepts the looser forms
 * and names what is wrong. So every rule and every error message lives in Python; this module
 * only has to agree with it, which tests/services/live/test_clickwire.py checks event by event.
 *
 *   scan(data) -> (link ids: set[int], events: int, events without an id: int) | None
 *   accept(data, workspace_id, destinations, new_ids, received, latest, continents,
 *          client_info, referrer_host, visitor_key, country_of_ip)
 *       -> (rows, event_ids, claimed, stats, cache_fields) | None
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_FIELD 2048
#define MAX_ID ((((int64_t)1) << 53) - 1)
#define OLDEST_SECONDS 946684800LL /* 2000-01-01T00:00:00Z */

/* ---- protobuf wire ---------------------------------------------------------------- */

enum {
    F_LINK_ID = 1, F_TIMESTAMP, F_COUNTRY, F_REGION, F_CITY, F_CONTINENT, F_DEVICE,
    F_BROWSER, F_OS, F_REFERRER, F_REFERRER_URL, F_TRIGGER, F_VISITOR_ID, F_RULE_ID,
    F_CONDITION_ID, F_USER_AGENT, F_IP, F_EVENT_ID, F_COUNT
};

typedef struct {
    const char *p;
    Py_ssize_t n;
} text;

typedef struct {
    int64_t ints[F_COUNT];
    text texts[F_COUNT];
} click;

static const char *varint(const char *p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70 && p < end; shift += 7) {
        uint8_t b = (uint8_t)*p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return p;
        }
    }
    return NULL;
}

/* Skips a field of an unknown number; NULL on a wire type this reader does not take. */
static const char *skip(const char *p, const char *end, int wire)
{
    uint64_t n;
    switch (wire) {
    case 0:
        return varint(p, end, &n);
    case 1:
        return end - p >= 8 ? p + 8 : NULL;
    case 2:
        p = varint(p, end, &n);
        return p && n <= (uint64_t)(end - p) ? p + n : NULL;
    case 5:
        return end - p >= 4 ? p + 4 : NULL;
    default:
        return NULL;
    }
}

static int is_int_field(int field)
{
    return field == F_LINK_ID || field == F_RULE_ID || field == F_CONDITION_ID ||
           field == F_EVENT_ID;
}

/* Well-formed UTF-8 (what protobuf requires of a string field), no surrogates. */
static int utf8_ok(const unsigned char *s, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int more;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            more = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            more = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            more = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= more)
            return 0;
        for (int k = 1; k <= more; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((more == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (more == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += more + 1;
    }
    return 1;
}

/* One ClickEvent; 0 when read, -1 when the caller should leave it to protobuf. */
static int read_click(const char *p, const char *end, click *c)
{
    memset(c, 0, sizeof(*c));
    while (p < end) {
        uint64_t tag, v;
        p = varint(p, end, &tag);
        if (!p)
            return -1;
        int field = (int)(tag >> 3), wire = (int)(tag & 7);
        if (tag >> 3 == 0)
            return -1;
        if (field < F_COUNT && is_int_field(field)) {
            if (wire != 0 || !(p = varint(p, end, &v)))
                return -1;
            c->ints[field] = (int64_t)v;
        } else if (field < F_COUNT) {
            if (wire != 2 || !(p = varint(p, end, &v)) || v > (uint64_t)(end - p))
                return -1;
            if (!utf8_ok((const unsigned char *)p, (Py_ssize_t)v))
                return -1;
            c->texts[field].p = p;
            c->texts[field].n = (Py_ssize_t)v;
            p += v;
        } else if (!(p = skip(p, end, wire))) {
            return -1;
        }
    }
    return 0;
}

/* The next event's bytes of an IngestRequest: 1 found, 0 at the end, -1 unreadable. */
static int next_event(const char **at, const char *end, const char **start, const char **stop)
{
    const char *p = *at;
    while (p < end) {
        uint64_t tag, n;
        if (!(p = varint(p, end, &tag)) || tag >> 3 == 0)
            return -1;
        if (tag == ((1 << 3) | 2)) {
            if (!(p = varint(p, end, &n)) || n > (uint64_t)(end - p))
                return -1;
            *start = p;
            *stop = p + n;
            *at = p + n;
            return 1;
        }
        if (!(p = skip(p, end, (int)(tag & 7))))
            return -1;
    }
    *at = p;
    return 0;
}

/* ---- SHA-256 (FIPS 180-4) and HMAC, for the visitor id of a click that names none ----- */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *b)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
               (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) +
                      K256[i] + w[i];
        uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = bb;
        bb = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += bb;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

/* SHA-256 of a message fed in pieces; `total` counts every byte, those of a state resumed from
 * (the HMAC's padded key block) included. */
typedef struct {
    uint32_t h[8];
    unsigned char block[64];
    size_t used;
    uint64_t total;
} sha256_ctx;

static const uint32_t SHA256_INIT[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

static void sha256_resume(sha256_ctx *c, const uint32_t h[8], uint64_t total)
{
    memcpy(c->h, h, sizeof c->h);
    c->used = 0;
    c->total = total;
}

static void sha256_update(sha256_ctx *c, const unsigned char *s, size_t n)
{
    c->total += n;
    while (n) {
        size_t take = 64 - c->used < n ? 64 - c->used : n;
        memcpy(c->block + c->used, s, take);
        c->used += take;
        s += take;
        n -= take;
        if (c->used == 64) {
            sha256_block(c->h, c->block);
            c->used = 0;
        }
    }
}

static void sha256_final(sha256_ctx *c, unsigned char out[32])
{
    uint64_t bits = c->total * 8;
    c->block[c->used++] = 0x80;
    if (c->used > 56) {
        memset(c->block + c->used, 0, 64 - c->used);
        sha256_block(c->h, c->block);
        c->used = 0;
    }
    memset(c->block + c->used, 0, 56 - c->used);
    for (int i = 0; i < 8; i++)
        c->block[63 - i] = (unsigned char)(bits >> (8 * i));
    sha256_block(c->h, c->block);
    for (int i = 0; i < 32; i++)
        out[i] = (unsigned char)(c->h[i / 4] >> (24 - 8 * (i % 4)));
}

/* HMAC-SHA256 (RFC 2104) under one key: the states after its inner and outer padded key
 * blocks, computed once per key and resumed for every message. */
typedef struct {
    PyObject *key; /* the bytes these states are of; NULL before the first key */
    uint32_t inner[8], outer[8];
} hmac_key;

static hmac_key visitor_key;

static void hmac_pad_state(const unsigned char key[64], unsigned char pad, uint32_t out[8])
{
    unsigned char block[64];
    for (int i = 0; i < 64; i++)
        block[i] = key[i] ^ pad;
    memcpy(out, SHA256_INIT, sizeof SHA256_INIT);
    sha256_block(out, block);
}

/* Makes `k` the states of key (bytes), unless they already are. */
static void hmac_set_key(hmac_key *k, PyObject *key)
{
    const char *p = PyBytes_AS_STRING(key);
    Py_ssize_t n = PyBytes_GET_SIZE(key);
    if (k->key && (k->key == key || (PyBytes_GET_SIZE(k->key) == n &&
                                      memcmp(PyBytes_AS_STRING(k->key), p, (size_t)n) == 0)))
        return;
    unsigned char block[64] = {0};
    if (n > 64) {
        sha256_ctx c;
        sha256_resume(&c, SHA256_INIT, 0);
        sha256_update(&c, (const unsigned char *)p, (size_t)n);
        sha256_final(&c, block);
    } else {
        memcpy(block, p, (size_t)n);
    }
    hmac_pad_state(block, 0x36, k->inner);
    hmac_pad_state(block, 0x5c, k->outer);
    Py_XSETREF(k->key, Py_NewRef(key));
}

/* The first 32 hex digits of HMAC-SHA256(key, `ip|user_agent`) (what VisitorIds.of computes). */
static void visitor_hash(const hmac_key *k, text ip, text ua, char out[32])
{
    sha256_ctx c;
    unsigned char digest[32];
    sha256_resume(&c, k->inner, 64);
    sha256_update(&c, (const unsigned char *)ip.p, (size_t)ip.n);
    sha256_update(&c, (const unsigned char *)"|", 1);
    sha256_update(&c, (const unsigned char *)ua.p, (size_t)ua.n);
    sha256_final(&c, digest);
    sha256_resume(&c, k->outer, 64);
    sha256_update(&c, digest, 32);
    sha256_final(&c, digest);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
}

/* ---- time ----------------------------------------------------------------------------- */

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* `YYYY-MM-DD[T ]HH:MM:SS[.f…][Z|±HH:MM]` as epoch seconds and microseconds; 0 for any
 * other form (left to Python's fromisoformat, which also reports what is wrong). */
static int iso_time(text t, int64_t *seconds, int *micros)
{
    const char *s = t.p;
    Py_ssize_t n = t.n;
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0, us = 0;
    if (n < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':')
        return 0;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec))
        return 0;
    Py_ssize_t i = 19;
    if (i < n && s[i] == '.') {
        Py_ssize_t first = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (i - first < 6)
                us = us * 10 + (s[i] - '0');
            i++;
        }
        if (i == first || i - first > 9)
            return 0;
        for (Py_ssize_t k = i - first; k < 6; k++)
            us *= 10;
    }
    if (i < n && s[i] == 'Z') {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        if (n - i != 6 || s[i + 3] != ':' || !digits(s + i + 1, 2, &oh) ||
            !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return 0;
        sign = s[i] == '+' ? 1 : -1;
        i += 6;
    }
    if (i != n)
        return 0;
    static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > month_days[mo - 1] + (mo == 2 && leap))
        return 0;
    *seconds = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
               sign * (oh * 3600 + om * 60);
    *micros = us;
    return 1;
}

/* ---- rows ----------------------------------------------------------------------------- */

typedef struct {
    char *p;
    Py_ssize_t n, cap;
} buffer;

static int put(buffer *b, const char *s, Py_ssize_t n)
{
    if (b->n + n > b->cap) {
        Py_ssize_t cap = (b->n + n) * 2;
        char *p = PyMem_Realloc(b->p, (size_t)cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, (size_t)n);
    b->n += n;
    return 0;
}

/* Decimal digits of v, as orjson writes an int; returns their number (at most 20). */
static int decimal(int64_t v, char out[24])
{
    char tmp[24];
    int n = 0, len = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = tmp[--n];
    return len;
}

static int put_int(buffer *b, int64_t v, char sep)
{
    char tmp[24];
    int n = decimal(v, tmp);
    tmp[n++] = sep;
    return put(b, tmp, n);
}

/* 1 when JSON writes s as it is: no quote, backslash or control character. */
static int plain(text s)
{
    for (Py_ssize_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x20 || c == '"' || c == '\\')
            return 0;
    }
    return 1;
}

/* "s", with sep; 1 written, 0 when s needs escapes (left to Python), -1 out of memory. */
static int put_str(buffer *b, text s, char sep)
{
    if (!plain(s))
        return 0;
    char close[2] = {'"', sep};
    if (put(b, "\"", 1) || put(b, s.p, s.n) || put(b, close, 2))
        return -1;
    return 1;
}

static int text_of(PyObject *str, text *out)
{
    if (!str || !PyUnicode_Check(str))
        return 0;
    out->p = PyUnicode_AsUTF8AndSize(str, &out->n);
    if (!out->p) {
        PyErr_Clear(); /* surrogates: not UTF-8, left to Python */
        return 0;
    }
    return 1;
}

static int equals(text t, const char *s)
{
    return t.n == (Py_ssize_t)strlen(s) && memcmp(t.p, s, (size_t)t.n) == 0;
}

/* What a Python lookup (client_info of a user agent, referrer_host of a URL) answered for
 * some text, kept in a direct-mapped table: the answer's texts and flag are read once. */
#define SLOTS 4096
#define ANSWER_TEXTS 3

typedef struct {
    uint64_t hash;
    PyObject *key;    /* bytes of the text looked up */
    PyObject *answer; /* keeps the strings `texts` point into alive */
    text texts[ANSWER_TEXTS];
    int flag;
} slot;

typedef struct {
    slot slots[SLOTS];
} memo;

static memo agents_memo, referrers_memo;

static uint64_t fnv1a(text t)
{
    uint64_t h = 1469598103934665603ULL;
    for (Py_ssize_t i = 0; i < t.n; i++)
        h = (h ^ (unsigned char)t.p[i]) * 1099511628211ULL;
    return h;
}

/* The slot answering t: fn(str(t)) is called on a miss, its answer read by `fill`. NULL with
 * an exception set on error; a slot whose answer is unusable has answer == NULL. */
static slot *lookup(memo *m, PyObject *fn, text t, int (*fill)(slot *, PyObject *))
{
    uint64_t h = fnv1a(t);
    slot *s = &m->slots[h % SLOTS];
    if (s->key && s->hash == h && PyBytes_GET_SIZE(s->key) == t.n &&
        memcmp(PyBytes_AS_STRING(s->key), t.p, (size_t)t.n) == 0)
        return s;
    PyObject *answer = PyObject_CallFunction(fn, "s#", t.p, t.n);
    if (!answer)
        return NULL;
    PyObject *key = PyBytes_FromStringAndSize(t.p, t.n);
    if (!key) {
        Py_DECREF(answer);
        return NULL;
    }
    Py_CLEAR(s->key);
    Py_CLEAR(s->answer);
    s->hash = h;
    s->key = key;
    s->answer = answer;
    int ok = fill(s, answer);
    if (ok < 0)
        return NULL;
    if (!ok)
        Py_CLEAR(s->answer); /* not usable here: the request goes to Python */
    return s;
}

/* A ClientInfo (device, browser, os, is_bot): 1 read, 0 unusable, -1 error. */
static int fill_agent(slot *s, PyObject *info)
{
    if (!PyTuple_Check(info) || PyTuple_GET_SIZE(info) != 4)
        return 0;
    for (int k = 0; k < ANSWER_TEXTS; k++)
        if (!text_of(PyTuple_GET_ITEM(info, k), &s->texts[k]))
            return 0;
    s->flag = PyObject_IsTrue(PyTuple_GET_ITEM(info, 3));
    return s->flag < 0 ? -1 : 1;
}

/* A referrer host (str). */
static int fill_host(slot *s, PyObject *host)
{
    return text_of(host, &s->texts[0]);
}

/* ("click", seconds, link id, visitor): what the live stats count of the event. */
static PyObject *stat_event(PyObject *kind, int64_t seconds, int64_t link_id, text visitor)
{
    PyObject *event = PyTuple_New(4);
    if (!event)
        return NULL;
    PyObject *items[3] = {PyLong_FromLongLong(seconds), PyLong_FromLongLong(link_id),
                          PyUnicode_DecodeUTF8(visitor.p, visitor.n, NULL)};
    PyTuple_SET_ITEM(event, 0, Py_NewRef(kind));
    for (int k = 0; k < 3; k++) {
        if (!items[k]) {
            for (int j = k; j < 3; j++)
                Py_XDECREF(items[j]);
            Py_DECREF(event);
            return NULL;
        }
        PyTuple_SET_ITEM(event, k + 1, items[k]);
    }
    return event;
}

/* ---- module functions ----------------------------------------------------------------- */

static PyObject *scan(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const char *at = view.buf, *end = at + view.len, *start, *stop;
    Py_ssize_t events = 0, fresh = 0;
    PyObject *links = PySet_New(NULL), *result = NULL;
    click c;
    int found;
    if (!links)
        goto done;
    while ((found = next_event(&at, end, &start, &stop)) == 1) {
        if (read_click(start, stop, &c) < 0)
            break;
        PyObject *link = PyLong_FromLongLong(c.ints[F_LINK_ID]);
        if (!link || PySet_Add(links, link) < 0) {
            Py_XDECREF(link);
            goto done;
        }
        Py_DECREF(link);
        events++;
        fresh += c.ints[F_EVENT_ID] == 0;
    }
    if (found != 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = Py_BuildValue("(Onn)", links, events, fresh);
done:
    Py_XDECREF(links);
    PyBuffer_Release(&view);
    return result;
}

typedef struct {
    long long workspace_id, received;
    double latest;
    PyObject *destinations, *new_ids, *continents, *client_info, *referrer_host, *kind;
    PyObject *country_of_ip;
    Py_ssize_t next_id;
} context;

/* Out lists, in the order accept returns them. */
enum { O_ROWS, O_IDS, O_CLAIMED, O_STATS, O_FIELDS, O_COUNT };

/* Appends one click's outputs; 1 done, 0 leave the batch to Python, -1 error set. */
static int accept_one(context *cx, click *c, buffer *row, PyObject **out)
{
    text *t = c->texts;
    int64_t link_id = c->ints[F_LINK_ID], event_id = c->ints[F_EVENT_ID];

    PyObject *link = PyLong_FromLongLong(link_id);
    if (!link)
        return -1;
    PyObject *destination = PyDict_GetItemWithError(cx->destinations, link); /* borrowed */
    Py_DECREF(link);
    text dest;
    if (!destination)
        return PyErr_Occurred() ? -1 : 0;
    if (!text_of(destination, &dest))
        return 0;

    int claimed = event_id != 0;
    if (claimed && !(event_id > 0 && event_id <= MAX_ID))
        return 0;
    if (!claimed) {
        if (cx->next_id >= PyList_GET_SIZE(cx->new_ids))
            return 0;
        event_id = PyLong_AsLongLong(PyList_GET_ITEM(cx->new_ids, cx->next_id++));
        if (event_id == -1 && PyErr_Occurred())
            return -1;
    }

    char country[2];
    text country_t = {country, 0};
    if (t[F_COUNTRY].n) {
        const char *s = t[F_COUNTRY].p;
        if (t[F_COUNTRY].n != 2 || !Py_ISALPHA(s[0]) || !Py_ISALPHA(s[1]))
            return 0;
        country[0] = (char)Py_TOUPPER(s[0]);
        country[1] = (char)Py_TOUPPER(s[1]);
        country_t.n = 2;
    }

    int64_t seconds = cx->received;
    if (t[F_TIMESTAMP].n) {
        int micros;
        if (!iso_time(t[F_TIMESTAMP], &seconds, &micros))
            return 0;
        (void)micros; /* a second short of either limit is left to Python's float check */
        if (seconds < OLDEST_SECONDS || (double)(seconds + 1) > cx->latest)
            return 0;
    }

    for (int f = 1; f < F_COUNT; f++)
        if (t[f].n > MAX_FIELD)
            return 0;

    if (!country_t.n && t[F_IP].n) {
        /* Python's lookup of the address: one call, no table (addresses rarely repeat) */
        PyObject *code = PyObject_CallFunction(cx->country_of_ip, "s#", t[F_IP].p, t[F_IP].n);
        if (!code)
            return -1;
        text found;
        int usable = text_of(code, &found) && (found.n == 0 || found.n == 2);
        if (usable) {
            memcpy(country, found.p, (size_t)found.n);
            country_t.n = found.n;
        }
        Py_DECREF(code);
        if (!usable)
            return 0;
    }

    text device = t[F_DEVICE], browser = t[F_BROWSER], os = t[F_OS];
    int is_bot = equals(device, "bot");
    if (t[F_USER_AGENT].n) {
        slot *agent = lookup(&agents_memo, cx->client_info, t[F_USER_AGENT], fill_agent);
        if (!agent)
            return -1;
        if (!agent->answer)
            return 0;
        is_bot = is_bot || agent->flag;
        if (!device.n)
            device = agent->texts[0];
        if (!browser.n)
            browser = agent->texts[1];
        if (!os.n)
            os = agent->texts[2];
    }

    text referrer = t[F_REFERRER];
    if (!referrer.n && t[F_REFERRER_URL].n) {
        slot *host = lookup(&referrers_memo, cx->referrer_host, t[F_REFERRER_URL], fill_host);
        if (!host)
            return -1;
        if (!host->answer)
            return 0;
        referrer = host->texts[0];
    }
    if (!referrer.n)
        referrer = (text){"(direct)", 8};

    char continent_up[8];
    text continent = t[F_CONTINENT];
    if (continent.n) {
        if (continent.n > (Py_ssize_t)sizeof continent_up)
            return 0;
        for (Py_ssize_t i = 0; i < continent.n; i++) {
            unsigned char ch = (unsigned char)continent.p[i];
            if (ch >= 0x80)
                return 0; /* non-ASCII upper-casing: Python's rules */
            continent_up[i] = (char)Py_TOUPPER(ch);
        }
        continent.p = continent_up;
    } else if (country_t.n) {
        PyObject *code = PyUnicode_FromStringAndSize(country, 2);
        if (!code) {
            return -1;
        }
        PyObject *name = PyDict_GetItemWithError(cx->continents, code); /* borrowed */
        Py_DECREF(code);
        if (!name && PyErr_Occurred()) {
            return -1;
        }
        if (name && !text_of(name, &continent))
            return 0;
    }

    text trigger = t[F_TRIGGER].n ? t[F_TRIGGER] : (text){"link", 4};
    char visitor_buf[40];
    text visitor = t[F_VISITOR_ID];
    if (!visitor.n) {
        if (t[F_IP].n || t[F_USER_AGENT].n) {
            visitor_hash(&visitor_key, t[F_IP], t[F_USER_AGENT], visitor_buf);
            visitor = (text){visitor_buf, 32};
        } else {
            memcpy(visitor_buf, "anon:", 5);
            visitor.n = 5 + decimal(event_id, visitor_buf + 5);
            visitor.p = visitor_buf;
        }
    }

    row->n = 0;
    int w = put(row, "[", 1) || put_int(row, event_id, ',') ||
            put_int(row, cx->workspace_id, ',') || put_int(row, link_id, ',') ||
            put_int(row, seconds, ',');
    if (w) {
        return -1;
    }
    const text strings[] = {country_t, t[F_REGION], t[F_CITY], continent, device,
                            browser,   os,          referrer,  t[F_REFERRER_URL], trigger,
                            visitor};
    for (size_t k = 0; k < sizeof strings / sizeof strings[0]; k++) {
        int r = put_str(row, strings[k], ',');
        if (r <= 0) {
            return r;
        }
    }
    int r = put_int(row, c->ints[F_RULE_ID], ',') || put_int(row, c->ints[F_CONDITION_ID], ',')
                ? -1
                : put_str(row, dest, ',');
    if (r <= 0) {
        return r;
    }
    row->n--; /* the separator after the last string */
    if (put(row, is_bot ? ",1]" : ",0]", 3)) {
        return -1;
    }
    if (row->n > MAX_FIELD)
        return 0; /* Python names the field that is too long */

    PyObject *values[O_COUNT];
    values[O_ROWS] = PyBytes_FromStringAndSize(row->p, row->n);
    values[O_IDS] = PyLong_FromLongLong(event_id);
    values[O_CLAIMED] = Py_NewRef(claimed ? Py_True : Py_False);
    values[O_STATS] = stat_event(cx->kind, seconds, link_id, visitor);
    char id_digits[24];
    values[O_FIELDS] = PyUnicode_FromStringAndSize(id_digits, decimal(event_id, id_digits));
    int status = 1;
    for (int k = 0; k < O_COUNT; k++) {
        if (status == 1 && (!values[k] || PyList_Append(out[k], values[k]) < 0))
            status = -1;
        Py_XDECREF(values[k]);
    }
    return status;
}

static PyObject *accept(PyObject *self, PyObject *args)
{
    Py_buffer view;
    context cx = {0};
    PyObject *key;
    if (!PyArg_ParseTuple(args, "y*LO!O!LdO!OOO!O:accept", &view, &cx.workspace_id,
                          &PyDict_Type, &cx.destinations, &PyList_Type, &cx.new_ids,
                          &cx.received, &cx.latest, &PyDict_Type, &cx.continents,
                          &cx.client_info, &cx.referrer_host, &PyBytes_Type, &key,
                          &cx.country_of_ip))
        return NULL;
    hmac_set_key(&visitor_key, key);
    PyObject *out[O_COUNT] = {NULL}, *result = NULL;
    buffer row = {NULL, 0, 0};
    const char *at = view.buf, *end = at + view.len, *start, *stop;
    click c;
    int found, status = 1;
    if (!(cx.kind = PyUnicode_InternFromString("click")))
        goto done;
    for (int k = 0; k < O_COUNT; k++)
        if (!(out[k] = PyList_New(0)))
            goto done;
    while ((found = next_event(&at, end, &start, &stop)) == 1) {
        if (read_click(start, stop, &c) < 0) {
            status = 0;
            break;
        }
        if ((status = accept_one(&cx, &c, &row, out)) != 1)
            break;
    }
    if (status < 0)
        goto done;
    if (status == 0 || found != 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = PyTuple_Pack(O_COUNT, out[0], out[1], out[2], out[3], out[4]);
done:
    for (int k = 0; k < O_COUNT; k++)
        Py_XDECREF(out[k]);
    Py_XDECREF(cx.kind);
    PyMem_Free(row.p);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_O,
     "scan(data) -> (link ids, events, events without an id) of IngestRequest bytes, or None"},
    {"accept", accept, METH_VARARGS,
     "accept(data, workspace_id, destinations, new_ids, received, latest, continents,"
     " client_info, referrer_host, visitor_key, country_of_ip) -> (rows, event_ids, claimed,"
     " stats, cache_fields), or None"
     " to leave the request to accept_clicks"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_clickwire",
                                    "IngestRequest bytes to clicks-table rows.", -1, methods};

PyMODINIT_FUNC PyInit__clickwire(void)
{
    return PyModule_Create(&module);
}
