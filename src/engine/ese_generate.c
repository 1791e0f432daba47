/*
 * ese_generate.c - realistic ESE database pages and v8 log segments for the
 * emulated DC (docs/ESE.md, "What the generator produces").
 *
 * Why realistic: backup throughput and archive size depend on how the data
 * compresses and on the checksum path, so the emulated ntds.dit must look
 * like one to zstd and to the verifier: UTF-16 names that repeat, binary
 * SIDs that share a domain prefix, random GUIDs and password blobs that do
 * not compress, timestamps that half compress, and free space.
 *
 * Every value comes from a counter-based generator keyed by (seed, pgno) for
 * what a page holds (its objects) and (seed, pgno, dbtime) for what changes
 * when an object is modified, so any page can be produced alone, in any
 * order, on any thread, and the same arguments always give the same bytes.
 */
#include <string.h>

#include "ntdsb_ese.h"

/* ---- deterministic randomness ------------------------------------------ */

typedef struct {
    uint64_t s;
} rng_t;

/* splitmix64's finaliser: a good 64-bit mixer, cheap enough per value. */
static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t rnd(rng_t *r)
{
    r->s += 0x9E3779B97F4A7C15ull;
    return mix64(r->s);
}

/* Uniform in [0, n) without division (multiply-shift). */
static inline uint32_t below(rng_t *r, uint32_t n)
{
    return (uint32_t)(((rnd(r) >> 32) * (uint64_t)n) >> 32);
}

static inline rng_t rng_of(uint64_t a, uint64_t b, uint64_t c)
{
    rng_t r = {mix64(a ^ mix64(b ^ mix64(c + 0x632BE59BD9B4E019ull)))};
    return r;
}

/* ---- little-endian writer ---------------------------------------------- */

typedef struct {
    uint8_t *p;
} wr_t;

static inline void put8(wr_t *w, uint32_t v) { *w->p++ = (uint8_t)v; }

static inline void put16(wr_t *w, uint32_t v)
{
    w->p[0] = (uint8_t)v;
    w->p[1] = (uint8_t)(v >> 8);
    w->p += 2;
}

static inline void put32(wr_t *w, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        w->p[i] = (uint8_t)(v >> (8 * i));
    w->p += 4;
}

static inline void put64(wr_t *w, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        w->p[i] = (uint8_t)(v >> (8 * i));
    w->p += 8;
}

static inline void put_be32(wr_t *w, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        w->p[i] = (uint8_t)(v >> (24 - 8 * i));
    w->p += 4;
}

static void put_rand(wr_t *w, rng_t *r, size_t n)
{
    while (n >= 8) {
        uint64_t v = rnd(r);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        v = __builtin_bswap64(v); /* same bytes on every host */
#endif
        memcpy(w->p, &v, 8);
        w->p += 8;
        n -= 8;
    }
    uint64_t v = rnd(r);
    for (size_t i = 0; i < n; i++)
        *w->p++ = (uint8_t)(v >> (8 * i));
}

/* ASCII to UTF-16LE, as AD stores every string attribute. */
static void put_u16s(wr_t *w, const char *s)
{
    for (; *s; s++) {
        w->p[0] = (uint8_t)*s;
        w->p[1] = 0;
        w->p += 2;
    }
}

static void put_u16_num(wr_t *w, uint32_t v, int digits)
{
    for (int i = digits - 1; i >= 0; i--) {
        w->p[2 * i] = (uint8_t)('0' + v % 10);
        w->p[2 * i + 1] = 0;
        v /= 10;
    }
    w->p += 2 * digits;
}

/* ---- vocabulary ---------------------------------------------------------- */

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *const k_first[] = {
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
    "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
    "Thomas", "Sarah", "Charles", "Karen", "Daniel", "Lisa", "Matthew", "Nancy",
    "Anthony", "Sandra", "Mark", "Ashley", "Steven", "Emily", "Paul", "Michelle",
    "Andrew", "Amanda", "Kevin", "Melissa", "Brian", "Stephanie", "George", "Rebecca",
    "Pieter", "Sanne", "Lars", "Ingrid", "Mateo", "Lucia", "Hiroshi", "Yuki"};
static const char *const k_last[] = {
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas",
    "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White",
    "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young",
    "deVries", "Jansen", "Bakker", "Visser", "Nilsson", "Berg", "Tanaka", "Suzuki"};
