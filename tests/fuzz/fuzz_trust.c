/* libFuzzer: bytes -> the parsers of trusted commits: the allowed-signers
 * file, a raw commit and tag split as git splits them, and the SSH
 * signature they carry, verified against what it covers. */
#include "trust/signed.h"
#include "trust/signers.h"
#include "trust/sshsig.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static void check_signature(const otr_signed *o, const otr_signers *signers)
{
    otr_sshsig sig;
    otr_buf why = OTR_BUF_INIT;
    if (otr_sshsig_parse(&sig, o->signature.ptr ? o->signature.ptr : "", o->signature.len, &why) ==
        0) {
        if (otr_sshsig_verify(&sig, "git", o->payload.ptr ? o->payload.ptr : "", o->payload.len,
                              &why) == 0)
            (void)otr_signers_match(signers, sig.key.p, sig.key.len, o->email ? o->email : "",
                                    "git", o->when, &why);
        otr_sshsig_clear(&sig);
    }
    otr_buf_free(&why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    otr_signers signers;
    otr_error err = OTR_ERROR_INIT;
    otr_signed o;
    if (otr_signers_parse(&signers, "allowed_signers", text, size, &err) < 0)
        memset(&signers, 0, sizeof(signers));
    otr_error_clear(&err);
    if (otr_signed_commit(&o, text, size) == 0)
        check_signature(&o, &signers);
    otr_signed_clear(&o);
    if (otr_signed_tag(&o, text, size) == 0)
        check_signature(&o, &signers);
    otr_signed_clear(&o);
    otr_signers_free(&signers);
    return 0;
}
