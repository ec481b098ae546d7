"""A client fingerprints locally and uploads the .mdna instead of the media: no media leaves
its premises, and the workflow matches it (Split -> Route -> FingerprintGiven -> Match -> Publish)."""

from __future__ import annotations

import json

from mediadna.fingerprint import MAGIC
from mediadna.schemas import validate

LIBRARY = "ads"


def run(cloud, key: str, data: bytes) -> list[dict]:
    cloud.upload(key, data)
    assert cloud.deliver_uploads()["batchItemFailures"] == []
    return cloud.wait()


def test_an_uploaded_fingerprint_is_matched_without_its_media(cloud, ref_a, make_copy, fingerprint_of):
    from functions.common.aws import library_store
    from functions.common.settings import settings

    library_store(settings().MEDIADNA_STORE).create_library(LIBRARY)
    assert [e["status"] for e in run(cloud, f"input/{LIBRARY}/save/originals/ref_a.mp4", ref_a)] == ["SUCCEEDED"]
    cloud.invocations.clear()
    fp = fingerprint_of(make_copy("reencode", crf=36))  # what `mediadna fingerprint copy.mp4` writes
    # any name: the bytes say it is a fingerprint (JSON form here; binary below)
    executions = run(cloud, f"input/{LIBRARY}/nosave/client/copy-fingerprint.json", fp.to_json().encode())
    assert sorted(e["status"] for e in executions) == ["SUCCEEDED", "SUCCEEDED"]
    assert not any(n.endswith(("Extract", "Merge")) for n in cloud.invocations)  # nothing decoded
    result = next(r for r in cloud.results().values() if r["input"]["key"].endswith("copy-fingerprint.json"))
    validate(result, "result")
    assert result["status"] == "succeeded" and result["duplicate"] is True and result["stored"] is False
    best = result["matches"][0]
    assert best["primary_key"] == "originals/ref_a.mp4"
    seg = max(best["segments"], key=lambda s: s["query_end"] - s["query_start"])
    assert abs(seg["query_start"] - seg["reference_start"]) < 1.0 and seg["query_end"] - seg["query_start"] > 15.0
    assert result["input"]["sha256"] == fp.sha256  # the media's hash, carried by the fingerprint

    # stored from a fingerprint: the library keeps it under the upload's key
    executions = run(cloud, f"input/{LIBRARY}/onlysave/fps/b.mdna", fp.to_bytes())
    assert sorted(e["status"] for e in executions).count("SUCCEEDED") == 3
    stored = next(r for r in cloud.results().values() if r["input"]["key"].endswith("b.mdna"))
    assert stored["stored"] is True and stored["primary_key"] == "fps/b.mdna"
    assert library_store(settings().MEDIADNA_STORE).load_fingerprint(LIBRARY, "fps/b.mdna") == fp


def test_a_corrupt_fingerprint_gives_a_clear_failed_result(cloud, fingerprint_of, ref_b):
    from functions.common.aws import library_store
    from functions.common.settings import settings

    library_store(settings().MEDIADNA_STORE).create_library(LIBRARY)
    data = fingerprint_of(ref_b).to_bytes()
    executions = run(cloud, f"input/{LIBRARY}/save/broken.mdna", data[: len(data) // 2])
    assert [e["status"] for e in executions] == ["FAILED"]
    (result,) = cloud.results().values()
    validate(result, "result")
    assert result["status"] == "failed" and result["error"]["code"] == "bad_fingerprint"
    assert "fingerprint" in result["error"]["message"]
    (callback,) = [json.loads(m["Body"]) for m in cloud.drain(cloud.callback_queue)]
    assert callback["error"]["code"] == "bad_fingerprint"
    assert MAGIC == data[:4] and library_store(settings().MEDIADNA_STORE).get_library(LIBRARY).file_count == 0