static const char *const k_dept[] = {
    "Sales", "Engineering", "Finance", "HR", "IT", "Marketing", "Support", "Legal",
    "Operations", "Research", "Facilities", "Procurement"};
static const char *const k_site[] = {
    "Amsterdam", "Berlin", "Chicago", "Dublin", "London", "Madrid", "NewYork", "Paris",
    "Seattle", "Singapore", "Sydney", "Tokyo"};
static const char *const k_title[] = {
    "Account Manager", "Software Engineer", "Senior Software Engineer", "Analyst",
    "Team Lead", "Director", "Consultant", "Administrator", "Technician", "Specialist",
    "Project Manager", "Architect"};
static const char *const k_desc[] = {
    "Standard user account", "Service account - do not disable", "Contractor, expires end of quarter",
    "Shared mailbox owner", "Migrated from legacy domain", "Temporary account for onboarding",
    "Helpdesk tier 1", "Privileged admin account (tier 0)"};
static const char *const k_os[] = {
    "Windows 11 Enterprise", "Windows 10 Enterprise", "Windows Server 2022 Standard",
    "Windows Server 2019 Datacenter"};
static const char *const k_group[] = {
    "Domain Users", "VPN Users", "File Share Readers", "File Share Editors", "Print Operators",
    "Remote Desktop Users", "App Owners", "Build Agents", "Finance Approvers", "All Staff"};

#define PICK(r, a) ((a)[below((r), (uint32_t)NELEM(a))])

/* ---- directory content --------------------------------------------------- */

/* Per-call constants: the domain and this DC's identity. */
typedef struct {
    uint32_t sid_sub[3];    /* domain SID S-1-5-21-a-b-c */
    uint8_t invocation[16]; /* this DC's invocationId (replication metadata) */
    uint64_t base_time;     /* FILETIME of "now" for this database */
} domain_t;

#define FT_2024 133485408000000000ull /* 2024-01-01 00:00 UTC as FILETIME */
#define FT_DAY 864000000000ull

static void domain_init(domain_t *d, uint64_t seed)
{
    rng_t r = rng_of(seed, 0x5EEDull, 0);
    for (int i = 0; i < 3; i++)
        d->sid_sub[i] = (uint32_t)rnd(&r) | 0x10000000u;
    wr_t w = {d->invocation};
    put_rand(&w, &r, 16);
    d->base_time = FT_2024 + (rnd(&r) % 365) * FT_DAY;
}

static void put_sid(wr_t *w, const domain_t *d, uint32_t rid)
{
    /* Binary SID: revision 1, 5 sub-authorities, authority 5 (big-endian 48-bit). */
    put8(w, 1);
    put8(w, 5);
    static const uint8_t auth[6] = {0, 0, 0, 0, 0, 5};
    memcpy(w->p, auth, 6);
    w->p += 6;
    put32(w, 21);
    for (int i = 0; i < 3; i++)
        put32(w, d->sid_sub[i]);
    put32(w, rid);
}

static void put_domain_dn(wr_t *w) { put_u16s(w, ",DC=corp,DC=example,DC=com"); }

static void put_person_dn(wr_t *w, rng_t *r)
{
    put_u16s(w, "CN=");
    put_u16s(w, PICK(r, k_first));
    put_u16s(w, " ");
    put_u16s(w, PICK(r, k_last));
    put_u16s(w, ",OU=");
    put_u16s(w, PICK(r, k_dept));
    put_u16s(w, ",OU=");
    put_u16s(w, PICK(r, k_site));
    put_domain_dn(w);
}

/* Replication metadata: many 48-byte entries sharing the invocationId and
 * nearby times - the typical half-compressible bulk of a directory record. */
static void put_repl_meta(wr_t *w, rng_t *rv, const domain_t *d, uint64_t when, uint64_t usn, uint32_t n)
{
    put32(w, 1);
    put32(w, 0);
    put32(w, n);
    put32(w, 0);
    uint32_t attid = 0;
    for (uint32_t i = 0; i < n; i++) {
        attid += 1 + below(rv, 40);
        put32(w, 0x00090000u + attid);
        put32(w, 1 + below(rv, 4));
        put64(w, when - below(rv, 1000) * 10000000ull);
        memcpy(w->p, d->invocation, 16);
        w->p += 16;
        put64(w, usn - below(rv, 5000));
        put64(w, usn - below(rv, 5000));
    }
}

