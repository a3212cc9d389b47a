"""The rules of indices and documents: names, settings, conflicts, updates, source filtering, expressions."""

from __future__ import annotations

import pytest

from keyplane.indices import core
from keyplane.indices.core import Condition, Expand, IndexMeta, StoredDoc, UpdateSpec
from keyplane.source_filtering import filter_source

META = IndexMeta("books", "uuid-1", 1000)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "must not be empty"),
        ("a b", 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]'),
        ("a,b", 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]'),
        ('a"b', 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]'),
        ("a#b", "must not contain '#'"),
        ("a:b", "must not contain ':'"),
        ("_a", "must not start with '_', '-', or '+'"),
        ("-a", "must not start with '_', '-', or '+'"),
        ("+a", "must not start with '_', '-', or '+'"),
        (".", "must not be '.' or '..'"),
        ("..", "must not be '.' or '..'"),
        ("Books", "must be lowercase"),
        ("é" * 128, "index name is too long, (256 > 255)"),
    ],
)
def test_index_names_are_refused_with_elasticsearch_reasons(name: str, why: str) -> None:
    assert core.name_problem(name) == why
    with pytest.raises(core.InvalidIndexName) as refused:
        core.check_name(name)
    assert str(refused.value) == f"Invalid index name [{name}], {why}"


@pytest.mark.parametrize("name", ["books", ".hidden-ish", "test-weird-index-中文", "a" * 255, "logs-2024.01"])
def test_valid_index_names(name: str) -> None:
    assert core.name_problem(name) is None


def test_document_ids_are_at_most_512_bytes() -> None:
    assert core.id_problem("a" * 512) is None
    assert core.id_problem("a" * 513) == (
        f"id [{'a' * 513}] is too long, must be no longer than 512 bytes but was: 513"
    )


def test_settings_are_flat_strings_over_elasticsearch_defaults() -> None:
    flat = core.flat_settings({"number_of_replicas": 0, "index": {"refresh_interval": "1s"}, "index.hidden": True})
    assert flat == {"index.number_of_replicas": "0", "index.refresh_interval": "1s", "index.hidden": "true"}
    meta = IndexMeta("books", "u", 42, flat)
    assert meta.replicas == 0 and meta.hidden
    nested = core.nested_settings(meta.all_settings())
    assert nested == {
        "index": {
            "routing": {"allocation": {"include": {"_tier_preference": "data_content"}}},
            "number_of_shards": "1",
            "provided_name": "books",
            "creation_date": "42",
            "number_of_replicas": "0",
            "uuid": "u",
            "version": {"created": core.INDEX_VERSION_CREATED},
            "refresh_interval": "1s",
            "hidden": "true",
        }
    }
    assert IndexMeta("x", "u", 1).replicas == 1


def test_mappings_with_unknown_types_or_empty_names_are_refused() -> None:
    core.check_mappings({"properties": {"a": {"type": "keyword"}, "o": {"properties": {"b": {"type": "date"}}}}})
    with pytest.raises(core.MappingFailure) as unknown:
        core.check_mappings({"properties": {"city": {"type": "text", "fields": {"raw": {"type": "invalid"}}}}})
    assert str(unknown.value) == (
        "Failed to parse mapping: The mapper type [invalid] declared on field [raw] does not exist. It might have "
        "been created within a future version or requires a plugin to be installed. Check the documentation."
    )
    with pytest.raises(core.MappingFailure, match="runtime field \\[c\\]"):
        core.check_mappings({"runtime": {"c": {"type": "nope"}}})
    with pytest.raises(core.MappingFailure) as empty:
        core.check_mappings({"properties": {"": {"type": "keyword"}}})
    assert empty.value.cause == "field name cannot be an empty string"


def test_conditional_writes_conflict_with_elasticsearch_messages() -> None:
    doc = StoredDoc("1", {"a": 1}, seq_no=3, version=2)
    core.check_write(META, "1", doc, "index", Condition(3, 1))
    with pytest.raises(core.VersionConflict) as stale:
        core.check_write(META, "1", doc, "index", Condition(2, 1))
    assert str(stale.value) == (
        "[1]: version conflict, required seqNo [2], primary term [1]. "
        "current document has seqNo [3] and primary term [1]"
    )
    assert (stale.value.index, stale.value.uuid) == ("books", "uuid-1")
    with pytest.raises(core.VersionConflict, match="primary term \\[9\\]"):
        core.check_write(META, "1", doc, "index", Condition(3, 9))
    with pytest.raises(core.VersionConflict) as gone:
        core.check_write(META, "1", None, "index", Condition(1, 1))
    assert str(gone.value) == "[1]: version conflict, required seqNo [1], primary term [1]. but no document was found"
    with pytest.raises(core.VersionConflict) as exists:
        core.check_write(META, "1", doc, "create", None)
    assert str(exists.value) == "[1]: version conflict, document already exists (current version [2])"
    core.check_write(META, "1", None, "create", None)
    assert core.next_version(None) == 1 and core.next_version(doc) == 3


