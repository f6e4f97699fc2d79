"""AWS C3R cryptography, byte for byte: HKDF keys, fingerprint (HMAC) and sealed (AES-GCM) values.

Follows the C3R SDK 3.x wire format:

    fingerprint  "02:hmac:" + base64(HMAC-SHA256(key, value bytes + info byte))
                 key = HKDF-SHA256(secret, salt=collaboration id,
                                   info="c3r-hmac-sha256-col-" + column | shared info)
    sealed       "02:enc:" + base64(nonce(32) + iv(12) + AES-256-GCM(plaintext) + tag(16))
                 root = HKDF-SHA256(secret, salt, "c3r-encryption-primary-aes-gcm-256")
                 key = SHA-256(root + nonce), iv = SHA-256(column + nonce)[:12], aad = "02:enc:"
                 plaintext = info byte + value bytes + zero pad + 2-byte big-endian pad length

The info byte is `(type index << 1) | is_null`. Nothing here ever puts a value, token or
secret in an exception message.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import decimal as _decimal
import hashlib
import hmac
import secrets as _secrets
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .._errors import ConfigError, DecryptionError, InputError, KeyMaterialError

FINGERPRINT_PREFIX = "02:hmac:"
SEALED_PREFIX = "02:enc:"
SHARED_INFO = b"c3r-encryption-primary-aes-gcm-256"
COLUMN_INFO = "c3r-hmac-sha256-col-"
NONCE_BYTES = 32
IV_BYTES = 12
MAX_PAD_BYTES = 10000
MAX_PADDED_BYTES = 12000
MAX_MARSHALLED_BYTES = 16383
MIN_SECRET_BYTES = 32
_AAD = SEALED_PREFIX.encode("ascii")
_EPOCH = _dt.date(1970, 1, 1)


class DataType(IntEnum):
    """C3R client data types; the value is the index stored in the info byte."""

    UNKNOWN = 0
    STRING = 1
    BIGINT = 2
    BOOLEAN = 3
    CHAR = 4
    DATE = 5
    DECIMAL = 6
    DOUBLE = 7
    FLOAT = 8
    INT = 9
    SMALLINT = 10
    TIMESTAMP = 11
    VARCHAR = 12

    @property
    def fingerprint_class(self) -> DataType | None:
        """The equivalence class a fingerprint uses (None: not fingerprintable)."""
        return _CLASS.get(self)


_CLASS = {
    DataType.STRING: DataType.STRING, DataType.CHAR: DataType.STRING,
    DataType.VARCHAR: DataType.STRING, DataType.SMALLINT: DataType.BIGINT,
    DataType.INT: DataType.BIGINT, DataType.BIGINT: DataType.BIGINT,
    DataType.BOOLEAN: DataType.BOOLEAN, DataType.DATE: DataType.DATE,
}
_INT_RANGE = {DataType.SMALLINT: 16, DataType.INT: 32, DataType.BIGINT: 64}


def info_byte(dtype: DataType, is_null: bool) -> int:
    """The C3R info byte: type index shifted left by one, low bit set for NULL."""
    return (int(dtype) << 1) | (1 if is_null else 0)


@dataclass(frozen=True)
class Settings:
    """C3R collaboration settings (all False = C3R's high-assurance mode)."""

    allow_cleartext: bool = False
    allow_duplicates: bool = False
    allow_joins_on_columns_with_different_names: bool = False
    preserve_nulls: bool = False

    def __post_init__(self) -> None:
        for name in ("allow_cleartext", "allow_duplicates",
                     "allow_joins_on_columns_with_different_names", "preserve_nulls"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError("must be true or false", key=name)


PadType = Literal["none", "fixed", "max"]


@dataclass(frozen=True)
class Pad:
    """Padding of a sealed column: none, fixed (to `length` bytes) or max (longest + `length`)."""

    type: PadType = "none"
    length: int | None = None

    def __post_init__(self) -> None:
        if self.type not in ("none", "fixed", "max"):
            raise ConfigError("pad type must be none, fixed or max", key="pad.type")
        if self.type == "none":
            if self.length is not None:
                raise ConfigError("a pad length is only allowed with pad type fixed or max",
                                  key="pad.length")
        elif (not isinstance(self.length, int) or isinstance(self.length, bool)
              or not 0 <= self.length <= MAX_PAD_BYTES):
            raise ConfigError(f"pad length must be an integer in 0..{MAX_PAD_BYTES}",
                              key="pad.length")


def normalize_header(header: str) -> str:
    """C3R's header normalization: Java `trim().toLowerCase()`."""
    i, j = 0, len(header)
    while i < j and header[i] <= " ":
        i += 1
    while j > i and header[j - 1] <= " ":
        j -= 1
    return header[i:j].lower()


def _secret_bytes(secret: bytes) -> bytes:
    if not isinstance(secret, bytes | bytearray) or len(secret) == 0:
        raise KeyMaterialError("the C3R shared secret must be non-empty bytes")
    return bytes(secret)


def _salt_bytes(salt: str) -> bytes:
    if not isinstance(salt, str) or not salt:
        raise KeyMaterialError("the C3R salt (collaboration id) must be a non-empty string")
    return salt.encode("utf-8")


def _hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    """RFC 5869 HKDF-SHA256 with a 32-byte output (one block)."""
    prk = hmac.new(salt, secret, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def fingerprint_key(secret: bytes, salt: str, column: str, settings: Settings) -> bytes:
    """The HMAC key of a fingerprint column (per column unless joins across names are allowed)."""
    if settings.allow_joins_on_columns_with_different_names:
        info = SHARED_INFO
    else:
        info = (COLUMN_INFO + normalize_header(column)).encode("utf-8")
    return _hkdf(_secret_bytes(secret), _salt_bytes(salt), info)


def root_key(secret: bytes, salt: str) -> bytes:
    """The sealed-column root key (HKDF with the shared info string)."""
    return _hkdf(_secret_bytes(secret), _salt_bytes(salt), SHARED_INFO)


def hmac_token(key: bytes, message: bytes) -> str:
    """`02:hmac:` + Base64 of HMAC-SHA256(key, message): the C3R fingerprint core."""
    mac = hmac.digest(key, message, "sha256")
    return FINGERPRINT_PREFIX + base64.b64encode(mac).decode("ascii")


def python_type(value: object) -> DataType:
    """The C3R type of a Python value passed to the API (str, int, bool, date or None)."""
    if value is None or isinstance(value, str):
        return DataType.STRING
    if isinstance(value, bool):
        return DataType.BOOLEAN
    if isinstance(value, int):
        return DataType.BIGINT
    if isinstance(value, _dt.datetime):
        raise InputError("timestamps are not supported; pass a datetime.date")
    if isinstance(value, _dt.date):
        return DataType.DATE
    if isinstance(value, float):
        return DataType.DOUBLE
    raise InputError(f"unsupported value type {type(value).__name__}")


def value_bytes(value: object, dtype: DataType) -> bytes:
    """The canonical bytes of a non-null value of type `dtype` (without the info byte)."""
    if dtype in (DataType.STRING, DataType.CHAR, DataType.VARCHAR):
        if not isinstance(value, str):
            raise InputError(f"expected a string for a {dtype.name} value")
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError("value is not valid Unicode text") from None
    if dtype in _INT_RANGE:
        if not isinstance(value, int) or isinstance(value, bool):
            raise InputError(f"expected an integer for a {dtype.name} value")
        bits = _INT_RANGE[dtype]
        try:
            return value.to_bytes(bits // 8, "big", signed=True)
        except OverflowError:
            raise InputError(f"integer out of range of a {dtype.name}") from None
    if dtype is DataType.BOOLEAN:
        return b"\x01" if value else b"\x00"
    if dtype is DataType.DATE:
        if not isinstance(value, _dt.date) or isinstance(value, _dt.datetime):
            raise InputError("expected a datetime.date for a DATE value")
        return struct.pack(">i", (value - _EPOCH).days)
    if dtype in (DataType.DOUBLE, DataType.FLOAT):
        if not isinstance(value, int | float | str | _decimal.Decimal):
            raise InputError(f"expected a number for a {dtype.name} value")
        return struct.pack(">d" if dtype is DataType.DOUBLE else ">f", float(value))
    raise InputError(f"{dtype.name} values are not supported")


def fingerprint_message(value: object, dtype: DataType, settings: Settings) -> bytes | None:
    """Bytes that are HMACed for a fingerprint: class bytes + info byte, or a random NULL."""
    cls = dtype.fingerprint_class
    if cls is None:
        raise InputError(f"{dtype.name} is not a type supported by fingerprint columns")
    if value is None:
        if settings.preserve_nulls:
            return None
        return _secrets.token_bytes(32) + bytes([info_byte(cls, True)])
    if cls is DataType.BIGINT:
        data = value_bytes(value, DataType.BIGINT)
    else:
        data = value_bytes(value, cls)
    return data + bytes([info_byte(cls, False)])


def fingerprint_typed(value: object, dtype: DataType, *, key: bytes,
                      settings: Settings) -> str | None:
    """The fingerprint of a value of a known C3R type with a derived column key."""
    message = fingerprint_message(value, dtype, settings)
    return None if message is None else hmac_token(key, message)


TIMESTAMP_UNITS = ("ms", "us", "ns")  # C3R Units.Seconds: MILLIS, MICROS, NANOS


class SealedDecimal(NamedTuple):
    """A decrypted DECIMAL with the precision and scale it was sealed with."""

    value: _decimal.Decimal | None
    precision: int
    scale: int


class SealedTimestamp(NamedTuple):
    """A decrypted TIMESTAMP: ticks since the epoch in `unit` (ms, us, ns), UTC or local."""

    value: int | None
    is_utc: bool
    unit: str


def plain_decimal(value: _decimal.Decimal) -> str:
    """Java BigDecimal.toPlainString() of a finite decimal (no exponent, no negative zero)."""
    return format(value.copy_abs() if value == 0 else value, "f")


def encode_decimal(value: _decimal.Decimal | None, precision: int, scale: int) -> bytes:
    """C3R's DECIMAL encoding: info byte, precision and scale (4 bytes each), plain string."""
    head = bytes([info_byte(DataType.DECIMAL, value is None)]) + struct.pack(">ii", precision,
                                                                              scale)
    return head if value is None else head + plain_decimal(value).encode("ascii")


def encode_timestamp(value: int | None, is_utc: bool, unit: str) -> bytes:
    """C3R's TIMESTAMP encoding: info byte, UTC flag, unit ordinal (4 bytes), 8-byte ticks."""
    head = bytes([info_byte(DataType.TIMESTAMP, value is None), 1 if is_utc else 0])
    head += struct.pack(">i", TIMESTAMP_UNITS.index(unit))
    return head if value is None else head + struct.pack(">q", value)


def encode_sealed(value: object, dtype: DataType) -> bytes:
    """The encoded plaintext of a sealed value: info byte + value bytes (NULL: info byte only)."""
    if value is None:
        if dtype in (DataType.DECIMAL, DataType.TIMESTAMP, DataType.VARCHAR, DataType.UNKNOWN):
            raise InputError(f"{dtype.name} values cannot be sealed")
        return bytes([info_byte(dtype, True)])
    return bytes([info_byte(dtype, False)]) + value_bytes(value, dtype)


def pad_plaintext(encoded: bytes, pad: Pad, max_value_length: int = 0) -> bytes:
    """Zero-pad `encoded` as C3R does and append the 2-byte big-endian pad length."""
    if pad.type == "none":
        fill = 0
    else:
        length = pad.length or 0
        target = length + max_value_length if pad.type == "max" else length
        fill = target - len(encoded)
        if fill < 0:
            raise InputError(f"no room for padding: the value is longer than {target} bytes")
        if target > MAX_PADDED_BYTES:
            raise InputError(f"padded length {target} exceeds {MAX_PADDED_BYTES} bytes")
    return encoded + bytes(fill) + struct.pack(">H", fill)


def iv_for(column: str, nonce: bytes) -> bytes:
    """The GCM IV: the first 12 bytes of SHA-256(column label + nonce)."""
    return hashlib.sha256(column.encode("utf-8") + nonce).digest()[:IV_BYTES]


def seal_encoded(encoded: bytes, *, root: bytes, column: str, nonce: bytes, pad: Pad,
                 max_value_length: int = 0) -> str:
    """Seal already-encoded plaintext bytes into a `02:enc:` value."""
    if len(nonce) != NONCE_BYTES:
        raise InputError(f"a C3R nonce must be {NONCE_BYTES} bytes")
    if not column.strip():
        raise InputError("a column label is required to seal a value")
    plaintext = pad_plaintext(encoded, pad, max_value_length)
    iv = iv_for(column, nonce)
    key = hashlib.sha256(root + nonce).digest()
    body = AESGCM(key).encrypt(iv, plaintext, _AAD)
    out = SEALED_PREFIX + base64.b64encode(nonce + iv + body).decode("ascii")
    if len(out) > MAX_MARSHALLED_BYTES:
        raise InputError(f"sealed value longer than {MAX_MARSHALLED_BYTES} bytes")
    return out


def open_sealed(text: str, *, root: bytes) -> bytes:
    """Decrypt a `02:enc:` value and strip its padding; returns info byte + value bytes."""
    if not text.startswith(SEALED_PREFIX):
        raise DecryptionError("not a C3R sealed value")
    try:
        raw = base64.b64decode(text[len(SEALED_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionError() from None
    if len(raw) < NONCE_BYTES + IV_BYTES + 16:
        raise DecryptionError()
    nonce = raw[:NONCE_BYTES]
    iv = raw[NONCE_BYTES:NONCE_BYTES + IV_BYTES]
    body = raw[NONCE_BYTES + IV_BYTES:]
    key = hashlib.sha256(root + nonce).digest()
    try:
        padded = AESGCM(key).decrypt(iv, body, _AAD)
    except InvalidTag:
        raise DecryptionError() from None
    if len(padded) < 2:
        raise DecryptionError()
    fill = struct.unpack(">h", padded[-2:])[0]
    end = len(padded) - 2 - fill
    if fill < 0 or end < 0:
        raise DecryptionError()
    return padded[:end]


def decode_sealed(encoded: bytes) -> tuple[DataType, object]:
    """Turn decrypted info byte + value bytes back into (type, Python value or None)."""
    if not encoded:
        raise DecryptionError("decrypted value has no C3R type byte")
    try:
        dtype = DataType(encoded[0] >> 1)
    except ValueError:
        raise DecryptionError("decrypted value has an unknown C3R type") from None
    is_null = bool(encoded[0] & 1)
    data = encoded[1:]
    if is_null:
        return dtype, None
    if dtype in (DataType.STRING, DataType.CHAR, DataType.VARCHAR):
        if dtype is DataType.VARCHAR:
            data = data[4:]
        try:
            return dtype, data.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionError("decrypted text is not UTF-8") from None
    if dtype in _INT_RANGE:
        if len(data) != _INT_RANGE[dtype] // 8:
            raise DecryptionError("decrypted integer has the wrong length")
        return dtype, int.from_bytes(data, "big", signed=True)
    if dtype is DataType.BOOLEAN:
        if data not in (b"\x00", b"\x01"):
            raise DecryptionError("decrypted boolean is malformed")
        return dtype, data == b"\x01"
    if dtype is DataType.DATE:
        return dtype, _EPOCH + _dt.timedelta(days=struct.unpack(">i", data)[0])
    if dtype is DataType.DOUBLE:
        return dtype, struct.unpack(">d", data)[0]
    if dtype is DataType.FLOAT:
        return dtype, struct.unpack(">f", data)[0]
    if dtype is DataType.DECIMAL and len(data) >= 8:
        precision, scale = struct.unpack(">ii", data[:8])
        try:
            return dtype, SealedDecimal(_decimal.Decimal(data[8:].decode("ascii")), precision,
                                        scale)
        except (UnicodeDecodeError, _decimal.InvalidOperation):
            raise DecryptionError("decrypted decimal is malformed") from None
    if dtype is DataType.TIMESTAMP and len(data) == 13 and data[1:5] in (
            b"\0\0\0\0", b"\0\0\0\1", b"\0\0\0\2"):
        unit = TIMESTAMP_UNITS[data[4]]
        return dtype, SealedTimestamp(struct.unpack(">q", data[5:])[0], data[0] == 1, unit)
    raise DecryptionError(f"decrypting {dtype.name} values is not supported")
