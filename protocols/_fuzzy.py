"""Fuzzy-tolerant derived forms of normalized values, and their keys and tokens.

A typo, a nickname or a swapped day and month makes two exact tokens differ. Each derived form
below maps near-misses to the same text, and is tokenized with its own key, so the engine can
see that two records agree on, say, the phonetic code of the last name, without seeing either
name. Forms are computed from NORMALIZED values (the output of `normalize`), a column at a time;
the Python work runs once per distinct value. Null, empty or underivable input gives null.

    kind         form             from "normalized" to derived (examples)
    email        mailbox          "jane.doe+shop@aol.com" -> "jane.doe@aol.com" (+tag dropped);
                                  "Jane.Doe@googlemail.com" -> "janedoe@gmail.com" (Gmail
                                  ignores dots): the mailbox the message reaches
    first_name   nickname         "bob" -> "robert", "peggy" -> "margaret" (else the name itself)
                 phonetic         "catherine" -> "K0RN" (Metaphone of the folded letters)
                 head             "monica", "moica" -> "mon", "moi" (first 3 letters)
                 tail             "monica", "moica" -> "ica" (last 3 letters: one dropped or
                                  wrong letter in a name of 6+ letters, or two swapped in
                                  one of 7+, leaves the head or the tail intact)
                 initial          "élise" -> "e" (first letter after folding accents)
    last_name    phonetic         "smith", "smyth" -> "SM0"
                 soundex          "robert", "rupert" -> "R163"
                 head, tail       as for first_name
    dob          swap             "1985-03-07", "1985-07-03" -> "1985-03-07" (year, then month
                                  and day in ascending order: equal when day and month swapped)
                 year_month       "1985-03-07" -> "1985-03"
                 month_day        "1985-03-07" -> "03-07" (tolerates a wrong year)
                 year             "1985-03-07" -> "1985"
    postal_code  prefix           "94105" -> "941"; "sw1a 1aa" -> "sw1a" (the part before a
                                  space, else the first 3 characters)
    street       number_phonetic  "12 main street" -> "12 MN STRT" (house number + phonetic)
                 phonetic         "12 main street" -> "MN STRT" (street name only)
                 number           "12a main street" -> "12a"
    city         phonetic         "san francisco" -> "SN FRNSSK"
    state        phonetic         "new south wales" -> "N S0 WLS" (codes such as "ca" stay codes)

Details, fixed by FUZZY_VERSION (a change to any rule or table bumps it, as tokens change):
- "folded": NFKD, combining marks dropped, lower case, only the letters a-z kept per word. A
  value with no such letter (another script) has no phonetic, soundex or folded initial.
- phonetic: jellyfish's Metaphone per word, words joined by one space. jellyfish 1.x has no
  Double Metaphone; Metaphone is its nearest equivalent, Soundex is the coarser second code.
- nickname: among the name and the names the `nicknames` table lists it as a nickname of, the
  one with the most nicknames (ties: alphabetical). "bob" -> "robert"; a name the table does not
  know stays as it is, so this level only adds agreement for real nickname pairs.
- dob accepts the `YYYY-MM-DD` (strict) and `YYYYMMDD` (meta) outputs of normalize.

Keys: `derive_fuzzy_key` gives every (kind, form) its own HKDF-SHA256 key from the
collaboration secret (info names the format version, the kind and the form), so a form's tokens
never compare with the exact tokens, another form's or another kind's. Token columns are
named `<kind>__<form>` (`first_name__phonetic`); `fuzzy_tokens` makes them all for one column.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from functools import cache
from importlib import metadata

import pyarrow as pa
import pyarrow.compute as pc

from ._errors import ConfigError
from ._keys import CollaborationSecret, _check_label, _hkdf
from .hazmat import hmac_tokens

FUZZY_VERSION = 1
FORM_SEPARATOR = "__"
_FUZZY_INFO = b"cleanroom/hmac-sha256/v1/fuzzy-token/v%d/" % FUZZY_VERSION

#: the derived forms of each kind, strongest first (the order of the comparison levels)
FUZZY_FORMS: dict[str, tuple[str, ...]] = {
    "email": ("mailbox",),
    "first_name": ("nickname", "phonetic", "head", "tail", "initial"),
    "last_name": ("phonetic", "soundex", "head", "tail"),
    "dob": ("swap", "year_month", "month_day", "year"),
    "postal_code": ("prefix",),
    "street": ("number_phonetic", "phonetic", "number"),
    "city": ("phonetic",),
    "state": ("phonetic",),
}
POSTAL_PREFIX = 3
AFFIX_LETTERS = 3
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def form_column(kind: str, form: str) -> str:
    """The token column name of one derived form: `<kind>__<form>`."""
    _check_form(kind, form)
    return f"{kind}{FORM_SEPARATOR}{form}"


def parse_form_column(name: str) -> tuple[str, str | None]:
    """(kind, form) of a column name; form is None for an exact column (`email`, `dob`)."""
    kind, sep, form = name.partition(FORM_SEPARATOR)
    return (kind, form) if sep else (name, None)


def fuzzy_library_versions() -> dict[str, str]:
    """Versions of the libraries whose tables and codes the forms depend on (for manifests)."""
    return {name: metadata.version(name) for name in ("jellyfish", "nicknames")}


def derive_fuzzy_key(secret: CollaborationSecret, kind: str, form: str) -> bytes:
    """The HMAC key of one derived form of one kind in this collaboration.

    HKDF-SHA256 with salt = collaboration id and info =
    `cleanroom/hmac-sha256/v1/fuzzy-token/v<FUZZY_VERSION>/<kind>/<form>`; labels cannot hold
    `/`, so distinct (kind, form) pairs always give distinct info strings.
    """
    _check_form(kind, form)
    return _hkdf(secret, _FUZZY_INFO + _check_label(kind) + b"/" + _check_label(form))


def derive_forms(kind: str, values: pa.Array | pa.ChunkedArray) -> dict[str, pa.Array]:
    """Every derived form of a column of normalized `kind` values, keyed by form name.

    Each result is a string array as long as `values`, null where the input is null or empty
    or the form cannot be derived. Deterministic: the same value always gives the same form.
    """
    if kind not in FUZZY_FORMS:
        raise ConfigError(f"kind {kind!r} has no fuzzy forms; kinds with forms: "
                          f"{', '.join(FUZZY_FORMS)}", key="--fuzzy")
    arr = _string_array(values)
    if kind == "dob":
        return _dob_forms(arr)
    if kind == "postal_code":
        return {"prefix": _per_distinct(arr, _postal_prefix)}
    derive = _TEXT_FORMS[kind]
    return {form: _per_distinct(arr, derive[form]) for form in FUZZY_FORMS[kind]}


def fuzzy_tokens(secret: CollaborationSecret, kind: str,
                 values: pa.Array | pa.ChunkedArray) -> dict[str, pa.Array]:
    """HMAC tokens of every derived form, keyed by column name `<kind>__<form>`."""
    return {form_column(kind, form): form_tokens(derive_fuzzy_key(secret, kind, form), arr)
            for form, arr in derive_forms(kind, values).items()}


def form_tokens(key: bytes, values: pa.Array) -> pa.Array:
    """`hmac_tokens(key, values)`, computed once per distinct value: a form has few distinct
    values (a phonetic code, a year), so this is several times faster on large columns."""
    encoded = pc.dictionary_encode(values)
    return hmac_tokens(key, encoded.dictionary).take(encoded.indices)


def _check_form(kind: str, form: str) -> None:
    if form not in FUZZY_FORMS.get(kind, ()):
        raise ConfigError(f"{kind!r} has no fuzzy form {form!r}; its forms: "
                          f"{', '.join(FUZZY_FORMS.get(kind, ())) or 'none'}", key="--fuzzy")


def _string_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array(values, pa.string())
    if pa.types.is_large_string(values.type) or pa.types.is_string_view(values.type):
        values = values.cast(pa.string())
    if not pa.types.is_string(values.type):
        raise ConfigError(f"fuzzy forms need a string column, got {values.type}", key="--fuzzy")
    return values


def _per_distinct(values: pa.Array, derive: Callable[[str], str | None]) -> pa.Array:
    """Apply `derive` once per distinct value; "" and None give null."""
    encoded = pc.dictionary_encode(values)
    distinct = encoded.dictionary.to_pylist()
    derived = pa.array([derive(v) or None if v else None for v in distinct], pa.string())
    return derived.take(encoded.indices)


# ---- text forms ---------------------------------------------------------------------------

def _fold_words(value: str) -> list[str]:
    """Words of a value with accents off, lower case, only a-z kept; empty words dropped."""
    text = unicodedata.normalize("NFKD", value)
    out = []
    for word in text.lower().split():
        kept = "".join(c for c in word if "a" <= c <= "z")
        if kept:
            out.append(kept)
    return out


@cache
def _metaphone() -> Callable[[str], str]:
    import jellyfish

    return jellyfish.metaphone


def _phonetic(value: str) -> str | None:
    code = " ".join(filter(None, (_metaphone()(w) for w in _fold_words(value))))
    return code or None


def _soundex(value: str) -> str | None:
    import jellyfish

    letters = "".join(_fold_words(value))
    return jellyfish.soundex(letters) if letters else None


def _head(value: str) -> str | None:
    return "".join(_fold_words(value))[:AFFIX_LETTERS] or None


def _tail(value: str) -> str | None:
    return "".join(_fold_words(value))[-AFFIX_LETTERS:] or None


def _initial(value: str) -> str | None:
    words = _fold_words(value)
    if words:
        return words[0][0]
    stripped = value.strip()
    return stripped[0] if stripped else None


@cache
def _nickname_table() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    from nicknames import NickNamer

    namer = NickNamer()
    return namer.canonical_lookup, namer.nickname_lookup


def _nickname(value: str) -> str | None:
    name = value.strip().lower()
    if not name:
        return None
    canonicals, nicknames = _nickname_table()
    candidates = {name} | canonicals.get(name, set())
    return min(candidates, key=lambda c: (-len(nicknames.get(c, ())), c))


def _split_street(value: str) -> tuple[str | None, str]:
    """(house number, rest): the first word when it holds a digit, else no number."""
    words = value.split()
    if words and any(c.isdigit() for c in words[0]):
        return words[0], " ".join(words[1:])
    return None, value


def _street_number_phonetic(value: str) -> str | None:
    number, rest = _split_street(value)
    code = _phonetic(rest)
    return f"{number} {code}" if number and code else None


def _street_phonetic(value: str) -> str | None:
    return _phonetic(_split_street(value)[1])


def _street_number(value: str) -> str | None:
    return _split_street(value)[0]


def _postal_prefix(value: str) -> str | None:
    text = value.strip()
    head, sep, _ = text.partition(" ")
    return head if sep and head else text[:POSTAL_PREFIX] or None


def _email_mailbox(value: str) -> str | None:
    local, _, domain = value.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}" if local and domain else None


_TEXT_FORMS: dict[str, dict[str, Callable[[str], str | None]]] = {
    "email": {"mailbox": _email_mailbox},
    "first_name": {"nickname": _nickname, "phonetic": _phonetic, "head": _head, "tail": _tail,
                   "initial": _initial},
    "last_name": {"phonetic": _phonetic, "soundex": _soundex, "head": _head, "tail": _tail},
    "street": {"number_phonetic": _street_number_phonetic, "phonetic": _street_phonetic,
               "number": _street_number},
    "city": {"phonetic": _phonetic},
    "state": {"phonetic": _phonetic},
}


# ---- dates: pure Arrow, no Python loop ----------------------------------------------------

def _dob_forms(values: pa.Array) -> dict[str, pa.Array]:
    digits = pc.replace_substring(values, "-", "")
    ok = pc.fill_null(pc.match_substring_regex(digits, r"^[0-9]{8}$"), False)
    null = pa.scalar(None, pa.string())
    digits = pc.if_else(ok, digits, null)
    year = pc.utf8_slice_codeunits(digits, 0, 4)
    month = pc.utf8_slice_codeunits(digits, 4, 6)
    day = pc.utf8_slice_codeunits(digits, 6, 8)
    low = pc.if_else(pc.less_equal(month, day), month, day)
    high = pc.if_else(pc.less_equal(month, day), day, month)

    def joined(*parts: pa.Array) -> pa.Array:
        return pc.binary_join_element_wise(*parts, "-")

    forms = {"swap": joined(year, low, high), "year_month": joined(year, month),
             "month_day": joined(month, day), "year": year}
    return {form: forms[form] for form in FUZZY_FORMS["dob"]}
