"""The string hashes behind Keras's Hashing layer (TensorFlow's string ops), in plain Python integers.

`fingerprint64` is FarmHash's Fingerprint64 (farmhashna::Hash64), which
`tf.strings.to_hash_bucket_fast` uses; `siphash24` is SipHash-2-4 with a 128-bit key given as two
64-bit words, which `tf.strings.to_hash_bucket_strong` uses.  Both take bytes and return an
unsigned 64-bit integer.  Arithmetic is modulo 2**64 (every product and sum is masked).
"""
_MASK = (1 << 64) - 1
_K0 = 0xc3a5c85c97cb3127
_K1 = 0xb492b66fbe98f273
_K2 = 0x9ae16a3b2f90404f


def _u64(data, i):
    return int.from_bytes(data[i:i + 8], "little")


def _u32(data, i):
    return int.from_bytes(data[i:i + 4], "little")


def _rotr(v, shift):
    return ((v >> shift) | (v << (64 - shift))) & _MASK


def _shift_mix(v):
    return v ^ (v >> 47)


def _mix16(u, v, mul):
    """Murmur-style mix of two words (FarmHash's HashLen16 with a multiplier)."""
    a = ((u ^ v) * mul) & _MASK
    a ^= a >> 47
    b = ((v ^ a) * mul) & _MASK
    b ^= b >> 47
    return (b * mul) & _MASK


def _upto16(s):
    n = len(s)
    if n >= 8:
        mul = _K2 + 2 * n
        a = (_u64(s, 0) + _K2) & _MASK
        b = _u64(s, n - 8)
        c = (_rotr(b, 37) * mul + a) & _MASK
        d = ((_rotr(a, 25) + b) * mul) & _MASK
        return _mix16(c, d, mul)
    if n >= 4:
        mul = _K2 + 2 * n
        return _mix16((n + (_u32(s, 0) << 3)) & _MASK, _u32(s, n - 4), mul)
    if n > 0:
        y = (s[0] + (s[n >> 1] << 8)) & 0xFFFFFFFF
        z = (n + (s[n - 1] << 2)) & 0xFFFFFFFF
        return (_shift_mix(((y * _K2) ^ (z * _K0)) & _MASK) * _K2) & _MASK
    return _K2


def _head(s, first_mul):
    """The four multiplied words HashLen17to32 and HashLen33to64 both start from."""
    n = len(s)
    mul = _K2 + 2 * n
    a = (_u64(s, 0) * first_mul) & _MASK
    return mul, a, _u64(s, 8), (_u64(s, n - 8) * mul) & _MASK, (_u64(s, n - 16) * _K2) & _MASK


def _upto32(s):
    mul, a, b, c, d = _head(s, _K1)
    return _mix16((_rotr((a + b) & _MASK, 43) + _rotr(c, 30) + d) & _MASK,
                  (a + _rotr((b + _K2) & _MASK, 18) + c) & _MASK, mul)


def _upto64(s):
    n = len(s)
    mul, a, b, c, d = _head(s, _K2)
    y = (_rotr((a + b) & _MASK, 43) + _rotr(c, 30) + d) & _MASK
    z = _mix16(y, (a + _rotr((b + _K2) & _MASK, 18) + c) & _MASK, mul)
    e = (_u64(s, 16) * mul) & _MASK
    f = _u64(s, 24)
    g = ((y + _u64(s, n - 32)) * mul) & _MASK
    h = ((z + _u64(s, n - 24)) * mul) & _MASK
    return _mix16((_rotr((e + f) & _MASK, 43) + _rotr(g, 30) + h) & _MASK,
                  (e + _rotr((f + a) & _MASK, 18) + g) & _MASK, mul)


def _weak32(s, i, a, b):
    """FarmHash's WeakHashLen32WithSeeds over the 32 bytes at s[i:]."""
    w, x, y, z = _u64(s, i), _u64(s, i + 8), _u64(s, i + 16), _u64(s, i + 24)
    a = (a + w) & _MASK
    b = _rotr((b + a + z) & _MASK, 21)
    c = a
    a = (a + x + y) & _MASK
    b = (b + _rotr(a, 44)) & _MASK
    return (a + z) & _MASK, (b + c) & _MASK


