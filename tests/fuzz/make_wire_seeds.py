#!/usr/bin/env python3
"""Seeds for fuzz_wire (tests/data/fuzz/wire), built from docs/protocol.md
with Python's struct: an encoder independent of dataplane/wire.c, so
test_wire's decoding of every valid_* file checks the codec against the
document. Run from the repository root."""
import os
import struct

OUT = 'tests/data/fuzz/wire'


def msg(t, body, rid=1, flags=0, seq=0):
    return struct.pack('<IBBHQII', 0x31574C53, 1, t, flags, rid, len(body), seq) + body


def gen(prompt=b'Once upon a time', ids=None, cookie=None, mac=None, stops=(b'\n\n',)):
    b = struct.pack('<B', 8) + b'tiny-q80'
    if ids is None:
        b += struct.pack('<BI', 0, len(prompt)) + prompt
    else:
        b += struct.pack('<BI', 1, len(ids)) + b''.join(struct.pack('<I', i) for i in ids)
    b += struct.pack('<IfIfffQIBBB', 32, 0.0, 0, 1.0, 0.0, 1.0, 42, 1000, 1, 2, len(stops))
    for s in stops:
        b += struct.pack('<B', len(s)) + s
    flags = 0
    if cookie is not None:
        b += struct.pack('<Q', cookie)
        flags |= 1
    if mac is not None:
        b += struct.pack('<I', 3) + mac
        flags |= 2
    return msg(1, b, flags=flags)


def tokens(ids, text, logprobs=b'', seq=0):
    return msg(129, struct.pack('<H', len(ids)) + b''.join(struct.pack('<I', i) for i in ids) +
               struct.pack('<H', len(text)) + text + logprobs, seq=seq)


FILES = {
    'valid_ping': msg(3, b''),
    'valid_cancel': msg(2, b'', rid=77),
    'valid_generate_text': gen(),
    'valid_generate_utf8': gen('caf\u00e9 \u2603 \U0001F600'.encode()),
    'valid_generate_ids': gen(ids=[1, 403, 9000], cookie=0x1234, mac=bytes(range(32)), stops=()),
    'valid_resend': msg(4, struct.pack('<HII', 2, 0, 5)),
    'valid_tokens': tokens([17, 4242], 'ab\u00e9c'.encode()),
    'valid_tokens_logprobs': tokens([17], b'x', struct.pack('<BIf', 1, 17, -0.25), seq=1),
    'valid_done': msg(130, struct.pack('<BIIQQQQB', 1, 5, 32, 10, 200, 9000, 3, 11) + b'xxh3-128:ab', seq=2),
    'valid_error': msg(131, struct.pack('<HH', 2, 13) + b'no such model', seq=3),
    'valid_pong': msg(132, struct.pack('<Q', 1700000000000000)),
    'valid_cookie': msg(133, struct.pack('<Q', 0xdeadbeef)),
    'bad_trailing': msg(3, b'') + b'\0',
    'bad_overlong': gen(b'\xc0\x80'),
    'bad_version': struct.pack('<IBBHQII', 0x31574C53, 2, 3, 0, 1, 0, 0),
}

os.makedirs(OUT, exist_ok=True)
for name, data in FILES.items():
    with open(os.path.join(OUT, name), 'wb') as f:
        f.write(data)
print(len(FILES), 'seeds in', OUT)
