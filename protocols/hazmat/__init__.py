"""Primitives under the recipes: keyed HMAC tokens, RFC 9380 hash-to-curve, ECDH blinding.

Do NOT use these unless a recipe in `protocols` cannot do what you need. They make the
choices the recipes make for you explicit and unchecked: which key a kind gets
(`derive_token_key`), the per-collaboration domain separation tag, the normalization before
hashing, the canary that catches mismatched keys, random stand-ins for missing values, shuffled
row order and the versioned file formats. Call `tokenize_file`, `psi_blind_file`,
`psi_reblind_file` and `psi_finish_file` instead; reach for these to check published test
vectors, to measure the building blocks, or to build a new recipe that adds those guarantees.

    hmac_token(key, value) / hmac_tokens(key, values)   keyed token of a normalized value
    hash_to_curve(msg, dst) / hash_to_curve_u(msg, dst)  RFC 9380, curve25519 (ELL2)
    u_on_curve(points) / first_off_curve(points)          curve (not twist) checks of u-coordinates
    psi_blind_values(key, collaboration_id, kind, values) / psi_reblind_values(key, points)
"""

from ._blinding import POINT_BYTES, psi_blind_values, psi_dst, psi_reblind_values
from ._h2c import (
    SUITE_NU,
    SUITE_RO,
    clear_cofactor,
    expand_message_xmd,
    first_off_curve,
    hash_to_curve,
    hash_to_curve_u,
    hash_to_curve_u_many,
    hash_to_field,
    is_on_curve,
    map_to_curve_elligator2,
    point_add,
    u_on_curve,
)
from ._tokens import (
    MATCH_SEPARATOR,
    TOKEN_BYTES,
    TOKEN_TYPE,
    hmac_token,
    hmac_tokens,
    join_match_parts,
)

__all__ = [
    "MATCH_SEPARATOR",
    "POINT_BYTES",
    "SUITE_NU",
    "SUITE_RO",
    "TOKEN_BYTES",
    "TOKEN_TYPE",
    "clear_cofactor",
    "expand_message_xmd",
    "first_off_curve",
    "hash_to_curve",
    "hash_to_curve_u",
    "hash_to_curve_u_many",
    "hash_to_field",
    "hmac_token",
    "hmac_tokens",
    "is_on_curve",
    "join_match_parts",
    "map_to_curve_elligator2",
    "point_add",
    "psi_blind_values",
    "psi_dst",
    "psi_reblind_values",
    "u_on_curve",
]