/* Tagged columns: a (column id, offset) array then the values, as in the
 * ESE record format.  The builder collects values, then writes both. */
typedef struct {
    uint8_t *start;  /* where the tag array goes */
    wr_t data;       /* cursor in the value area */
    uint16_t ids[24];
    uint16_t offs[24];
    int n;
} tagged_t;

static void tagged_begin(tagged_t *t, uint8_t *at, int max_cols)
{
    t->start = at;
    t->data.p = at + 4 * max_cols;
    t->n = 0;
}

static wr_t *tagged_col(tagged_t *t, uint16_t colid)
{
    t->ids[t->n] = colid;
    t->offs[t->n] = (uint16_t)(t->data.p - t->start);
    t->n++;
    return &t->data;
}

/* Writes the tag array; the reserved-but-unused slots become zero. */
static uint8_t *tagged_end(tagged_t *t, int max_cols)
{
    wr_t w = {t->start};
    for (int i = 0; i < max_cols; i++) {
        put16(&w, i < t->n ? t->ids[i] : 0);
        put16(&w, i < t->n ? t->offs[i] : 0);
    }
    return t->data.p;
}

enum { OBJ_USER, OBJ_GROUP, OBJ_COMPUTER };

/*
 * One data-table node: key (0x7F + big-endian DNT), fixed columns, variable
 * columns (RDN, objectGUID, objectSid) and tagged columns.  rs drives what
 * the object is, rv what it currently holds.  Returns the end pointer.
 * Worst case is well under NODE_MAX bytes.
 */
#define NODE_MAX 3072

