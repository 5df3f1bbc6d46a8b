"""The calibration arithmetic: confusion, top-1, false-fault rate, reliability bins."""
from posbench.run.calibrate import Case, Outcome, default_pairs, markdown, matrix, merge, score
from posbench.run.calibrate import page as calibrate_page


def out(faults, verdict, causes, seed=1):
    return Outcome(Case(tuple(faults), seed), 1 if verdict == "fault" else 0, verdict, causes)


def test_matrix_has_every_single_fault_healthy_units_and_pairs():
    cases = matrix(["msr_head", "application"], [0.3, 1.0], [1, 2], [7, 8, 9], [("msr_head", "application")])
    singles = [c for c in cases if len(c.faults) == 1]
    assert len(singles) == 2 * 2 * 2
    assert sum(1 for c in cases if not c.faults) == 3
    assert [c.truth for c in cases if len(c.faults) == 2] == [frozenset({"msr_head", "application"})]


def test_default_pairs_cross_groups_and_skip_causes_that_do_not_blame_the_unit():
    pairs = default_pairs(["msr_head", "application", "issuer_referral", "data_loss"])
    assert all("issuer_referral" not in p for p in pairs)
    assert len(pairs) == 3  # hardware, software, human: three pairs of groups


def test_scores():
    outcomes = [
        out([("msr_head", 0.3)], "fault", [("msr_head", 0.9)]),
        out([("msr_head", 1.0)], "fault", [("application", 0.7), ("msr_head", 0.6)]),
        out([("msr_head", 0.1)], "pass", []),            # below 0.3: not scored for top-1
        out([], "pass", []),
        out([], "fault", [("resources", 0.55)]),
        out([("msr_head", 1.0), ("application", 1.0)], "fault", [("msr_head", 0.99), ("application", 0.98)]),
    ]
    s = score(outcomes)
    assert (s.top1, s.top1_cases) == (0.5, 2)
    assert (s.false_fault_rate, s.healthy_cases) == (0.5, 2)
    assert (s.pair_both, s.pair_cases) == (1.0, 1)
    assert s.confusion["msr_head"]["application"] == 1 and s.confusion["healthy"]["(none)"] == 1
    by_bin = {lo: (n, observed) for lo, _, n, _, observed in s.reliability}
    assert by_bin[0.5] == (1, 0.0)       # resources 0.55 on a healthy unit
    assert by_bin[0.6] == (1, 1.0)       # msr_head 0.6, injected
    assert by_bin[0.7] == (1, 0.0)       # application 0.7 on a unit without it
    section = markdown(s, outcomes, "zvt")
    page = calibrate_page([section], outcomes, "posbench calibrate --seeds 1", 60.0)
    assert "posbench calibrate --seeds 1" in page and "| top-1 accuracy" in page
    assert "## Protocol `zvt`" in page and "Runs the diagnosis got wrong" in page


def test_undecidable_causes_are_named_per_protocol():
    case = Case((("msr_head", 1.0),), 1, "zvt")
    outcomes = [Outcome(case, 0, "pass", [], 1.0, {"resources": "the zvt protocol cannot report its free memory"})]
    section = markdown(score(outcomes), outcomes, "zvt")
    assert "| resources | the zvt protocol cannot report its free memory |" in section


def test_a_shape_section_replaces_its_own_and_keeps_the_others():
    case = Case((("power_supply", 1.0),), 1, "zvt-tcp", "zvt-generic")
    outcomes = [Outcome(case, 1, "fault", [("power_supply", 0.99)])]
    section = markdown(score(outcomes), outcomes, "zvt-tcp", "zvt-generic", "Produced by `x`.")
    assert section.startswith("## Profile `zvt-generic` over `zvt-tcp`\n\nProduced by `x`.")
    existing = "# Diagnosis calibration\n\nIntro.\n\n## Protocol `zvt`\n\nold zvt\n\n## Profile `zvt-generic` over `zvt-tcp`\n\nold\n"
    merged = merge(existing, [section])
    assert merged.startswith("# Diagnosis calibration\n\nIntro.\n")
    assert "old zvt" in merged and "\nold\n" not in merged and merged.count("## Profile `zvt-generic`") == 1
    assert "Produced by `x`." in merged
    added = merge(merged, [markdown(score(outcomes), outcomes, "concert", "concert-generic")])
    assert added.index("## Protocol `zvt`") < added.index("zvt-tcp`") < added.index("## Profile `concert-generic`")


def test_a_shaped_case_runs_its_triage_with_the_profile():
    cases = matrix(["msr_head"], [1.0], [1], [2], [], "caisse-ap", "caisse-ap-generic")
    assert {(c.protocol, c.profile) for c in cases} == {("caisse-ap", "caisse-ap-generic")}


def test_a_reader_profile_is_calibrated_over_its_own_causes_without_a_protocol(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from posbench.cli import EXIT_USAGE, cli
    from posbench.run import calibrate as cal
    from posbench.sim.unit.faults import READER_CAUSES
    ran: list = []
    monkeypatch.setattr(cal, "run_matrix", lambda cases, jobs, progress: ran.extend(cases) or
                        [Outcome(c, 0, "pass") for c in cases])
    page = tmp_path / "diagnosis.md"
    result = CliRunner().invoke(cli, ["calibrate", "--profile", "pn532-uart", "--seeds", "1", "--healthy", "1",
                                      "--out", str(page)])
    assert result.exit_code == 0, result.output
    assert {c for case in ran for c in case.truth} == set(READER_CAUSES["nfc"])
    assert {case.protocol for case in ran} == {None} and "## Profile `pn532-uart`\n" in page.read_text()
    result = CliRunner().invoke(cli, ["calibrate", "--profile", "pn532-uart", "--cause", "msr_head"])
    assert result.exit_code == EXIT_USAGE and "nfc_antenna" in result.output
    result = CliRunner().invoke(cli, ["calibrate", "--profile", "magtek-hid", "--protocol", "zvt"])
    assert result.exit_code == EXIT_USAGE and "--protocol zvt" in result.output