def test_half_given_conditions_are_invalid() -> None:
    assert core.condition_problem(None, None) is None
    assert core.condition_problem(1, 1) is None
    assert core.condition_problem(1, None) == "ifSeqNo is set, but primary term is [0]"
    assert core.condition_problem(None, 2) == "ifSeqNo is unassigned, but primary term is [2]"
    assert core.condition_problem(-3, 1) == "sequence number must be non negative. got [-3]."


def test_updates_merge_objects_and_null_overwrites() -> None:
    doc = StoredDoc("1", {"foo": "bar", "count": 1, "nested": {"one": 1, "two": 2}, "tip": "x"}, 0, 1)
    result, merged = core.apply_update(
        META, "1", doc, UpdateSpec(doc={"foo": "baz", "nested": {"one": 3}, "tip": None})
    )
    assert result == "updated"
    assert merged == {"foo": "baz", "count": 1, "nested": {"one": 3, "two": 2}, "tip": None}
    assert doc.source["nested"] == {"one": 1, "two": 2}  # the stored document is not changed in place


def test_an_update_that_changes_nothing_is_a_noop_unless_told_otherwise() -> None:
    doc = StoredDoc("1", {"foo": "bar", "n": None}, 0, 1)
    assert core.apply_update(META, "1", doc, UpdateSpec(doc={"foo": "bar", "n": None}))[0] == "noop"
    assert core.apply_update(META, "1", doc, UpdateSpec(doc={"foo": "bar"}, detect_noop=False))[0] == "updated"


def test_upserts_and_missing_documents() -> None:
    assert core.apply_update(META, "1", None, UpdateSpec(doc={"a": 1}, upsert={"b": 2})) == ("created", {"b": 2})
    assert core.apply_update(META, "1", None, UpdateSpec(doc={"a": 1}, doc_as_upsert=True)) == ("created", {"a": 1})
    with pytest.raises(core.DocMissing) as missing:
        core.apply_update(META, "7", None, UpdateSpec(doc={"a": 1}))
    assert str(missing.value) == "[7]: document missing"


def test_source_filtering() -> None:
    source = {"include": {"field1": "v1", "field2": "v2"}, "count": 1, "obj": {"a": {"b": 1}}}
    assert filter_source(source, [], []) is source
    assert filter_source(source, ["include.field1"], []) == {"include": {"field1": "v1"}}
    assert filter_source(source, ["include"], ["*.field2"]) == {"include": {"field1": "v1"}}
    assert filter_source(source, [], ["include", "obj.a"]) == {"count": 1, "obj": {}}
    assert filter_source(source, ["*.b"], []) == {"obj": {"a": {"b": 1}}}
    assert filter_source(source, ["co*"], []) == {"count": 1}


def test_expressions_resolve_over_visible_indices() -> None:
    metas = [IndexMeta(n, n, 1) for n in ("logs-1", "logs-2", "metrics")]
    metas.append(IndexMeta("secret", "s", 1, {"index.hidden": "true"}))

    def everyone(name: str) -> bool:
        return True

    def names(found: list[IndexMeta]) -> list[str]:
        return [m.name for m in found]

    assert names(core.resolve(["logs-*"], metas, Expand(), everyone)) == ["logs-1", "logs-2"]
    assert names(core.resolve([], metas, Expand(), everyone)) == ["logs-1", "logs-2", "metrics"]
    assert "secret" in names(core.resolve(["*"], metas, Expand(wildcards=frozenset({"all"})), everyone))
    assert names(core.resolve(["logs-*"], metas, Expand(), lambda n: n != "logs-2")) == ["logs-1"]
    assert core.resolve(["nope-*"], metas, Expand(), everyone) == []
    with pytest.raises(core.IndexMissing, match=r"no such index \[nope-\*\]"):
        core.resolve(["nope-*"], metas, Expand(allow_no_indices=False), everyone)
    with pytest.raises(core.IndexMissing, match=r"no such index \[gone\]"):
        core.resolve(["metrics", "gone"], metas, Expand(), everyone)
    assert names(core.resolve(["metrics", "gone"], metas, Expand(ignore_unavailable=True), everyone)) == ["metrics"]