static uint8_t *build_object(uint8_t *out, rng_t *rs, rng_t *rv, const domain_t *d, uint32_t dnt,
                             uint64_t dbtime, uint32_t blob_max)
{
    wr_t w = {out};
    uint32_t kind_roll = below(rs, 100);
    int kind = kind_roll < 82 ? OBJ_USER : kind_roll < 92 ? OBJ_GROUP : OBJ_COMPUTER;
    const char *first = PICK(rs, k_first), *last = PICK(rs, k_last);
    const char *dept = PICK(rs, k_dept), *site = PICK(rs, k_site);
    uint32_t rid = 1100 + dnt;
    uint64_t created = d->base_time - (uint64_t)below(rs, 5 * 365) * FT_DAY - below(rs, 86400) * 10000000ull;
    uint64_t changed = created + (d->base_time - created) / (2 + below(rv, 6));
    uint64_t usn = 12000 + dbtime / 4 + below(rv, 1000);

    /* key */
    put16(&w, 5);
    put8(&w, 0x7F);
    put_be32(&w, dnt);

    /* record header: last fixed id, last variable id, offset of var area */
    uint8_t *rec = w.p;
    put8(&w, 13);
    put8(&w, 0x82);
    uint8_t *var_off_at = w.p;
    put16(&w, 0);
    /* fixed columns */
    put32(&w, dnt);                        /* DNT */
    put32(&w, 1000 + (dnt >> 7));          /* PDNT: parent OU */
    put32(&w, below(rv, 3));               /* child count */
    put32(&w, 2);                          /* NCDNT: the domain NC */
    put8(&w, 1);                           /* OBJ */
    put32(&w, 4);                          /* instanceType: writable */
    put64(&w, created);                    /* whenCreated */
    put64(&w, changed);                    /* whenChanged */
    put64(&w, usn - 5000 - below(rs, 9000)); /* uSNCreated */
    put64(&w, usn);                        /* uSNChanged */
    put32(&w, kind == OBJ_USER ? 0x00030000u : kind == OBJ_GROUP ? 0x00030008u : 0x00030017u);
    put32(&w, 3);                          /* RDN type: cn */
    put8(&w, 0);                           /* isDeleted */
    uint16_t var_off = (uint16_t)(w.p - rec);
    var_off_at[0] = (uint8_t)var_off;
    var_off_at[1] = (uint8_t)(var_off >> 8);

    /* variable columns: three end offsets, then RDN, objectGUID, objectSid */
    uint8_t *ends = w.p;
    w.p += 6;
    uint8_t *vstart = w.p;
    if (kind == OBJ_COMPUTER) {
        put_u16s(&w, "WS-");
        put_u16_num(&w, dnt % 100000, 5);
    } else if (kind == OBJ_GROUP) {
        put_u16s(&w, PICK(rs, k_group));
        put_u16s(&w, " ");
        put_u16s(&w, site);
    } else {
        put_u16s(&w, first);
        put_u16s(&w, " ");
        put_u16s(&w, last);
    }
    uint16_t e1 = (uint16_t)(w.p - vstart);
    put_rand(&w, rs, 16); /* objectGUID */
    uint16_t e2 = (uint16_t)(w.p - vstart);
    put_sid(&w, d, rid);
    uint16_t e3 = (uint16_t)(w.p - vstart);
    wr_t ew = {ends};
    put16(&ew, e1);
    put16(&ew, e2);
    put16(&ew, e3);

    /* tagged columns */
    tagged_t t;
    int max_cols = 14;
    tagged_begin(&t, w.p, max_cols);
    wr_t *c;
    if (kind == OBJ_USER) {
        c = tagged_col(&t, 0x0100); /* sAMAccountName */
        put_u16s(c, first);
        put_u16s(c, ".");
        put_u16s(c, last);
        put_u16_num(c, dnt % 1000, 3);
        c = tagged_col(&t, 0x0101); /* userPrincipalName */
        put_u16s(c, first);
        put_u16s(c, ".");
        put_u16s(c, last);
        put_u16_num(c, dnt % 1000, 3);
        put_u16s(c, "@corp.example.com");
        c = tagged_col(&t, 0x0102); /* title */
        put_u16s(c, PICK(rs, k_title));
        c = tagged_col(&t, 0x0103); /* department */
        put_u16s(c, dept);
        c = tagged_col(&t, 0x0104); /* manager */
        put_person_dn(c, rs);
        c = tagged_col(&t, 0x0105); /* userAccountControl, primaryGroupID */
        put32(c, below(rv, 10) ? 0x200 : 0x10200);
        put32(c, 513);
        c = tagged_col(&t, 0x0106); /* pwdLastSet, lastLogonTimestamp, accountExpires */
        put64(c, changed - below(rv, 90) * FT_DAY);
        put64(c, d->base_time - below(rv, 14 * 86400) * 10000000ull);
        put64(c, 0x7FFFFFFFFFFFFFFFull);
        c = tagged_col(&t, 0x0107); /* unicodePwd: encrypted, salted: noise */
        put32(c, 0x00000013);
        put_rand(c, rv, 32);
    } else if (kind == OBJ_GROUP) {
        c = tagged_col(&t, 0x0100);
        put_u16s(c, "grp-");
        put_u16s(c, dept);
        put_u16_num(c, dnt % 1000, 3);
        c = tagged_col(&t, 0x0110); /* member: a list of DNs */
        uint32_t nmem = 2 + below(rs, 6);
        for (uint32_t i = 0; i < nmem; i++) {
            put_person_dn(c, rs);
            put16(c, 0);
        }
        c = tagged_col(&t, 0x0111); /* groupType */
        put32(c, 0x80000002u);
    } else {
        c = tagged_col(&t, 0x0100);
        put_u16s(c, "WS-");
        put_u16_num(c, dnt % 100000, 5);
        put_u16s(c, "$");
        c = tagged_col(&t, 0x0120); /* dNSHostName */
        put_u16s(c, "ws-");
        put_u16_num(c, dnt % 100000, 5);
        put_u16s(c, ".corp.example.com");
        c = tagged_col(&t, 0x0121); /* servicePrincipalName */
        put_u16s(c, "HOST/ws-");
        put_u16_num(c, dnt % 100000, 5);
        put_u16s(c, ".corp.example.com");
        c = tagged_col(&t, 0x0122); /* operatingSystem */
        put_u16s(c, PICK(rs, k_os));
        c = tagged_col(&t, 0x0107); /* machine password: noise */
        put_rand(c, rv, 36);
    }
    c = tagged_col(&t, 0x0130); /* description */
    put_u16s(c, PICK(rs, k_desc));
    c = tagged_col(&t, 0x0131); /* distinguishedName-style path: CN=<RDN>,OU=.. */
    put_u16s(c, "CN=");
    memcpy(c->p, vstart, e1);
    c->p += e1;
    put_u16s(c, ",OU=");
    put_u16s(c, dept);
    put_u16s(c, ",OU=");
    put_u16s(c, site);
    put_domain_dn(c);
    c = tagged_col(&t, 0x0132); /* replPropertyMetaData */
    put_repl_meta(c, rv, d, changed, usn, 4 + below(rs, 12));
    if (blob_max) {
        /* supplementalCredentials-like encrypted blob: the main source of
         * incompressible bytes, and the knob that sets the ratio. */
        c = tagged_col(&t, 0x0133);
        put_rand(c, rv, 16 + below(rv, blob_max));
    }
    return tagged_end(&t, max_cols);
}

