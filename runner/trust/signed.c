/* Signed git objects, split as git splits them (see signed.h). */
#include "trust/signed.h"

#include <stdlib.h>
#include <string.h>

static int starts(const char *line, const char *end, const char *prefix)
{
    size_t n = strlen(prefix);
    return (size_t)(end - line) >= n && memcmp(line, prefix, n) == 0;
}

/* "NAME <EMAIL> SECONDS TZ", read as git reads an identity: the e-mail is
 * between the first '<' and the first '>' after it, and the line must pass
 * git fsck's check of an identity, or the object is refused (bad says why):
 * "Alice <alice@x> <mallory@x> 1 +0000" shows as Alice in git log. */
static void signer_of(otr_signed *out, const char *v, const char *end)
{
    const char *p = v, *lt, *gt;
    free(out->email);
    out->email = NULL;
    out->bad = NULL;
    while (p < end && *p != '<' && *p != '>' && *p != '\n') /* the object is not a C string */
        p++;
    if (p >= end || *p != '<' || p == v || p[-1] != ' ') {
        out->bad = p < end && *p == '>' ? "a '>' in the name" : "no ' <e-mail>' after the name";
        return;
    }
    lt = p++;
    while (p < end && *p != '<' && *p != '>')
        p++;
    if (p >= end || *p != '>') {
        out->bad = "the e-mail does not end with '>', or holds a '<'";
        return;
    }
    gt = p++;
    int64_t t = 0;
    const char *digits = p < end && *p == ' ' ? p + 1 : NULL;
    for (p = digits ? digits : end; p < end && *p >= '0' && *p <= '9' && t < INT64_MAX / 10; p++)
        t = t * 10 + (*p - '0');
    int tz = p < end && end - p == 6 && *p == ' ' && (p[1] == '+' || p[1] == '-');
    for (int i = 2; tz && i < 6; i++)
        tz = p[i] >= '0' && p[i] <= '9';
    if (!digits || p == digits || (*digits == '0' && p - digits > 1) || !tz) {
        out->bad = "no ' SECONDS +HHMM' after the e-mail";
        return;
    }
    out->email = strndup(lt + 1, (size_t)(gt - lt - 1));
    out->when = t;
}

int otr_signed_commit(otr_signed *out, const char *raw, size_t len)
{
    const char *line = raw, *tail = raw + len;
    int in_sig = 0, other_sig = 0;
    memset(out, 0, sizeof(*out));
    while (line < tail) {
        const char *nl = memchr(line, '\n', (size_t)(tail - line));
        const char *next = nl ? nl + 1 : tail, *sig = NULL;
        if (in_sig && *line == ' ') {
            sig = line + 1;
        } else if (starts(line, next, "gpgsig ")) {
            sig = line + 7;
            other_sig = 0;
        } else if (starts(line, next, "gpgsig")) {
            other_sig = 1; /* gpgsig-sha256: not ours (a SHA-1 repository), and not signed */
        } else if (other_sig && *line != ' ') {
            other_sig = 0;
        }
        if (sig) {
            otr_buf_append(&out->signature, sig, (size_t)(next - sig));
            in_sig = 1;
        } else {
            if (*line == '\n')
                next = tail; /* the message: the rest, as it is */
            else if (starts(line, next, "committer "))
                signer_of(out, line + 10, nl ? nl : tail);
            if (!other_sig)
                otr_buf_append(&out->payload, line, (size_t)(next - line));
            in_sig = 0;
        }
        line = next;
    }
    return otr_buf_failed(&out->payload) || otr_buf_failed(&out->signature) ? -1 : 0;
}

/* Does a line start a signature block (of any format git knows)? */
static int begins_signature(const char *line, const char *end)
{
    static const char *const begins[] = {
        "-----BEGIN PGP SIGNATURE-----", "-----BEGIN PGP MESSAGE-----",
        "-----BEGIN SIGNED MESSAGE-----", "-----BEGIN SSH SIGNATURE-----"};
    for (size_t i = 0; i < sizeof(begins) / sizeof(begins[0]); i++)
        if (starts(line, end, begins[i]))
            return 1;
    return 0;
}

int otr_signed_tag(otr_signed *out, const char *raw, size_t len)
{
    size_t match = len;
    int in_headers = 1;
    memset(out, 0, sizeof(*out));
    for (const char *line = raw; line < raw + len;) {
        const char *nl = memchr(line, '\n', (size_t)(raw + len - line));
        const char *next = nl ? nl + 1 : raw + len;
        if (begins_signature(line, next))
            match = (size_t)(line - raw);
        if (in_headers && *line == '\n')
            in_headers = 0;
        else if (in_headers && starts(line, next, "tagger "))
            signer_of(out, line + 7, nl ? nl : raw + len);
        line = next;
    }
    otr_buf_append(&out->payload, raw, match);
    otr_buf_append(&out->signature, raw + match, len - match);
    return otr_buf_failed(&out->payload) || otr_buf_failed(&out->signature) ? -1 : 0;
}

void otr_signed_clear(otr_signed *s)
{
    otr_buf_free(&s->payload);
    otr_buf_free(&s->signature);
    free(s->email);
    memset(s, 0, sizeof(*s));
}
