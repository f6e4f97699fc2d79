"""Platform-ready hashed customer lists: UID2/EUID, Google Customer Match, Meta Custom Audiences.

Each platform normalizes with its own profile (`normalize`, profiles `uid2`, `google`, `meta`),
then SHA-256 over the UTF-8 bytes, encoded as the platform expects: uid2 Base64 of the raw
digest (44 characters), google and meta lowercase hex. Fields a platform takes unhashed
(Google country, postal code and mobile device id; Meta mobile ad id) come back normalized
and unhashed. These are plain, unkeyed hashes for upload to the platform, not match tokens.

Upload columns per platform (identifier kind -> column name):

    uid2    email -> email_hash, phone -> phone_hash
    google  email -> Email, phone -> Phone, first_name -> First Name, last_name -> Last Name,
            country -> Country (unhashed), postal_code -> Zip (unhashed),
            maid -> Mobile Device ID (unhashed)
    meta    email -> email, phone -> phone, first_name -> fn, last_name -> ln, city -> ct,
            state -> st, postal_code -> zip, country -> country, dob -> dob, gender -> gen,
            external_id -> extern_id, maid -> madid (unhashed)
"""

from ._columns import PLATFORMS, UploadColumn, upload_columns
from ._export import ExportReport, export_hashes
from ._hashing import hash_column, hash_column_reference, platform_hash

__all__ = [
    "ExportReport",
    "PLATFORMS",
    "UploadColumn",
    "export_hashes",
    "hash_column",
    "hash_column_reference",
    "platform_hash",
    "upload_columns",
]
