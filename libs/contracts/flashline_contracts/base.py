"""The one pydantic base every contract uses: unknown fields are ignored (forward compatible)."""

from pydantic import BaseModel, ConfigDict


class Contract(BaseModel):
    """Immutable, tolerant of fields added by newer producers."""

    model_config = ConfigDict(extra="ignore", frozen=True)
