"""``_bulk`` writes its items in batches: the answers, documents and mappings are those of the same items
sent one request each, including items on the same id, conflicts inside a request, and writers racing it."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import orjson

NDJSON = {"content-type": "application/x-ndjson"}


def _body(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def _mixed(index: str) -> list[list[dict[str, Any]]]:
    """Items (action line and its body) touching the same ids several times."""
    return [
        [{"index": {"_index": index, "_id": "1"}}, {"title": "one"}],
        [{"create": {"_index": index, "_id": "1"}}, {"title": "again"}],
        [{"update": {"_index": index, "_id": "1"}}, {"doc": {"pages": 10}}],
        [{"update": {"_index": index, "_id": "1"}}, {"doc": {"pages": 10}}],
        [{"index": {"_index": index, "_id": "1", "if_seq_no": 2, "if_primary_term": 1}}, {"title": "cas"}],
        [{"index": {"_index": index, "_id": "1", "if_seq_no": 2, "if_primary_term": 1}}, {"title": "stale"}],
        [{"update": {"_index": index, "_id": "2"}}, {"doc": {"t": "two"}, "doc_as_upsert": True}],
        [{"update": {"_index": index, "_id": "3"}}, {"doc": {"t": 3}}],
        [{"delete": {"_index": index, "_id": "4"}}],
        [{"delete": {"_index": index, "_id": "2"}}],
        [{"create": {"_index": index, "_id": "2"}}, {"t": "back", "nested": {"n": 1}}],
        [{"delete": {"_index": index, "_id": "2", "if_seq_no": 99, "if_primary_term": 1}}],
        [{"index": {"_index": index, "_id": "5"}}, {"strict": {"new": 1}}],
        [{"index": {"_index": index, "_id": "6", "pipeline": "nope"}}, {"x": 1}],
        [{"index": {"_index": index, "_id": "7"}}, [1, 2]],
        [{"delete": {"_index": index, "_id": "1"}}],
        [{"index": {"_index": index, "_id": "1"}}, {"title": "reborn"}],
    ]


def _comparable(item: dict[str, Any], index: str) -> Any:
    ((action, answer),) = item.items()
    shown = {k: v for k, v in answer.items() if k != "_index"}
    if "error" in shown:
        shown["error"] = {k: v for k, v in shown["error"].items() if k not in ("index", "index_uuid")}
        shown["error"]["reason"] = shown["error"]["reason"].replace(index, "<index>")
    return action, shown


def _setup(http: httpx.Client, index: str) -> None:
    body = {
        "settings": {"index": {"refresh_interval": "-1"}},
        "mappings": {"properties": {"strict": {"type": "object", "dynamic": "strict"}}},
    }
    http.put(f"/{index}", json=body).raise_for_status()
    http.put(f"/{index}/_doc/0", json={"before": True}).raise_for_status()
    http.post(f"/{index}/_refresh").raise_for_status()


def test_one_request_answers_as_its_items_sent_one_by_one(http: httpx.Client) -> None:
    for refresh in ("false", "true"):
        for index in ("batched", "single"):
            http.delete(f"/{index}")
            _setup(http, index)
        reply = http.post(f"/_bulk?refresh={refresh}", content=_body(sum(_mixed("batched"), [])), headers=NDJSON)
        assert reply.status_code == 200
        batched = reply.json()["items"]
        single = []
        for item in _mixed("single"):
            one = http.post(f"/_bulk?refresh={refresh}", content=_body(item), headers=NDJSON)
            assert one.status_code == 200
            single.extend(one.json()["items"])
        assert [_comparable(i, "batched") for i in batched] == [_comparable(i, "single") for i in single]
        assert batched[1]["create"]["status"] == 409  # the create conflicts with the item before it
        assert batched[3]["update"]["result"] == "noop" and batched[3]["update"]["_seq_no"] == 2
        assert batched[4]["index"]["result"] == "updated" and batched[5]["index"]["status"] == 409
        # What gets and searches see, and the mappings, are the same too.
        for doc_id in ("0", "1", "2", "3", "5"):
            got = [http.get(f"/{index}/_doc/{doc_id}").json() for index in ("batched", "single")]
            assert {k: v for k, v in got[0].items() if k != "_index"} == {
                k: v for k, v in got[1].items() if k != "_index"
            }
        seen = [
            sorted(http.post(f"/{index}/_search").json()["hits"]["hits"], key=lambda h: str(h["_id"]))
            for index in ("batched", "single")
        ]
        assert [(h["_id"], h["_source"]) for h in seen[0]] == [(h["_id"], h["_source"]) for h in seen[1]]
        expected_seen = ["0", "1", "2"] if refresh == "true" else ["0"]
        assert [h["_id"] for h in seen[0]] == expected_seen
        mappings = [http.get(f"/{index}/_mapping").json()[index] for index in ("batched", "single")]
        assert mappings[0] == mappings[1]
        assert "nested" in mappings[0]["mappings"]["properties"]


def test_a_large_request_into_a_new_index(http: httpx.Client) -> None:
    lines: list[dict[str, Any]] = []
    for n in range(2500):
        lines += [{"index": {"_index": "big", "_id": f"d{n % 2000}"}}, {"n": n, "tag": f"t{n % 7}"}]
    lines += [{"create": {"_index": "big"}}, {"generated": True}]
    reply = http.post("/_bulk", content=_body(lines), headers=NDJSON)
    assert reply.status_code == 200 and reply.json()["errors"] is False
    items = [i["index" if "index" in i else "create"] for i in reply.json()["items"]]
    assert [i["_seq_no"] for i in items] == list(range(2501))
    assert [i["result"] for i in items[1999:2001]] == ["created", "updated"]
    assert items[2000]["_version"] == 2 and items[-1]["status"] == 201
    assert http.post("/big/_count").json()["count"] == 2001
    assert http.get("/big/_doc/d10").json()["_source"] == {"n": 2010, "tag": "t1"}
    props = http.get("/big/_mapping").json()["big"]["mappings"]["properties"]
    assert set(props) == {"n", "tag", "generated"}


def test_concurrent_writers_on_the_same_documents(http: httpx.Client) -> None:
    """Bulk requests and single writes race on the same ids: every write takes its own sequence number,
    and each document's version counts the writes it had."""
    http.put("/race").raise_for_status()
    ids = [str(n) for n in range(20)]
    answers: list[dict[str, Any]] = []
    lock = threading.Lock()
    failures: list[str] = []

    def bulk_writer(worker: int) -> None:
        with httpx.Client(base_url=str(http.base_url), auth=http.auth, timeout=60) as client:
            for round_no in range(8):
                lines: list[dict[str, Any]] = []
                for doc_id in ids:
                    lines += [{"update": {"_index": "race", "_id": doc_id}}]
                    lines += [{"doc": {f"w{worker}": round_no}, "doc_as_upsert": True}]
                reply = client.post("/_bulk", content=_body(lines), headers=NDJSON)
                if reply.status_code != 200:
                    failures.append(reply.text)
                    return
                with lock:
                    answers.extend(i["update"] for i in reply.json()["items"])

    def single_writer() -> None:
        with httpx.Client(base_url=str(http.base_url), auth=http.auth, timeout=60) as client:
            for round_no in range(3):
                for doc_id in ids:
                    reply = client.post(f"/race/_update/{doc_id}", json={"doc": {"s": round_no}, "doc_as_upsert": True})
                    if reply.status_code not in (200, 201):
                        failures.append(reply.text)
                        return
                    with lock:
                        answers.append(reply.json())

    threads = [threading.Thread(target=bulk_writer, args=(n,)) for n in range(3)]
    threads.append(threading.Thread(target=single_writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert all("error" not in a for a in answers) and len(answers) == 3 * 8 * 20 + 3 * 20
    written = [a for a in answers if a["result"] != "noop"]
    assert len({a["_seq_no"] for a in written}) == len(written)  # never two writes on one number
    for doc_id in ids:
        doc = http.get(f"/race/_doc/{doc_id}").json()
        assert doc["_source"] == {"w0": 7, "w1": 7, "w2": 7, "s": 2}
        mine = [a for a in written if a["_id"] == doc_id]
        assert doc["_version"] == len(mine) == max(a["_version"] for a in mine)
        assert sorted(a["_version"] for a in mine) == list(range(1, len(mine) + 1))
