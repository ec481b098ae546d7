"""The Fargate task of the workflow (``ExtractOnFargate``): fingerprint a whole input in one pass.

Run as ``python -m functions.fargate`` in the function image, with the job in
``MEDIADNA_JOB`` (JSON) and the upload's SHA-256 in ``MEDIADNA_SHA256``; writes
``jobs/<job id>/fingerprint.mdna`` to the work bucket, as Merge would.  Exits
non-zero on failure (Step Functions then routes the job to RecordFailure).
"""

from __future__ import annotations

import json
import os
import sys

from functions.common.aws import S3Parts, media_of
from functions.common.observability import logger
from functions.common.settings import settings
from mediadna.errors import MediaDnaError
from mediadna.jobs import Job, whole_step


def main() -> int:
    job = Job.from_dict(json.loads(os.environ["MEDIADNA_JOB"]))
    logger.append_keys(job_id=job.job_id)
    cfg = settings()
    try:
        with media_of(job, cfg) as media:
            out = whole_step(media, job, S3Parts(cfg.WORK_BUCKET), sha256=os.environ.get("MEDIADNA_SHA256", ""))
    except MediaDnaError as exc:
        logger.error("fargate extraction failed", error_code=exc.code, error_message=exc.message)
        print(str(exc), file=sys.stderr)
        return 1
    logger.info("fingerprinted whole input", **out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
