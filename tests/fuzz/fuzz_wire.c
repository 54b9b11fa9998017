/* libFuzzer target: the wire decoder on arbitrary bytes (the bytes a UDP
 * datagram or a TCP frame may carry).  Besides memory errors (ASan/UBSan)
 * it checks that peek agrees with decode on the frame's length, and that
 * every message that decodes encodes back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sl_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t frame;
    const sl_status ps = sl_wire_peek(data, size, &frame, NULL);
    sl_wire_msg m;
    if (sl_wire_decode(data, size, &m, NULL) != SL_OK)
        return 0;
    if (ps != SL_OK || frame != size) /* a whole message: peek must have framed it exactly */
        abort();
    static uint8_t again[SL_WIRE_HEADER + SL_WIRE_MAX_BODY];
    size_t n;
    if (sl_wire_encode(&m, again, sizeof again, &n, NULL) != SL_OK || n != size || memcmp(again, data, size) != 0)
        abort();
    return 0;
}
