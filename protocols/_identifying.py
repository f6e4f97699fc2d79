"""The check that an attribute column (shared in clear) does not hold emails or phones."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import normalize

from ._errors import PolicyRefusal

IDENTIFYING_SAMPLE = 500
IDENTIFYING_SHARE = 0.05


def check_identifying(batch: pa.RecordBatch, attributes: Sequence[str], region: str,
                      file: str) -> None:
    """Refuse an attribute whose sampled values parse as emails or phones too often."""
    for attr in attributes:
        arr = batch.column(attr)
        if pa.types.is_floating(arr.type) or pa.types.is_boolean(arr.type):
            continue
        arr = arr.drop_null()
        if len(arr) == 0:
            continue
        step = max(1, len(arr) // IDENTIFYING_SAMPLE)
        sample = pc.cast(arr.take(pa.array(np.arange(0, len(arr), step)[:IDENTIFYING_SAMPLE])),
                         pa.string())
        for kind in ("email", "phone"):
            res = normalize.normalize_column(kind, sample, profile="strict", region=region)
            hits = res.reasons.null_count  # null reason = valid
            if hits > IDENTIFYING_SHARE * len(sample):
                raise PolicyRefusal(
                    "identifying_attribute",
                    f"{file}: attribute column {attr!r}: {hits} of {len(sample)} sampled values "
                    f"parse as {kind}s; attributes leave in clear (use --id {kind}={attr} to "
                    "tokenize it, or --allow-identifying-attr if this is really intended)")
