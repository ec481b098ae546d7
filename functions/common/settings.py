"""Configuration of the functions: environment variables parsed into one model."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field

from mediadna.jobs import DEFAULT_RESULT_TEMPLATE, JobDefaults
from mediadna.defaults import SEGMENT_OVERLAP, SEGMENT_SECONDS


class Settings(BaseModel):
    """One model for all functions; each reads what it needs.  Names are the env variables."""

    STATE_MACHINE_ARN: str = ""
    INPUT_BUCKET: str = ""  # uploads (the API submits jobs for objects in it)
    WORK_BUCKET: str = ""  # intermediate parts: jobs/<job id>/...
    OUTPUT_BUCKET: str = ""  # result documents
    CALLBACK_QUEUE_URL: str = ""
    RESULT_TOPIC_ARN: str = ""
    MEDIADNA_STORE: str = "dynamodb:"  # table names from MEDIADNA_TABLE_* (set by the stack)
    DEFAULT_LIBRARY: str = "default"
    DEFAULT_SAVE_TYPE: Literal["nosave", "save", "forcesave", "onlysave"] = "save"
    RESULT_TEMPLATE: str = DEFAULT_RESULT_TEMPLATE
    SEGMENT_SECONDS: float = Field(SEGMENT_SECONDS, gt=5, le=900)
    SEGMENT_OVERLAP: float = Field(SEGMENT_OVERLAP, ge=0, le=30)
    #: "url": FFmpeg reads a presigned URL with range requests (only the segment's bytes);
    #: "download": the object is downloaded to /tmp first (for emulators and odd containers).
    MEDIA_ACCESS: Literal["url", "download"] = "url"
    PRESIGN_SECONDS: int = Field(3600, ge=60, le=43200)

    @property
    def defaults(self) -> JobDefaults:
        return JobDefaults(self.DEFAULT_LIBRARY, self.DEFAULT_SAVE_TYPE)


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.model_validate({k: v for k, v in os.environ.items() if k in Settings.model_fields})