/* An index entry: a sort-key-like normalised name (2 bytes per letter, as
 * Windows sort keys are) followed by the primary key it points to. */
static uint8_t *build_index_entry(uint8_t *out, rng_t *rs, uint32_t dnt)
{
    wr_t w = {out};
    uint8_t *len_at = w.p;
    w.p += 2;
    put8(&w, 0x7F);
    const char *names[2] = {PICK(rs, k_last), PICK(rs, k_first)};
    for (int k = 0; k < 2; k++) {
        for (const char *s = names[k]; *s; s++) {
            char ch = *s >= 'a' && *s <= 'z' ? (char)(*s - 32) : *s;
            put8(&w, 0x0E);
            put8(&w, (uint8_t)(0x02 + 2 * (ch - 'A')));
        }
        put8(&w, 0x01);
    }
    uint16_t klen = (uint16_t)(w.p - len_at - 2);
    len_at[0] = (uint8_t)klen;
    len_at[1] = (uint8_t)(klen >> 8);
    put8(&w, 0x7F); /* the data: primary key of the object */
    put_be32(&w, dnt);
    return w.p;
}

/* ---- pages --------------------------------------------------------------- */

#define REGION_SHIFT 9 /* pages 512 at a time belong to one tree */

static void generate_page(uint8_t *page, size_t cb_page, uint32_t pgno, uint64_t seed, uint64_t dbtime,
                          const domain_t *d)
{
    size_t hdr = cb_page > 8192 ? 80 : 40;
    uint32_t region = pgno >> REGION_SHIFT;
    rng_t rr = rng_of(seed, 0xA11CEull, region);
    rng_t rs = rng_of(seed, pgno, 0x57AB1Eull);
    rng_t rv = rng_of(seed ^ 0x7E57ull, pgno, dbtime);
    int is_index = below(&rr, 5) == 0; /* about a fifth of the trees are indexes */
    uint32_t objid = is_index ? 100 + region : 8; /* 8: the data table's tree */

    memset(page, 0, cb_page);
    uint8_t *data = page + hdr;
    size_t cap = cb_page - hdr;
    /* Leaf pages after splits sit between half and nearly full. */
    size_t target = cap * (55 + below(&rs, 43)) / 100;
    uint8_t scratch[NODE_MAX];
    size_t used = 0;
    uint32_t ntag = 1; /* tag 0: the page's external header, empty here */
    uint32_t dnt_base = 3000 + pgno * 64;
    /* the blob size bound sets the share of noise: tuned for zstd -1 ~4x */
    uint32_t blob_max = 320;

    for (uint32_t i = 0;; i++) {
        uint8_t *end = is_index ? build_index_entry(scratch, &rs, dnt_base + i)
                                : build_object(scratch, &rs, &rv, d, dnt_base + i, dbtime, blob_max);
        size_t n = (size_t)(end - scratch);
        if (used + n + 4 * (ntag + 1) > target)
            break;
        memcpy(data + used, scratch, n);
        /* tag: u16 cb, u16 ib (offset from the end of the page header) */
        uint8_t *tag = page + cb_page - 4 * (ntag + 1);
        tag[0] = (uint8_t)n;
        tag[1] = (uint8_t)(n >> 8);
        tag[2] = (uint8_t)used;
        tag[3] = (uint8_t)(used >> 8);
        used += n;
        ntag++;
    }

    uint32_t flags = 0x0002u /* leaf */ | 0x0800u /* new record format */ | NTDSB_ESE_FLAG_NEW_CHECKSUM;
    if (is_index)
        flags |= 0x0040u | (below(&rr, 2) ? 0x0400u : 0); /* index, maybe non-unique */
    uint32_t in_region = pgno & ((1u << REGION_SHIFT) - 1);
    uint64_t page_dbtime = dbtime > 0xFFFF ? dbtime - (rnd(&rs) & 0xFFFF) : dbtime;
    uint32_t cb_free = (uint32_t)(cap - used - 4 * ntag);

    wr_t w = {page + 8};
    put64(&w, page_dbtime);
    put32(&w, in_region == 0 || pgno <= 1 ? 0 : pgno - 1);
    put32(&w, in_region == (1u << REGION_SHIFT) - 1 ? 0 : pgno + 1);
    put32(&w, objid);
    put16(&w, cb_free);
    put16(&w, 0); /* cbUncommittedFree */
    put16(&w, (uint32_t)used); /* ibMicFree */
    put16(&w, ntag);           /* itagState: next free tag, no reserved tags */
    put32(&w, flags);
    ntdsb_ese_set_page_checksum(page, cb_page, pgno);
}

