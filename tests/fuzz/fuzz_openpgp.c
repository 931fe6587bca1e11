/* libFuzzer: bytes -> the OpenPGP parsers: the armor and packets of a keys
 * file (keys, subkeys, their self-signatures, bindings and revocations
 * checked), an armored signature verified over the same bytes by that
 * keyring, and the packet, key and signature readers on raw bytes. */
#include "trust/openpgp.h"
#include "trust/pgp_packet.h"

#include <stddef.h>
#include <stdint.h>

static void raw_packets(const uint8_t *data, size_t size)
{
    pgp_bytes in = {data, size};
    pgp_packet pkt;
    otr_buf why = OTR_BUF_INIT;
    while (pgp_packet_next(&in, &pkt, &why) > 0) {
        pgp_key key;
        pgp_sig sig;
        if (pgp_key_parse(&key, pkt.body, &why) == 0)
            pgp_key_clear(&key);
        if (pgp_sig_parse(&sig, pkt.body, &why) == 0 && sig.embedded.p) {
            pgp_sig inner;
            (void)pgp_sig_parse(&inner, sig.embedded, &why);
        }
        otr_buf_clear(&why);
    }
    otr_buf_free(&why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    otr_pgp_keyring *keys = NULL;
    otr_error err = OTR_ERROR_INIT;
    otr_buf why = OTR_BUF_INIT;
    otr_pgp_signer by;
    if (otr_pgp_keyring_parse(&keys, "keys.asc", text, size, 1700000000, &err) == 0)
        (void)otr_pgp_verify(keys, text, size, data, size, 1700000000, &by, &why);
    otr_error_clear(&err);
    otr_buf_free(&why);
    otr_pgp_keyring_free(keys);
    raw_packets(data, size);
    return 0;
}
