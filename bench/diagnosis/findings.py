"""Evidence in a technician's words: plain sentences, near-identical ones grouped with a count.

The verdict JSON keeps every evidence record as the tests wrote it (notes, test ids, likelihood
ratios); this module turns those records into the few findings a repair technician reads first
("2 of 3 swipes failed: parity error on track 1"), and says what ``code01_origin`` means.
Everything it returns has passed ``posbench.core.masking.scrub``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from posbench.drivers import registry
from posbench.core.masking import scrub
from posbench.diagnosis.verdict import Cause, EvidenceItem, ReadPath, Verdict, VerdictMeasurement

KEY_FINDINGS = 3
"""At most this many findings per cause lead a report; the rest are one click away."""

PATH_NOUN = {"swipe": "swipes", "tap": "taps", "chip": "chip reads", "sale_swipe": "swiped sales",
             "sale_insert": "chip sales", "sale_tap": "contactless sales"}
"""What one read of each read path is called (``read_paths`` keys of the verdict JSON)."""

TRACK_REASON = {"no_data": "no data", "start_sentinel": "no start sentinel", "end_sentinel": "no end sentinel",
                "parity": "parity error", "lrc": "checksum (LRC) error", "format": "garbled format",
                "luhn": "bad check digit", "unreadable": "unreadable"}
"""``t<track>_<reason>`` read failures (``posbench.drivers.card.tracks.REASONS``)."""

REASON = {
    "timeout": "no read (timed out)", "mismatch": "wrong data read", "no_card": "card not detected",
    "no_atr": "the chip did not answer", "luhn": "bad card number check digit",
    "wrong_df_name": "wrong card application", "bad_fci": "wrong card application data",
    "app_restart": "the payment app restarted", "no_keys": "no keys loaded", "no_config": "no configuration loaded",
    "kernel_error": "EMV kernel error", "host_timeout": "the host did not answer in time",
    "host_format": "garbled host message", "host_unreachable": "host unreachable", "chip_error": "chip error",
    "unreadable": "card unreadable", "unstated": "no reason given",
}
"""Failure reasons the unit or a read test reports, in words."""

MEASUREMENT = {
    "app_restarts": "payment app restarts", "arp_macs": "devices answering for the unit's address",
    "brownout_records_added": "journal records added by the brownout sale",
    "brownout_recovered": "unit recovered after the brownout", "clock_drift_s": "clock drift",
    "cold_boot_s": "cold boot time", "config_checksum_matches": "configuration checksum matches",
    "config_lost": "configuration lost by power cycles", "ecr_latency_slope_ms_per_cmd":
    "reply time growth per command on the ECR link", "ecr_naks": "refused frames (NAK) on the ECR link",
    "ecr_reply_p95_s": "ECR link reply time (95th percentile)", "ecr_success_rate": "ECR commands answered",
    "err_app": "payment app error counter", "err_comm": "communication error counter",
    "err_reader": "card reader error counter", "failed_boots": "boots that failed",
    "firmware_at_least_minimum": "firmware at least the minimum version", "firmware_version": "firmware version",
    "free_memory_kib": "free memory", "host_port_state": "the host's port seen from the bench",
    "keys_missing": "payment keys missing", "locks": "times the terminal locked itself",
    "log_corrupted": "damaged journal records", "log_records_read": "journal records read",
    "log_sequence_gaps": "gaps in the journal's numbering", "maintenance_age_days": "days since maintenance",
    "peak_current_a": "peak current under load", "restarts_since_power_on": "app restarts since power-on",
    "sale_host_answered_rate": "sales the host answered", "slow_boots": "slow boots",
    "soak_cycles_missed": "power cycles the unit did not come back from", "supply_sag_v": "supply sag under load",
    "terminal_01_count": "sales the unit itself answered with code 01", "terminal_status": "terminal status",
    "unreversed_sales": "sales left unreversed after the brownout", "usb_drops": "USB reader drop-outs",
    "usb_enumerate_s": "USB reader enumeration time",
}
"""Measurement names (the HIL suite's declarations) in a technician's words."""
_ECHO = {"loss": "echoes lost", "p95_s": "echo time (95th percentile)", "reconnects": "connections re-opened"}
_UNIT_WORDS = {"s": " s", "V": " V", "A": " A", "KiB": " KiB", "days": " days", "ms/command": " ms per command"}

_NODE = re.compile(r"^[\w./-]+\.py::\S+?: |^HIL suite \([^)]*\): ")
_SILENT = re.compile(r"no ENQ|no ACK|no reply|did not answer|not answer|timed out|no answer", re.I)


@dataclass
class Finding:
    """One plain sentence standing for ``count`` evidence records (strongest ``ratio`` first)."""

    text: str
    ratio: float
    """The strongest likelihood ratio among its records."""
    records: list[EvidenceItem] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    """What the grouped records were about (the commands that went unanswered, say)."""

    @property
    def count(self) -> int:
        return len(self.records)

    @property
    def weight(self) -> float:
        """How far its records together moved the cause's odds (sum of log likelihood ratios)."""
        return sum(math.log(max(float(r.ratio), 1e-12)) for r in self.records)

    @property
    def label(self) -> str:
        """The sentence with what it covers and how many records it stands for (``×5``)."""
        about = f" ({', '.join(self.subjects[:4])}{', ...' if len(self.subjects) > 4 else ''})" \
            if self.subjects else ""
        return self.text + about + (f" ×{self.count}" if self.count > 1 else "")


def reason_words(code: str) -> str:
    """A failure reason code in words: ``t2_parity`` -> "parity error on track 2"."""
    if m := re.fullmatch(r"t(\d)_(\w+)", code):
        return f"{TRACK_REASON.get(m.group(2), m.group(2).replace('_', ' '))} on track {m.group(1)}"
    if m := re.fullmatch(r"sw_(\w+)", code):
        return f"card refused (status {m.group(1)})"
    for protocol in registry.names():  # a protocol's own read failure code (``codes.sale_read_failure``)
        if words := registry.codes(protocol).read_failure_words(code):
            return words
    if code.startswith("atr_"):
        return "bad answer from the chip"
    return REASON.get(code, code.replace("_", " "))


def _counted(reasons: dict[str, int]) -> str:
    items = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(reason_words(k) + (f" ×{n}" if n > 1 else "") for k, n in items)


def _read_path(path: str, failures: object, trials: object, reasons: dict[str, int]) -> str:
    noun = PATH_NOUN.get(path, f"{path.replace('_', ' ')} reads")
    text = f"{failures} of {trials} {noun} failed"
    if reasons:
        text += ": " + _counted(reasons)
    return text


def _limit_words(limit: str) -> str:
    if m := re.fullmatch(r"<= (\S+)", limit):
        return f"at most {m.group(1)} allowed"
    if m := re.fullmatch(r">= (\S+)", limit):
        return f"at least {m.group(1)} needed"
    if m := re.fullmatch(r"== (\S+)", limit):
        return f"should be {m.group(1)}"
    return f"limit {limit}" if limit else ""


def measurement_name(name: str) -> str:
    """A measurement's name in words: ``sale_host_answered_rate`` -> "sales the host answered"."""
    if name in MEASUREMENT:
        return MEASUREMENT[name]
    if name.endswith("_sprt_verdict"):
        path = name.removesuffix("_sprt_verdict")
        return f"{PATH_NOUN.get(path, path.replace('_', ' ') + ' reads')} (read test)"
    if m := re.fullmatch(r"echo_(loss|p95_s|reconnects)_(bench|unit)", name):
        return f"{_ECHO[m.group(1)]} {'from the bench' if m.group(2) == 'bench' else 'through the unit'}"
    if m := re.fullmatch(r"component_(.+)_allowed", name):
        return f"version of component {m.group(1)} allowed"
    return name.removesuffix("_s").replace("_", " ")


def _amount(value: object, unit: str) -> str:
    if isinstance(value, str) and unit not in ("", "bool"):
        try:
            value = float(value)  # a value read back from a note
        except ValueError:
            pass
    if unit == "ratio" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{float(value):.0%}"
    if unit == "bool" or isinstance(value, bool):
        return "yes" if str(value).lower() in ("true", "1", "1.0") else "no"
    if isinstance(value, float):
        value = f"{value:g}"
    return f"{value}{_UNIT_WORDS.get(unit, '')}"


def measurement_sentence(m: VerdictMeasurement) -> str:
    """A measurement of the verdict JSON (name, value, unit, limit) in words, with its limit:
    ``sale_host_answered_rate = 0.875 ratio, limit >= 1.0`` -> "sales the host answered: 88%
    (at least 100% needed)"."""
    unit = str(m.unit or "")
    limit = str(m.limit or "")
    said = ""
    if lm := re.fullmatch(r"(<=|>=|==) (\S+)", limit):
        try:
            bound = _amount(float(lm.group(2)) if unit not in ("", "bool") else lm.group(2), unit)
        except ValueError:
            bound = lm.group(2)
        said = {"<=": "at most {} allowed", ">=": "at least {} needed", "==": "should be {}"}[lm.group(1)].format(bound)
    elif lm := re.fullmatch(r"(\S+) \.\. (\S+)", limit):
        said = f"between {lm.group(1)} and {lm.group(2)}{_UNIT_WORDS.get(unit, '')} needed"
    elif limit:
        said = f"limit {limit}"
    return f"{measurement_name(m.name)}: {_amount(m.value, unit)}" + (f" ({said})" if said else "")


def _sale_details(details: str) -> str:
    """``01 shown for 'app_restart' (STAN 1); 05: card unreadable`` -> the distinct reasons."""
    found: dict[str, int] = {}
    for part in details.split("; "):
        if m := re.search(r"shown for '([^']*)'", part):
            word = reason_words(m.group(1) or "unstated")
        elif m := re.fullmatch(r"\w\w: (.+)", part.strip()):
            word = reason_words(m.group(1))
        else:
            word = part.strip()
        found[word] = found.get(word, 0) + 1
    return ", ".join(found)


def sentence(record: EvidenceItem, read_paths: dict[str, ReadPath] | None = None) -> tuple[str, str]:
    """One evidence record of a verdict as (plain sentence, what it is about, or "")."""
    note = " ".join(str(record.note).split())
    measurement = str(record.measurement or "")
    if measurement.endswith("_sprt_verdict"):
        path = measurement.removesuffix("_sprt_verdict")
        if stats := (read_paths or {}).get(path):
            return _read_path(path, stats.failures, stats.trials, stats.reasons), ""
        if m := re.search(r"(\d+)/(\d+) failed", note):
            listed = re.search(r"failures: ([^;]*)", note)
            reasons = {k: int(n) for k, _, n in (item.rpartition(" ") for item in
                                                 (listed.group(1).split(", ") if listed else [])) if k}
            return _read_path(path, m.group(1), m.group(2), reasons), ""
    if m := re.match(r"the unit failed (\d+) of (\d+) sales itself: (.*)", note):
        return f"the unit failed {m.group(1)} of {m.group(2)} sales itself: {_sale_details(m.group(3))}", ""
    if m := re.match(r"host log shows field 39 = 01 for (\d+) of (\d+) sales", note):
        return (f"the card issuer's host answered 01 in {m.group(1)} of {m.group(2)} sales and the unit "
                "showed just that"), ""
    unhandled = note.removeprefix("unhandled: ").removeprefix("terminal: ")
    if m := re.match(r"(.+?): (?:the )?unit did not answer(?: \([^)]*\))?(.*)", unhandled):
        tail = m.group(2).strip(" ,;:")
        return "the unit stopped answering" + (f", {tail}" if tail else ""), m.group(1)
    if note.startswith("unhandled: "):
        if _SILENT.search(unhandled):
            return "the unit stopped answering", unhandled.split(":")[0] if ":" in unhandled else ""
        return f"a command failed: {unhandled}", ""
    if m := re.search(r"while the supply sagged to ([\d.]+) V(?: \(unit minimum ([\d.]+) V\))?", note):
        return f"the unit failed as the supply sagged to {m.group(1)} V" + (
            f" (minimum {m.group(2)} V)" if m.group(2) else ""), ""
    if m := re.match(r"(.+?) while the supply held steady", note):
        return f"{m.group(1)} on a steady supply", ""
    if m := re.match(r"sale of \S+: the reply arrived corrupted", note):
        return "a sale's reply arrived corrupted", ""
    text = re.sub(r"\s*\(STAN[^)]*\)|;\s*SPRT p0=.*$", "", note)
    value = record.value
    if measurement and value is not None and not re.search(r"\d", text):  # a bare label: say the value
        limit = _limit_words(str(record.limit or ""))
        text += f": {value}" + (f" ({limit})" if limit else "")
    return text or measurement.replace("_", " "), ""


def group(evidence: list[EvidenceItem], read_paths: dict[str, ReadPath] | None = None) -> list[Finding]:
    """Every record as a finding; identical or near-identical sentences (they differ only in
    numbers) are one finding with a count. Strongest first: by the weight of all its records."""
    found: dict[str, Finding] = {}
    for record in sorted(evidence, key=lambda e: -float(e.ratio)):
        text, subject = sentence(record, read_paths)
        text, subject = scrub(text), scrub(subject)
        key = re.sub(r"\d+(\.\d+)?", "#", text.lower())
        item = found.get(key)
        if item is None:
            item = found[key] = Finding(text, float(record.ratio))
        item.records.append(record)
        if subject and subject not in item.subjects:
            item.subjects.append(subject)
    return sorted(found.values(), key=lambda f: (-f.weight, -f.ratio))


def key_findings(cause: Cause, doc: Verdict, limit: int = KEY_FINDINGS) -> list[Finding]:
    """The cause's strongest findings for it (their records together for it), at most ``limit``."""
    return [f for f in group(cause.evidence, doc.read_paths) if f.weight > 0][:limit]


def code01_sentence(doc: Verdict) -> str:
    """What ``code01_origin`` says, in words, with the number of sales it rests on when known."""
    origin = doc.code01_origin
    sales = doc.code01_sales
    if doc.unit.kind == "reader":
        return ("code 01 does not apply to a reader alone: it is a payment terminal's answer; the reader "
                "is judged by its reads, its USB and its power")
    untold = code01_untold(doc)
    if origin in ("terminal", "issuer"):
        n = sum(o.origin == origin for o in doc.code01)
        counted = f"{n} of {sales} sales" if sales is not None else f"{n} sale{'s' if n != 1 else ''}"
        more = f"; not told for the rest: {untold}" if untold else ""
        if origin == "terminal":
            return f"the unit showed code 01 itself in {counted}: the host never sent it" + more
        return f"code 01 came from the card issuer in {counted}: the host sent it, the unit showed it" + more
    if origin == "none" and untold:
        return f"code 01 not checked: {untold}"
    if origin == "none":
        ran = any("test_code01_origin" in t.nodeid and t.outcome in ("passed", "failed") for t in doc.tests)
        if sales == 0 or (sales is None and not ran):
            return "code 01 not checked: no sale could be run"
        return "no code 01 reproduced" + (f" in {sales} sale{'s' if sales != 1 else ''}" if sales else "")
    return f"code 01 origin: {origin or 'unknown'}"


def code01_untold(doc: Verdict) -> str:
    """Why the origin of a code 01 the unit showed could not be told ("" when it could): the
    code 01 test lists ``terminal_01_count`` unmeasured with the reason."""
    return next((u.why for u in doc.unmeasured
                 if u.measurement == "terminal_01_count" and "test_code01_origin" in u.test), "")


def bench_errors(doc: Verdict) -> list[str]:
    """The bench errors without the test ids they came from, identical ones once with a count."""
    counted: dict[str, int] = {}
    for error in doc.bench_errors:
        text = scrub(_NODE.sub("", str(error)))
        counted[text] = counted.get(text, 0) + 1
    return [text + (f" ×{n}" if n > 1 else "") for text, n in counted.items()]