void ntdsb_ese_generate_pages(uint8_t *pages, size_t cb_page, uint32_t first_pgno, uint32_t count,
                              uint64_t seed, uint64_t dbtime)
{
    domain_t d;
    domain_init(&d, seed);
    for (uint32_t i = 0; i < count; i++)
        generate_page(pages + (size_t)i * cb_page, cb_page, first_pgno + i, seed, dbtime, &d);
}

/* ---- log segments -------------------------------------------------------- */

/* Log-record-like content: begin / replace-or-insert / commit triples, the
 * shape of directory updates in a transaction log. */
static uint8_t *build_log_records(uint8_t *out, uint8_t *limit, rng_t *r, const domain_t *d,
                                  int32_t generation, uint32_t isec)
{
    wr_t w = {out};
    uint64_t dbtime = 100000 + (uint64_t)(uint32_t)generation * 40000 + (uint64_t)isec * 300;
    uint8_t scratch[NODE_MAX];
    for (;;) {
        uint32_t procid = 1 + below(r, 64);
        uint32_t pgno = 2 + below(r, 1u << 20);
        int insert = below(r, 4) == 0;
        uint8_t *end = insert ? build_object(scratch, r, r, d, 3000 + pgno * 64, dbtime, 96)
                              : scratch;
        if (!insert) {
            /* a replace: a few changed fields (time, USN, a string) */
            wr_t s = {scratch};
            put16(&s, 0x48);
            put64(&s, d->base_time + below(r, 86400) * 10000000ull);
            put16(&s, 0x58);
            put64(&s, 12000 + dbtime / 4);
            put16(&s, 0x130);
            put_u16s(&s, PICK(r, k_desc));
            end = s.p;
        }
        size_t n = (size_t)(end - scratch);
        size_t need = 8 + 28 + n + 12;
        if ((size_t)(limit - w.p) < need)
            break;
        put8(&w, 0x01); /* begin */
        put16(&w, procid);
        put8(&w, 1);
        put32(&w, 0);
        put8(&w, insert ? 0x2B : 0x2E); /* insert / replace */
        put16(&w, procid);
        put8(&w, 1); /* dbid */
        put32(&w, pgno);
        put32(&w, 8); /* objidFDP */
        put64(&w, dbtime);
        put64(&w, dbtime - 1 - below(r, 50));
        memcpy(w.p, scratch, n);
        w.p += n;
        put8(&w, 0x02); /* commit */
        put16(&w, procid);
        put8(&w, 0);
        put64(&w, dbtime + 1);
        dbtime += 2;
    }
    return w.p;
}

void ntdsb_ese_generate_log_segments(uint8_t *buf, size_t cb_sec, uint32_t first_isec, uint32_t count,
                                     int32_t generation, uint64_t seed, const uint8_t *logtime8)
{
    domain_t d;
    domain_init(&d, seed);
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *seg = buf + (size_t)i * cb_sec;
        uint32_t isec = first_isec + i;
        rng_t r = rng_of(seed ^ 0x106ull, (uint64_t)(uint32_t)generation, isec);
        memset(seg, 0, cb_sec);
        wr_t w = {seg + 8};
        put16(&w, 0); /* LGPOS of the segment: ib, isec, generation */
        put16(&w, isec);
        put32(&w, (uint32_t)generation);
        if (logtime8)
            memcpy(seg + 16, logtime8, 8);
        w.p = seg + 36;
        put32(&w, NTDSB_ESE_FLAG_NEW_CHECKSUM);
        /* The tail of a segment often stays unused when a flush ends early. */
        size_t slack = below(&r, 4) == 0 ? below(&r, (uint32_t)cb_sec / 4) : 0;
        build_log_records(seg + 40, seg + cb_sec - slack, &r, &d, generation, isec);
        ntdsb_ese_set_page_checksum(seg, cb_sec, isec);
    }
}
