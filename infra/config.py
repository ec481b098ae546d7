"""Constants shared by the stacks and their tests (one place, no magic strings elsewhere)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_FILE = ROOT / "infra" / "workflow" / "fingerprint.asl.json"
DOCKERFILE = "functions/Dockerfile"

APP_NAME = "MediaDna"
STATEFUL_STACK = "MediaDnaData"
PROCESSING_STACK = "MediaDnaProcessing"

#: Workflow functions: construct id -> (handler, memory MB, timeout s, package).
#: "image": the container image (PyAV, OpenCV, SciPy: over a zip layer's 250 MB);
#: "zip": light handlers on the Python runtime with the shared layer (layers/common).
#: Memory and timeouts from bench/run.py speed (extraction runs at 17-87x real
#: time on one core at 1080p-270p, peak RSS ~150 MB): a 62 s window at 1080p takes
#: ~4 s; 2048 MB gives Lambda's share of ~1.2 vCPU; 300 s leaves room for
#: slow range reads.  Match reads the library; its time grows with library size.
FUNCTIONS = {
    "Trigger": ("functions.trigger.handler.handler", 512, 60, "zip"),
    "Split": ("functions.split.handler.handler", 1024, 300, "image"),
    "Extract": ("functions.extract.handler.handler", 2048, 300, "image"),
    "Merge": ("functions.merge.handler.handler", 1024, 120, "image"),
    "Match": ("functions.match.handler.handler", 2048, 300, "image"),
    "Publish": ("functions.publish.handler.handler", 512, 60, "zip"),
    "Failure": ("functions.failure.handler.handler", 512, 60, "zip"),
}
LAYER_DIR = "layers/common"
#: The HTTP API's function (handler, memory MB, timeout s): the image, because compare
#: decodes media.  API Gateway waits 29 s for an answer (compares of short inputs); the
#: asynchronous library deletions run in the same function for up to 300 s.
API_FUNCTION = ("functions.api.handler.handler", 2048, 300)
#: Its routes (functions/api/handler.py; docs/openapi.json): method, path.
API_ROUTES = (
    ("GET", "/libraries"), ("POST", "/libraries"), ("GET", "/libraries/{name}"), ("DELETE", "/libraries/{name}"),
    ("GET", "/libraries/{name}/files"), ("GET", "/libraries/{name}/file"), ("DELETE", "/libraries/{name}/file"),
    ("GET", "/jobs"), ("POST", "/jobs"), ("GET", "/jobs/{job_id}"),
    ("POST", "/video/match"), ("POST", "/audio/match"), ("POST", "/image/match"),
    ("POST", "/libraries/{name}/imports"), ("GET", "/libraries/{name}/imports/{import_id}"),
    ("POST", "/libraries/{name}/rescans"),
)
#: Stage throttling: steady requests per second, burst.
API_THROTTLE = (50, 100)
#: Placeholders in the workflow file -> construct id of the function they name.
WORKFLOW_SUBSTITUTIONS = {f"{name}FunctionArn": name for name in FUNCTIONS if name != "Trigger"}
#: The other placeholders: the Fargate path (cluster, task definition, network).
WORKFLOW_FARGATE_PLACEHOLDERS = ("ClusterArn", "TaskDefinitionArn", "SubnetA", "SubnetB", "TaskSecurityGroup")
#: The Fargate task: vCPU units, memory MB, ephemeral storage GiB (a whole input of
#: up to 6 h, downloaded, and one decoding core busy; ~150 MB resident).
FARGATE_TASK = (2048, 4096, 100)

#: Logical ids of stateful resources: asserted stable by the infra tests
#: (renaming one would replace the bucket or table and lose its data).
STATEFUL_IDS = {
    "InputBucket": "StorageInputBucket",
    "OutputBucket": "StorageOutputBucket",
    "WorkBucket": "StorageWorkBucket",
    "AccessLogsBucket": "StorageAccessLogsBucket",
    "LibrariesTable": "StorageLibrariesTable",
    "FilesTable": "StorageFilesTable",
    "VisualTable": "StorageVisualTable",
    "AudioTable": "StorageAudioTable",
    "JobsTable": "StorageJobsTable",
}

#: Context values (cdk.json or -c key=value) and their defaults.
CONTEXT_DEFAULTS = {
    "defaultLibrary": "default",
    "defaultSaveType": "save",
    "segmentSeconds": 60,
    "segmentOverlap": 2,
    "inputPrefix": "input/",
    "inputSuffix": "",
    "resultTemplate": "results/{library}/{date}/{inputName}-{jobId}.json",
    "workRetentionDays": 2,
    "logRetentionDays": 30,
    "jobsIndexes": 2,  # GSIs of the jobs table to deploy (see infra/constructs/storage.py)
}

# -- backfill imports (infra/constructs/imports.py, infra/workflow/import.asl.json) -------------
IMPORT_WORKFLOW_FILE = ROOT / "infra" / "workflow" / "import.asl.json"
#: The import's item task: the container image (it fingerprints whole files: up to an
#: hour of media in Lambda's 15 minutes, see mediadna.imports.DEFAULT_MAX_ITEM_SECONDS).
IMPORT_FUNCTIONS = {"ImportItem": ("functions.import_item.handler.handler", 2048, 900, "image")}
IMPORT_SUBSTITUTIONS = {"ImportItemFunctionArn": "ImportItem"}
#: The other placeholder of the import workflow: where the map writes its result manifest.
IMPORT_BUCKET_PLACEHOLDER = "WorkBucketName"
#: Items of one import processed at the same time, at most (a request may ask for fewer);
#: extra buckets imports may read (comma-separated; the input bucket always).
CONTEXT_DEFAULTS.update({"importMaxConcurrency": 40, "importSourceBuckets": ""})