def fingerprint64(s):
    """FarmHash Fingerprint64 of the bytes s (TensorFlow's to_hash_bucket_fast hash)."""
    n = len(s)
    if n <= 16:
        return _upto16(s)
    if n <= 32:
        return _upto32(s)
    if n <= 64:
        return _upto64(s)
    seed = 81
    x = seed
    y = (seed * _K1 + 113) & _MASK
    z = (_shift_mix((y * _K2 + 113) & _MASK) * _K2) & _MASK
    v0 = v1 = w0 = w1 = 0
    x = (x * _K2 + _u64(s, 0)) & _MASK
    end = ((n - 1) // 64) * 64
    last64 = end + ((n - 1) & 63) - 63
    i = 0
    while True:
        x = (_rotr((x + y + v0 + _u64(s, i + 8)) & _MASK, 37) * _K1) & _MASK
        y = (_rotr((y + v1 + _u64(s, i + 48)) & _MASK, 42) * _K1) & _MASK
        x ^= w1
        y = (y + v0 + _u64(s, i + 40)) & _MASK
        z = (_rotr((z + w0) & _MASK, 33) * _K1) & _MASK
        v0, v1 = _weak32(s, i, (v1 * _K1) & _MASK, (x + w0) & _MASK)
        w0, w1 = _weak32(s, i + 32, (z + w1) & _MASK, (y + _u64(s, i + 16)) & _MASK)
        z, x = x, z
        i += 64
        if i == end:
            break
    mul = _K1 + ((z & 0xff) << 1)
    i = last64
    w0 = (w0 + ((n - 1) & 63)) & _MASK
    v0 = (v0 + w0) & _MASK
    w0 = (w0 + v0) & _MASK
    x = (_rotr((x + y + v0 + _u64(s, i + 8)) & _MASK, 37) * mul) & _MASK
    y = (_rotr((y + v1 + _u64(s, i + 48)) & _MASK, 42) * mul) & _MASK
    x ^= (w1 * 9) & _MASK
    y = (y + v0 * 9 + _u64(s, i + 40)) & _MASK
    z = (_rotr((z + w0) & _MASK, 33) * mul) & _MASK
    v0, v1 = _weak32(s, i, (v1 * mul) & _MASK, (x + w0) & _MASK)
    w0, w1 = _weak32(s, i + 32, (z + w1) & _MASK, (y + _u64(s, i + 16)) & _MASK)
    z, x = x, z
    return _mix16((_mix16(v0, w0, mul) + _shift_mix(y) * _K0 + z) & _MASK,
                  (_mix16(v1, w1, mul) + x) & _MASK, mul)


def _rotl(v, shift):
    return ((v << shift) | (v >> (64 - shift))) & _MASK


def _sip_rounds(v0, v1, v2, v3, rounds):
    for _ in range(rounds):
        v0 = (v0 + v1) & _MASK
        v1 = _rotl(v1, 13) ^ v0
        v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & _MASK
        v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & _MASK
        v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & _MASK
        v1 = _rotl(v1, 17) ^ v2
        v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


def siphash24(key0, key1, s):
    """SipHash-2-4 of the bytes s under the key (key0, key1) (TensorFlow's to_hash_bucket_strong)."""
    k0, k1 = key0 & _MASK, key1 & _MASK
    v0, v1 = k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d
    v2, v3 = k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573
    n = len(s)
    full = n - n % 8
    for i in range(0, full, 8):
        m = _u64(s, i)
        v3 ^= m
        v0, v1, v2, v3 = _sip_rounds(v0, v1, v2, v3, 2)
        v0 ^= m
    last = ((n & 0xff) << 56) | int.from_bytes(s[full:], "little")
    v3 ^= last
    v0, v1, v2, v3 = _sip_rounds(v0, v1, v2, v3, 2)
    v0 ^= last
    v2 ^= 0xff
    v0, v1, v2, v3 = _sip_rounds(v0, v1, v2, v3, 4)
    return v0 ^ v1 ^ v2 ^ v3
