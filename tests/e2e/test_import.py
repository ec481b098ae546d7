"""Backfill import in moto: the import workflow file (infra/workflow/import.asl.json) runs a
distributed map over a plan of 200 generated files; every item is a real Lambda handler call."""

from __future__ import annotations

import time

import pytest

from mediadna import synth

LIBRARY = "archive"
PREFIX = "backfill/2024/"
GOOD = 196


@pytest.fixture
def imports(cloud):
    from functions.common.aws import library_store
    from functions.common.imports import import_settings
    from functions.common.settings import settings

    import_settings.cache_clear()
    store = library_store(settings().MEDIADNA_STORE)
    store.create_library(LIBRARY)
    yield store
    import_settings.cache_clear()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[bytes]:
    """196 distinct tiny clips (2 s, 64x36, 10 fps, no audio: ~10 ms each) and 4 bad inputs."""
    folder = tmp_path_factory.mktemp("import-clips")
    kinds = ("scenes", "shapes", "texture", "talk")
    out = [synth.make_video(folder / f"c{i}.mp4", kind=kinds[i % 4], duration=2.0, seed=1000 + i, size=(64, 36),
                            fps=10, audio=None).read_bytes() for i in range(GOOD)]
    assert len(set(out)) == GOOD
    return out


def finished(cloud, execution_arn: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = cloud.sfn.describe_execution(executionArn=execution_arn)
        if run["status"] != "RUNNING":
            return run
        assert time.monotonic() < deadline, "import still running"
        time.sleep(0.2)


def run_import(cloud, store, import_id: str, **kw) -> dict:
    from functions.common.imports import import_settings, start_import
    from mediadna.imports import get_import

    rec = start_import(store, LIBRARY, import_id=import_id, **kw)
    assert rec["state"] == "running"
    arn = f"{import_settings().IMPORT_STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:{import_id}"
    assert finished(cloud, arn)["status"] == "SUCCEEDED"
    return get_import(store, import_id, failures=50)


def test_an_import_of_200_files_counts_exactly_and_a_rerun_imports_nothing(cloud, imports, clips):
    store = imports
    for i, data in enumerate(clips):
        cloud.s3.put_object(Bucket=cloud.input_bucket, Key=f"{PREFIX}{'ab'[i % 2]}/clip-{i:03d}.mp4", Body=data)
    bad = {"notes.txt": b"not a video at all", "empty.mp4": b"", "cut-1.mp4": clips[0][: len(clips[0]) // 3],
           "cut-2.mp4": clips[1][:200]}
    for name, data in bad.items():
        cloud.s3.put_object(Bucket=cloud.input_bucket, Key=f"{PREFIX}bad/{name}", Body=data)
    cloud.s3.put_object(Bucket=cloud.input_bucket, Key=f"{PREFIX}bad/", Body=b"")  # a folder marker: no item
    prefix = f"s3://{cloud.input_bucket}/{PREFIX}"

    t0 = time.monotonic()
    first = run_import(cloud, store, "imp-first", prefix=prefix, max_concurrency=8)
    seconds = time.monotonic() - t0
    assert (first["state"], first["total"], first["done"], first["skipped"], first["failed"]) == ("finished", 200, GOOD, 0, 4)
    assert store.get_library(LIBRARY).file_count == GOOD
    assert store.get_file(LIBRARY, "a/clip-000.mp4").metadata == {"import": "imp-first"}
    reasons = {f["item"].rsplit("/", 1)[-1]: f["code"] for f in first["failures"]}
    assert reasons == {"notes.txt": "not_media", "empty.mp4": "input_empty", "cut-1.mp4": "corrupt_media",
                       "cut-2.mp4": reasons["cut-2.mp4"]}
    assert reasons["cut-2.mp4"] in ("corrupt_media", "not_media")
    assert all(f["message"] for f in first["failures"])
    # the plan and the map run's result manifest are kept in the work bucket
    kept = [o["Key"] for o in cloud.s3.list_objects_v2(Bucket=imports_work_bucket(), Prefix="imports/")["Contents"]]
    assert "imports/imp-first/plan.json" in kept and any(k.startswith("imports/results/") for k in kept)

    second = run_import(cloud, store, "imp-second", prefix=prefix, max_concurrency=8)
    assert (second["total"], second["done"], second["skipped"], second["failed"]) == (200, 0, GOOD, 4)
    assert store.get_library(LIBRARY).file_count == GOOD
    assert seconds < 90, f"the first import took {seconds:.0f} s"

    from mediadna.errors import MediaDnaError

    with pytest.raises(MediaDnaError):  # an import id names one execution
        run_import(cloud, store, "imp-second", prefix=prefix)


def imports_work_bucket() -> str:
    from functions.common.imports import import_settings

    return import_settings().WORK_BUCKET


def test_a_manifest_import_with_primary_keys(cloud, imports, clips):
    store = imports
    for i in range(3):
        cloud.s3.put_object(Bucket=cloud.input_bucket, Key=f"media/{i}.mp4", Body=clips[10 + i])
    manifest = "key,primary_key\nmedia/0.mp4,asset-0\nmedia/1.mp4,asset-1\nmedia/2.mp4,\nmedia/gone.mp4,asset-9\n"
    cloud.s3.put_object(Bucket=cloud.input_bucket, Key="lists/batch.csv", Body=manifest.encode())
    view = run_import(cloud, store, "imp-manifest", manifest=f"s3://{cloud.input_bucket}/lists/batch.csv",
                      save_type="save")
    assert (view["total"], view["done"], view["failed"]) == (4, 3, 1)
    assert [f["code"] for f in view["failures"]] == ["input_not_found"]
    assert {r.primary_key for r in store.list_files(LIBRARY).items} == {"asset-0", "asset-1", "media/2.mp4"}
