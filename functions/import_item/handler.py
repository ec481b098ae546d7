"""Import workflow task: one item (import, or record why it failed), or the import's end."""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from functions.common.aws import library_store
from functions.common.imports import import_settings, s3_input
from functions.common.observability import logger, tracer
from functions.common.settings import settings
from mediadna.imports import finish_import, run_item
from mediadna.jobs import error_from_state


class ImportRun(BaseModel):
    import_id: str
    library: str
    save_type: str
    bucket: str


class ImportEvent(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    action: Literal["item", "item_failed", "finish"]
    run: ImportRun = Field(alias="import")
    item: dict | None = None
    error: dict | None = None


@logger.inject_lambda_context(correlation_id_path="import.import_id")
@tracer.capture_lambda_handler
@event_parser(model=ImportEvent)
def handler(event: ImportEvent, context: LambdaContext) -> dict:
    run, store = event.run, library_store(settings().MEDIADNA_STORE)
    if event.action == "finish":
        error = error_from_state(event.error) if event.error else None
        return {"state": finish_import(store, run.import_id, error)["state"]}
    error = error_from_state(event.error) if event.action == "item_failed" else None
    outcome = run_item(store, run.import_id, run.library, event.item or {}, s3_input(run.bucket),
                       save_type=run.save_type, max_seconds=import_settings().IMPORT_MAX_ITEM_SECONDS, error=error)
    logger.info("import item", item=outcome["item"], outcome=outcome["outcome"], code=outcome["code"],
                counted=outcome["counted"])
    return outcome
