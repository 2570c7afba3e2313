"""Splink on a query-mode split: the peer the MASH matcher is benchmarked against.

Run with the Python of a Splink 5 environment (see ``bench/splink_env.py``), not the
project's: this file imports only the standard library, Splink and Splink's own
dependencies (DuckDB, pyarrow), never ``mash`` or ``bench``::

    python bench/splink_peer.py --split S.json --out R.json [--fields names,dob,address]

The agency's records and the split's queries are two tables linked ``link_only``. The
model is the one Splink's documentation builds for people (the ``historical_50k`` and
``febrl4`` examples): a forename/surname comparison with term-frequency adjustments on the
full name, the date-of-birth comparison, the UK postcode comparison, exact sex, and here
a string comparison of the free-text address line; where the split holds them, a level
for a name among the other side's aliases, one for a postcode among its previous
postcodes, and an edit-distance comparison per identifier (NHS number...). It is
trained the way the training guide recommends, unlabelled: the prior from deterministic
rules, u by random sampling (seeded), m by expectation maximisation over two blocking
rules, each m floored at one expected match (where no match in EM's pairs falls in a
level, EM drives its m towards 0 until Splink refuses the value: an identifier that never
differs for the same person, say). Every blocked pair is then scored with no threshold;
``--fields`` restricts the comparisons to some field groups (by default every one both
tables hold).

One configuration serves every split (``CONFIGURATIONS[0]``); should training or scoring
still fail numerically, or give a parameter or score that is not a finite number, the
next (documented beside it) is tried, and the results say under ``training`` which one
was used and why any before it failed, as well as each EM session's iterations and the
levels whose m the floor raised.

The truth (``person_id``) never enters Splink's tables: it is joined to the scored pairs
afterwards, to say per query the best match weight of any record, of its true record,
whether the true record is on top, and how many held queries' true records the blocking
rules reach at all.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import re
import sys
import time
import traceback
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEED = 20240616  # u sampling; everything else in training is deterministic
U_MAX_PAIRS = 2e6  # random pairs for u (the docs: 1e6 in the FEBRL demos, 1e7 or more)
EM_MAX_PAIRS = 1e6  # bound on each EM session's blocked pairs (hash-sampled, deterministic)
DETERMINISTIC_RECALL = 0.6  # guessed share of true pairs the deterministic rules find
FIELD_GROUPS = ("names", "dob", "sex", "postcode", "address", "identifiers")
IDENTIFIERS = ("nhs_number", "upn", "pnc_id")
# A UK postcode without its spaces: outward code, inward code.
UK_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")
RECORDS, QUERIES = "records", "queries"  # the two tables' source_dataset names


class PeerError(Exception):
    """A problem with the split or the arguments: one line, no traceback."""


# --- preparing the two tables -----------------------------------------------------------

def _text(value: Any) -> str | None:
    """Lower case without accents or apostrophes, other punctuation a space, words
    separated by one space; empty is NULL (Splink's null levels test IS NULL, so an empty
    string would otherwise count as a value)."""
    folded = unicodedata.normalize("NFKD", str(value or "").lower())
    plain = "".join(c for c in folded if not unicodedata.combining(c)).replace("'", "")
    return " ".join(re.sub(r"[^0-9a-z-]+", " ", plain).split()) or None


def _postcode(value: Any) -> str | None:
    """A UK postcode in its canonical form (``SW1A 1AA``), or None when not one."""
    m = UK_POSTCODE.match(re.sub(r"\s+", "", str(value or "").upper()))
    return f"{m.group(1)} {m.group(2)}" if m else None


def _many(value: Any) -> list[str]:
    return [p.strip() for p in str(value or "").split(";") if p.strip()]


def _identifier(value: Any) -> str | None:
    return re.sub(r"[^0-9A-Z]", "", str(value or "").upper()) or None


def _address_parts(address: str | None) -> dict[str, str | None]:
    """Fragments of the address line for blocking: the house number (a first word with a
    digit), the first two words (number and street) and the last word (a town, or
    FEBRL's Australian postcode)."""
    words = address.split() if address else []
    number = words[0] if words and any(c.isdigit() for c in words[0]) else None
    return {"address_number": number,
            "address_head": " ".join(words[:2]) if len(words) >= 2 else None,
            "address_tail": words[-1] if words else None}


def prepared(row: dict[str, str], uid: str) -> dict[str, Any]:
    """One record or query as a row of Splink's input: canonical, NULL for empty."""
    given, family = _text(row.get("given_name")), _text(row.get("family_name"))
    full = f"{given} {family}" if given and family else None
    variants = ([full] if full else []) + [v for v in map(_text, _many(row.get("aliases")))
                                           if v]
    dob = str(row.get("date_of_birth") or "").strip() or None
    address = _text(row.get("address"))
    sex = str(row.get("sex") or "").strip().upper()[:1] or None
    out: dict[str, Any] = {
        "unique_id": uid,
        "given_name": given,
        "family_name": family,
        "full_name": full,
        "name_variants": sorted(set(variants)) or None,
        "date_of_birth": dob,
        "sex": sex if sex in ("F", "M") else None,
        "postcode": _postcode(row.get("postcode")),
        "previous_postcodes": sorted({p for p in map(_postcode,
                                                     _many(row.get("previous_postcodes")))
                                      if p}) or None,
        "address": address,
        "address_tokens": sorted(set(address.split())) if address else None,
        **_address_parts(address),
    }
    for name in IDENTIFIERS:
        out[name] = _identifier(row.get(name))
    return out


def _present(rows: list[dict[str, Any]], column: str) -> bool:
    return any(r[column] for r in rows)


GROUP_COLUMNS = {"names": ("given_name", "family_name"), "dob": ("date_of_birth",),
                 "sex": ("sex",), "postcode": ("postcode",), "address": ("address",),
                 "identifiers": IDENTIFIERS}


def available_groups(records: list[dict[str, Any]], queries: list[dict[str, Any]],
                     wanted: list[str]) -> list[str]:
    """The field groups asked for that hold a value on both sides (a field only one side
    holds can never agree, so Splink could not estimate it)."""
    out = []
    for group in wanted:
        if any(_present(records, c) and _present(queries, c) for c in GROUP_COLUMNS[group]):
            out.append(group)
    return out


def arrow_table(rows: list[dict[str, Any]]) -> Any:
    """Rows as an Arrow table with explicit types (a column all NULL would otherwise be
    of type NULL, which DuckDB's string functions refuse)."""
    import pyarrow as pa

    lists = {"name_variants", "previous_postcodes", "address_tokens"}
    schema = pa.schema([(k, pa.list_(pa.string()) if k in lists else pa.string())
                        for k in rows[0]])
    return pa.Table.from_pylist(rows, schema=schema)


# --- the model --------------------------------------------------------------------------

def _address_comparison() -> Any:
    """The free-text address line: exact; a typo or two (Jaro-Winkler); most or some of
    its words shared (a word dropped, merged or moved: Jaccard of the word sets). Not
    Damerau-Levenshtein: on address-length strings it is some 100 times slower in DuckDB
    than Jaro-Winkler, and u sampling compares millions of pairs."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    # Jaccard |A & B| / |A | B| >= t is |A & B| >= t / (1 + t) * (|A| + |B|) for sets;
    # list_filter/list_contains on these short lists is some 6 times faster than
    # list_intersect.
    shared = ("len(list_filter(address_tokens_l, "
              "lambda w: list_contains(address_tokens_r, w)))")
    total = "(len(address_tokens_l) + len(address_tokens_r))"
    return cl.CustomComparison(
        output_column_name="address",
        comparison_description="address line: exact, a typo, words shared",
        comparison_levels=[
            cll.NullLevel("address"),
            cll.ExactMatchLevel("address"),
            cll.JaroWinklerLevel("address", 0.95),
            cll.CustomLevel(f"{shared} >= {0.6 / 1.6:.6f} * {total}",
                            "Jaccard of words >= 0.6"),
            cll.CustomLevel(f"{shared} >= {0.3 / 1.3:.6f} * {total}",
                            "Jaccard of words >= 0.3"),
            cll.ElseLevel(),
        ],
    )


def _postcode_comparison(previous: bool) -> Any:
    """Splink's UK postcode comparison; with previous postcodes held, a level for a
    postcode that is one of the other side's previous ones, just after the exact match."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    if not previous:
        return cl.PostcodeComparison("postcode")
    stock = cl.PostcodeComparison("postcode").create_comparison_levels()
    moved = cll.CustomLevel(
        "list_contains(previous_postcodes_l, postcode_r) OR "
        "list_contains(previous_postcodes_r, postcode_l)", "a previous postcode")
    return cl.CustomComparison(output_column_name="postcode",
                               comparison_levels=[*stock[:2], moved, *stock[2:]])


def _names_comparison(aliases: bool) -> Any:
    """Splink's forename/surname comparison, term frequencies on the full name; with
    aliases held, a level for a full name equal to one of the other side's names."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    stock = cl.ForenameSurnameComparison("given_name", "family_name",
                                         forename_surname_concat_col_name="full_name")
    if not aliases:
        return stock
    levels = stock.create_comparison_levels()
    alias = cll.ArrayIntersectLevel("name_variants", 1).configure(
        label_for_charts="a name or alias in common")
    return cl.CustomComparison(output_column_name="given_name_family_name",
                               comparison_levels=[*levels[:3], alias, *levels[3:]])


def model(groups: list[str], records: list[dict[str, Any]],
          queries: list[dict[str, Any]]) -> dict[str, Any]:
    """Comparisons, prediction blocking rules, deterministic rules (for the prior) and EM
    training rules for the field groups in use.

    The prediction rules are many narrow ones whose union should reach every true pair
    despite a typo in any one field (Splink's blocking guide): names exact or reversed, or
    one name with the other's initial or the year of birth; the date of birth; the first
    two words of the address; the house number with a name, or with the address's last
    word and an initial; the postcode; each identifier. They were chosen by the share of
    FEBRL's held queries whose true record they reach; none is as broad as a common street
    name or town alone, so the pairs stay in proportion on larger data.

    EM rules each leave out the comparisons they block on, so two are needed for every
    comparison to be estimated (the "round robin" of the training guide): the date of
    birth, and the full name (the training guide's own pair). The full name as its one
    column, so that Splink adjusts the session's prior by the weight of the level all its
    pairs fall in, exact match on full name; blocked on given and family name as two
    columns it would use the levels "family name only" and "given name only" instead and
    start EM from a prior some 50 times too small. Not the given name alone: pairs that
    share one grow with the square of the data, and on 20,000 records some 0.1% of them
    are the same person, the edge of what the guide says EM handles. Not the surname, the
    postcode or the address when names and date of birth are held: pairs that share those
    are mostly people of one household, and EM then learns "same household" rather than
    "same person"."""
    import splink.comparison_library as cl
    from splink import block_on

    names, dob, address = "names" in groups, "dob" in groups, "address" in groups
    postcode = "postcode" in groups
    year = "substr(date_of_birth, 1, 4)"
    comparisons: list[Any] = []
    blocking: list[Any] = []
    deterministic: list[Any] = []
    em: list[Any] = []
    if names:
        aliases = any(r["name_variants"] and len(r["name_variants"]) > 1 for r in records)
        comparisons.append(_names_comparison(aliases))
        blocking += [block_on("given_name", "family_name"),
                     "l.given_name = r.family_name AND l.family_name = r.given_name",
                     block_on("family_name", "substr(given_name, 1, 1)"),
                     block_on("given_name", "substr(family_name, 1, 1)")]
    if dob:
        comparisons.append(cl.DateOfBirthComparison("date_of_birth", input_is_string=True))
        blocking.append(block_on("date_of_birth"))
        em.append(block_on("date_of_birth"))
        if names:
            blocking += [block_on("family_name", year), block_on("given_name", year)]
            deterministic.append(block_on("given_name", "family_name", "date_of_birth"))
    if names:
        em.append(block_on("full_name"))
    if "sex" in groups:
        comparisons.append(cl.ExactMatch("sex"))
    if postcode:
        comparisons.append(_postcode_comparison(any(r["previous_postcodes"]
                                                    for r in records)))
        blocking.append(block_on("postcode"))
        if not (names and dob):
            em.append(block_on("postcode"))
        if names:
            deterministic.append(block_on("given_name", "family_name", "postcode"))
    if address:
        comparisons.append(_address_comparison())
        blocking.append(block_on("address_head"))
        if names:
            blocking += [
                block_on("address_number", "given_name"),
                block_on("address_number", "family_name"),
                "l.address_number = r.address_number AND "
                "(l.given_name = r.family_name OR l.family_name = r.given_name)",
                "l.address_number = r.address_number AND l.address_tail = r.address_tail "
                "AND (substr(l.given_name, 1, 1) = substr(r.given_name, 1, 1) OR "
                "substr(l.family_name, 1, 1) = substr(r.family_name, 1, 1))"]
            deterministic.append(block_on("given_name", "family_name", "address"))
        if not postcode and not (names and dob):
            em.append(block_on("address_head"))
    if "identifiers" in groups:
        for name in IDENTIFIERS:
            if _present(records, name) and _present(queries, name):
                comparisons.append(cl.DamerauLevenshteinAtThresholds(name, [1]))
                blocking.append(block_on(name))
                deterministic.insert(0, block_on(name))
    if not comparisons:
        raise PeerError("no field is held on both sides: nothing to compare")
    if not deterministic:
        deterministic = [block_on(*(GROUP_COLUMNS[g][0] for g in groups))]
    if len(em) < 2:
        raise PeerError(f"too few fields ({', '.join(groups)}) to train m by EM: at least "
                        "two of names, date of birth, postcode, address are needed")
    return {"comparisons": comparisons, "blocking": blocking,
            "deterministic": deterministic, "em": em[:3]}


# --- running ----------------------------------------------------------------------------

def _model_summary(linker: Any) -> dict[str, Any]:
    """Per comparison level: its label and the m, u and match weight Splink scores with.

    Read from the linker's settings object (private attributes: Splink has no public
    accessor), not from ``save_model_to_json``, which leaves out the m of a level no EM
    session saw among its pairs; Splink scores such a level with its default m, and
    ``m_trained`` is false for it."""
    settings = linker._settings_obj
    out: dict[str, Any] = {"probability_two_random_records_match":
                           settings._probability_two_random_records_match,
                           "comparisons": []}
    for comparison in settings.comparisons:
        levels = [{"label": level.label_for_charts, "sql": level.sql_condition,
                   "m": level.m_probability, "u": level.u_probability,
                   "match_weight": level._match_weight, "m_trained": level._m_is_trained,
                   "tf_adjustment_column": level._tf_adjustment_input_column_name}
                  for level in comparison._comparison_levels_excluding_null]
        out["comparisons"].append({"name": comparison.output_column_name,
                                   "levels": levels})
    return out


def _rule_sql(rule: Any) -> str:
    return rule if isinstance(rule, str) else rule.get_blocking_rule("duckdb").blocking_rule_sql


class _Collect(logging.Handler):
    """Keeps Splink's warnings (e.g. a level EM never saw) for the results, off stderr."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = " ".join(record.getMessage().replace("WARNING:", "").split())
        if message and message not in self.messages:
            self.messages.append(message)


# --- training ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Configuration:
    """How the model is trained: the same for every split, unless it fails numerically.

    ``m_floor``: in every M step of every EM session, a level's m is at least what one
    expected match in the session's pairs would give it (see ``_floored_m``).
    ``fix_lambda``: EM keeps the prior from the deterministic rules (adjusted by Splink
    for the session's blocking rule) instead of re-estimating it each iteration. The
    training guide finds that direct estimate better than EM's, and Splink's maintainers
    advise fixing it where pairs of one household can pass for one person (splink#1817);
    re-estimated, the full-name session's prior ran to 0.997 on the generator at high
    corruption, EM taking nearly every pair of namesakes for one person.
    ``max_iterations``: per EM session (Splink's default is 25)."""

    name: str
    description: str
    m_floor: bool
    fix_lambda: bool
    max_iterations: int


CONFIGURATIONS = (
    Configuration(
        "primary",
        "Splink's recommended sequence (prior from deterministic rules, u by random "
        "sampling, m by an EM round robin on date of birth and full name), the prior "
        "fixed during EM, each m floored at one expected match",
        m_floor=True, fix_lambda=True, max_iterations=25),
    Configuration(
        "fallback",
        "as primary, with EM stopped after 10 iterations a session: tried only when "
        "primary fails numerically",
        m_floor=True, fix_lambda=True, max_iterations=10),
)
M_FLOOR_EXPECTED_MATCHES = 1.0


class NumericalFailure(ArithmeticError):
    """A trained parameter or a score that is not a finite number."""


def _numerical_failures() -> tuple[type[BaseException], ...]:
    """What a numerical failure of training or scoring raises, for the next
    configuration to be tried: Splink refuses an m or u below 1e-300 (and other
    impossible values) with ValueError, Python's float arithmetic raises ArithmeticError
    (NumericalFailure among them: a non-finite parameter or score), DuckDB a DataError
    (a value out of range, a failed conversion)."""
    import duckdb

    return (ValueError, ArithmeticError, duckdb.DataError)


@dataclass
class _Floored:
    """The levels whose m the floor raised, per EM session: (comparison, gamma) to the
    number of iterations it did."""

    session: int = -1
    levels: dict[tuple[int, str, int], int] = field(default_factory=dict)


def _finite(value: Any) -> float:
    """A non-negative finite number, else 0 (EM's 0/0 for a column no pair holds)."""
    number = float(value) if isinstance(value, int | float) else 0.0
    return number if math.isfinite(number) and number > 0 else 0.0


@contextlib.contextmanager
def _floored_m(floored: _Floored, enabled: bool) -> Iterator[None]:
    """While training, floor each M step's m at one expected match per level.

    EM's M step sets a level's m to its share of the session's expected matches. When
    no match in the training pairs falls in a level (an identifier that never disagrees
    for the same person, a postcode that is either equal or from another area), the
    maximum-likelihood m is 0 and EM approaches it geometrically, past float64's range:
    Splink 5 then refuses the value (``m_probability ... is below the minimum allowed
    value of 1e-300``). EM cannot tell such an m from zero with fewer than one expected
    match at the level, so it is given that one match: m_k = max(c_k, 1) / sum_j
    max(c_j, 1), c the expected match counts (Splink's own rule for u in its early
    versions, splink#162: at least one comparison per level). Levels the floor raised
    are recorded.

    Splink has no public hook into the M step: this wraps
    ``splink.internals.expectation_maximisation.compute_proportions_for_new_parameters``
    (Splink 5), restored on exit."""
    if not enabled:
        yield
        return
    import splink.internals.expectation_maximisation as em

    original = getattr(em, "compute_proportions_for_new_parameters", None)
    if original is None:
        raise PeerError("this Splink has no compute_proportions_for_new_parameters: the "
                        "m floor cannot be applied (the peer is written for Splink 5)")

    def proportions(df_params: Any) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = original(df_params)
        totals = dict(df_params.db_api.duckdb_con.query(
            f"select output_column_name, sum(m_count) from {df_params.physical_name} "
            "where comparison_vector_value != -1 group by 1").fetchall())
        columns: dict[str, list[dict[str, Any]]] = {}
        for r in records:
            if r["output_column_name"] != "_probability_two_random_records_match":
                columns.setdefault(r["output_column_name"], []).append(r)
        for name, levels in columns.items():
            total = _finite(totals.get(name))  # 0 when no pair holds a value: uniform
            expected = [_finite(r["m_probability"]) * total for r in levels]
            raised = [c < M_FLOOR_EXPECTED_MATCHES for c in expected]
            if not any(raised):
                continue
            counts = [max(c, M_FLOOR_EXPECTED_MATCHES) for c in expected]
            for r, count, was_raised in zip(levels, counts, raised, strict=True):
                r["m_probability"] = count / sum(counts)
                if was_raised:
                    key = (floored.session, name, int(r["comparison_vector_value"]))
                    floored.levels[key] = floored.levels.get(key, 0) + 1
        return records

    em.compute_proportions_for_new_parameters = proportions
    try:
        yield
    finally:
        em.compute_proportions_for_new_parameters = original


@dataclass
class _Attempt:
    config: Configuration
    con: Any
    linker: Any
    predictions: Any
    spec: dict[str, Any]
    training_seconds: float
    prediction_seconds: float
    training: dict[str, Any]


def _check_finite(linker: Any, con: Any, table: str) -> None:
    """NumericalFailure unless the prior, every m, u and weight, and every score are
    finite numbers (a NaN would otherwise rank silently)."""
    settings = linker._settings_obj
    prior = settings._probability_two_random_records_match
    if not (isinstance(prior, float) and 0.0 < prior < 1.0):
        raise NumericalFailure(f"probability_two_random_records_match is {prior}")
    for comparison in settings.comparisons:
        for level in comparison._comparison_levels_excluding_null:
            for what in ("m_probability", "u_probability", "_match_weight"):
                value = getattr(level, what)
                if value is None or not math.isfinite(value):
                    raise NumericalFailure(f"{comparison.output_column_name}, level "
                                           f"{level.label_for_charts!r}: {what} is {value}")
    bad = con.execute(f"select count(*) from {table} where match_weight is null or "
                      "not isfinite(match_weight)").fetchall()[0][0]
    if bad:
        raise NumericalFailure(f"{bad} scored pairs have no finite match weight")


def _attempt(config: Configuration, groups: list[str], records: list[dict[str, Any]],
             queries: list[dict[str, Any]], *, threads: int) -> _Attempt:
    """Train with one configuration on a DuckDB connection of its own, score, check."""
    import duckdb
    from splink import DuckDBAPI, Linker, SettingsCreator

    spec = model(groups, records, queries)
    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        comparisons=spec["comparisons"],
        blocking_rules_to_generate_predictions=spec["blocking"],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
        max_iterations=config.max_iterations,
    )
    con = duckdb.connect(config={"threads": threads})
    try:
        db_api = DuckDBAPI(connection=con)
        tables = [db_api.register(arrow_table(records), dataset_display_name=RECORDS),
                  db_api.register(arrow_table(queries), dataset_display_name=QUERIES)]
        started = time.perf_counter()
        linker = Linker(tables, settings, log_level=logging.WARNING)
        linker.training.estimate_probability_two_random_records_match(
            spec["deterministic"], recall=DETERMINISTIC_RECALL)
        linker.training.estimate_u_using_random_sampling(max_pairs=U_MAX_PAIRS, seed=SEED)
        floored = _Floored()
        sessions = []
        with _floored_m(floored, config.m_floor):
            for i, rule in enumerate(spec["em"]):
                floored.session = i
                session = linker.training.estimate_parameters_using_expectation_maximisation(
                    rule, estimate_without_term_frequencies=True, max_pairs=EM_MAX_PAIRS,
                    fix_probability_two_random_records_match=config.fix_lambda)
                history = session._core_model_settings_history
                iterations = len(history) - 1
                sessions.append({
                    "rule": _rule_sql(rule), "iterations": iterations,
                    "stopped_at_max_iterations": iterations >= config.max_iterations,
                    # the prior among the session's pairs: Splink's adjustment of the
                    # deterministic estimate for the rule, and where EM left it
                    "session_prior_start":
                        history[0].probability_two_random_records_match,
                    "session_prior_end":
                        history[-1].probability_two_random_records_match})
        training_seconds = time.perf_counter() - started

        started = time.perf_counter()
        predictions = linker.inference.predict(warning_mode="never")
        prediction_seconds = time.perf_counter() - started
        _check_finite(linker, con, predictions.physical_name)
    except BaseException:
        con.close()
        raise
    labels = {(c.output_column_name, level.comparison_vector_value): level.label_for_charts
              for c in linker._settings_obj.comparisons
              for level in c._comparison_levels_excluding_null}
    for (i, name, gamma), n in sorted(floored.levels.items()):
        sessions[i].setdefault("m_floored", []).append(
            {"comparison": name, "level": labels.get((name, gamma), str(gamma)),
             "iterations": n})
    training = {"m_floor_expected_matches": M_FLOOR_EXPECTED_MATCHES if config.m_floor
                else None, "fix_lambda_in_em": config.fix_lambda,
                "max_iterations": config.max_iterations, "em_sessions": sessions}
    return _Attempt(config, con, linker, predictions, spec, training_seconds,
                    prediction_seconds, training)


def run(doc: dict[str, Any], fields: list[str], *, threads: int = 1) -> dict[str, Any]:
    """Train Splink on the split (unlabelled), score every blocked pair, and join the
    truth afterwards. One DuckDB thread by default, so that the results do not depend on
    how the work is scheduled.

    Training is tried with each of ``CONFIGURATIONS`` in turn until one gives a model
    and scores that are all finite numbers: the results say which one was used, and why
    any before it failed."""
    import duckdb
    import pyarrow as pa
    import splink

    if not isinstance(doc, dict):
        raise PeerError("the split is not a JSON object (Split.write writes one)")
    if not doc.get("records"):
        raise PeerError("the split has no records")
    if not doc.get("queries"):
        raise PeerError("the split has no queries")
    for what, rows, keys in (("record", doc["records"], ("record_id",)),
                             ("query", doc["queries"], ("query_id", "kind", "half"))):
        for i, row in enumerate(rows):
            missing = [k for k in keys if not isinstance(row, dict) or row.get(k) in (None, "")]
            if missing:
                raise PeerError(f"{what} {i} has no {', '.join(missing)}")
    if bad := {q["kind"] for q in doc["queries"]} - {"held", "stranger", "household"}:
        raise PeerError(f"unknown query kind(s) {', '.join(sorted(bad))}")
    records = [prepared(r, str(r["record_id"])) for r in doc["records"]]
    queries = [prepared(q, str(q["query_id"])) for q in doc["queries"]]
    if len({r["unique_id"] for r in records}) != len(records):
        raise PeerError("record_id is not unique among the split's records")
    if len({q["unique_id"] for q in queries}) != len(queries):
        raise PeerError("query_id is not unique among the split's queries")
    groups = available_groups(records, queries, fields)
    model(groups, records, queries)  # a PeerError about the fields before any training

    collect = _Collect()
    splink_logger = logging.getLogger("splink")
    splink_logger.addHandler(collect)
    splink_logger.propagate = False

    failed: list[dict[str, str]] = []
    attempt: _Attempt | None = None
    for config in CONFIGURATIONS:
        try:
            attempt = _attempt(config, groups, records, queries, threads=threads)
            break
        except _numerical_failures() as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            failed.append({"configuration": config.name,
                           "error": f"{type(exc).__name__}: {first}"})
            print(f"splink_peer: the {config.name} configuration failed "
                  f"({failed[-1]['error']})", file=sys.stderr)
    if attempt is None:
        raise PeerError("every training configuration failed: " + "; ".join(
            f"{f['configuration']}: {f['error']}" for f in failed))
    config, con, linker, spec = attempt.config, attempt.con, attempt.linker, attempt.spec
    predictions = attempt.predictions
    training_seconds, prediction_seconds = attempt.training_seconds, attempt.prediction_seconds

    # The truth, joined only now, outside Splink's tables.
    con.register("truth_records", pa.table({
        "record_id": [str(r["record_id"]) for r in doc["records"]],
        "person_id": [str(r.get("person_id", "")) for r in doc["records"]]}))
    con.register("truth_queries", pa.table({
        "query_id": [str(q["query_id"]) for q in doc["queries"]],
        "person_id": [str(q.get("person_id", "")) for q in doc["queries"]],
        "kind": [q["kind"] for q in doc["queries"]]}))
    table = predictions.physical_name
    pairs = f"""
        select case when source_dataset_l = '{QUERIES}' then unique_id_l
                    else unique_id_r end as query_id,
               case when source_dataset_l = '{QUERIES}' then unique_id_r
                    else unique_id_l end as record_id,
               match_weight, match_key
        from {table}"""
    true_pair = "r.person_id = q.person_id and q.kind = 'held'"
    rows = con.execute(f"""
        with p as ({pairs})
        select q.query_id,
               max(p.match_weight) as best_any,
               max(p.match_weight) filter (where {true_pair}) as best_true,
               min(cast(p.match_key as integer)) filter (where {true_pair}) as first_rule
        from truth_queries q
        left join p on p.query_id = q.query_id
        left join truth_records r on r.record_id = p.record_id
        group by q.query_id""").fetchall()
    by_query = {row[0]: row[1:] for row in rows}
    n_pairs = con.execute(f"select count(*) from {table}").fetchone()[0]
    per_rule = dict(con.execute(
        f"select cast(match_key as integer), count(*) from {table} group by 1").fetchall())

    out_queries = []
    held = reached = 0
    first_reached: dict[int, int] = {}
    for q in doc["queries"]:
        best_any, best_true, first_rule = by_query[str(q["query_id"])]
        if q["kind"] == "held":
            held += 1
            if best_true is not None:
                reached += 1
                first_reached[first_rule] = first_reached.get(first_rule, 0) + 1
        out_queries.append({
            "query_id": q["query_id"], "kind": q["kind"], "half": q["half"],
            "best_any": best_any, "best_true": best_true,
            "top_is_true": best_true is not None and best_true >= best_any})
    rules = [{"rule": _rule_sql(rule), "pairs": per_rule.get(i, 0),
              "held_true_first_reached": first_reached.get(i, 0)}
             for i, rule in enumerate(spec["blocking"])]
    return {
        "peer": "splink", "splink_version": splink.__version__,
        "duckdb_version": duckdb.__version__, "duckdb_threads": threads,
        "split": doc.get("name"), "records": len(records), "queries": out_queries,
        "fields": groups,
        "training_seconds": round(training_seconds, 3),
        "prediction_seconds": round(prediction_seconds, 3),
        "seconds_per_query": prediction_seconds / len(queries),
        "seconds_per_query_with_training":
            (training_seconds + prediction_seconds) / len(queries),
        "pairs": n_pairs,
        "blocking": {"held": held, "reached": reached,
                     "recall": reached / held if held else None, "rules": rules},
        "settings": {
            "link_type": "link_only", "u_seed": SEED, "u_max_pairs": U_MAX_PAIRS,
            "em_max_pairs": EM_MAX_PAIRS,
            "comparisons": [c.get_comparison("duckdb").human_readable_description
                            for c in spec["comparisons"]],
            "blocking_rules_to_generate_predictions": [_rule_sql(r) for r in spec["blocking"]],
            "deterministic_rules": [_rule_sql(r) for r in spec["deterministic"]],
            "deterministic_recall": DETERMINISTIC_RECALL,
            "em_blocking_rules": [_rule_sql(r) for r in spec["em"]],
        },
        "training": {"configuration": config.name, "description": config.description,
                     "failed_configurations": failed, **attempt.training},
        "model": _model_summary(linker),
        "warnings": collect.messages,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", required=True, type=Path, help="split JSON (Split.write)")
    parser.add_argument("--out", required=True, type=Path, help="results JSON to write")
    parser.add_argument("--threads", type=int, default=1,
                        help="DuckDB threads (default 1: reproducible to the last bit)")
    parser.add_argument("--fields", default=",".join(FIELD_GROUPS),
                        help=f"field groups to compare (default all held: "
                             f"{','.join(FIELD_GROUPS)})")
    args = parser.parse_args(argv)
    try:
        fields = [f.strip() for f in args.fields.split(",") if f.strip()]
        unknown = sorted(set(fields) - set(FIELD_GROUPS))
        if unknown:
            raise PeerError(f"unknown field group(s) {', '.join(unknown)} "
                            f"(known: {', '.join(FIELD_GROUPS)})")
        try:
            doc = json.loads(args.split.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PeerError(f"cannot read the split {args.split}: {exc}") from exc
        if args.threads < 1:
            raise PeerError("--threads must be at least 1")
        try:
            result = run(doc, fields, threads=args.threads)
        except PeerError:
            raise
        except Exception as exc:  # Splink or DuckDB: say what, keep the detail for stderr
            traceback.print_exc(file=sys.stderr)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise PeerError(f"Splink failed: {type(exc).__name__}: {first}") from exc
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(args.out.suffix + ".tmp")
        tmp.write_text(json.dumps(result), encoding="utf-8")
        tmp.replace(args.out)
    except PeerError as exc:
        print(f"splink_peer: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
